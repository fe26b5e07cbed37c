"""Copy this checkout's source elsewhere (to build a wheel, or to serve as a hooks
repository), without what is not source: VCS data, virtualenvs, caches, build output."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_NOT_SOURCE = ".git", ".venv", "dist", "*.egg-info", "__pycache__", "*_cache", "data"


def copy_source(dest: Path, *, tests: bool = True) -> None:
    names = shutil.ignore_patterns(*_NOT_SOURCE, *(() if tests else ("tests",)))

    def ignore(folder: str, found: list[str]) -> set[str]:
        # build/ only at the top (setuptools' output): engine/config/build is source
        top = {"build"} & set(found) if Path(folder) == ROOT else set()
        return set(names(folder, found)) | top

    shutil.copytree(ROOT, dest, ignore=ignore, symlinks=True)
