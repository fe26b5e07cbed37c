"""A small on-disk cache for work every process would otherwise redo: compiled
schema validators, compiled templates, the list of installed plugins.

It lives in $XDG_CACHE_HOME/vigil (default ~/.cache/vigil). It is an
optimisation only: a missing, unwritable or foreign directory means no cache,
and an entry that does not check out (another key, truncated, corrupt) reads as
absent and is written again. Entries are written whole (temp file + os.replace),
so concurrent processes never read a partial one. Callers put into the key
everything the value depends on.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import stat
from pathlib import Path

_MAGIC = b"vigil-cache 1"  # bump when the entry layout changes


@functools.cache
def directory() -> Path | None:
    """The cache directory, created if needed; None when there is no usable one."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # unset, or relative: invalid by the XDG spec
        base = os.path.join(os.path.expanduser("~"), ".cache")
        if not os.path.isabs(base):  # no home directory to speak of
            return None
    path = Path(base, "vigil")
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = path.stat()
    except OSError:
        return None
    # callers execute what is in there: only a directory nobody else can write to
    if st.st_uid != os.getuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return None
    return path


def read(name: str, key: str) -> bytes | None:
    """The payload of entry `name` if it was written with `key` and checks out."""
    d = directory()
    if d is None:
        return None
    try:
        data = (d / name).read_bytes()
    except OSError:
        return None
    head, sep, payload = data.partition(b"\n\n")
    fields = head.split(b"\n")
    if not sep or len(fields) != 3 or fields[0] != _MAGIC or fields[1] != key.encode():
        return None
    if hashlib.sha256(payload).hexdigest().encode() != fields[2]:
        return None
    return payload


def write(name: str, key: str, payload: bytes) -> None:
    """Store `payload` as entry `name` (a file name, maybe in a subfolder); errors
    are ignored: the next process simply computes the value again."""
    d = directory()
    if d is None:
        return
    import tempfile

    path = d / name
    head = b"\n".join([_MAGIC, key.encode(), hashlib.sha256(payload).hexdigest().encode()])
    try:
        path.parent.mkdir(mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(head + b"\n\n" + payload)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def prune(pattern: str, keep: str) -> None:
    """Remove the entries matching `pattern` (a glob) except `keep`: the ones an
    older schema, template engine or vigil left behind."""
    d = directory()
    if d is None:
        return
    import shutil

    with contextlib.suppress(OSError):
        for p in d.glob(pattern):
            if p.name != keep:
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        p.unlink()
