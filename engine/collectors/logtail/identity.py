"""Which file is this: inode + device + a fingerprint of the first bytes.

The inode alone is not enough: copytruncate keeps it while the content starts
over, and a file system reuses a deleted file's inode for the next new file. So
an identity also holds the hash of the file's first `FP_LEN` bytes (or of all of
it while it is shorter, with that length): a truncated-and-rewritten or a
replaced file no longer starts with those bytes. A file rewritten with exactly
the same first bytes cannot be told apart; logs start with a timestamp.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from typing import Any

FP_LEN = 256


@dataclass(frozen=True, slots=True)
class FileId:
    dev: int
    ino: int
    fp_len: int  # how many first bytes `fp` covers (less than FP_LEN while the file is short)
    fp: str  # sha256 hex of those bytes ("" when fp_len is 0)

    def same_inode(self, st: os.stat_result) -> bool:
        return st.st_ino == self.ino and st.st_dev == self.dev

    def to_record(self) -> dict[str, Any]:
        return {"dev": self.dev, "ino": self.ino, "fp_len": self.fp_len, "fp": self.fp}

    @classmethod
    def from_record(cls, rec: Any) -> FileId | None:
        """The identity in a journal record, None when it is not one (a hand edit)."""
        if not isinstance(rec, dict):
            return None
        dev, ino, n, fp = rec.get("dev"), rec.get("ino"), rec.get("fp_len"), rec.get("fp")
        if (
            type(dev) is int
            and type(ino) is int
            and type(n) is int
            and isinstance(fp, str)
            and min(dev, ino, n) >= 0
        ):
            return cls(dev, ino, n, fp)
        return None


def _hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest() if data else ""


def identify(fd: int, st: os.stat_result | None = None) -> FileId:
    """The identity of the open file `fd` as it is now."""
    st = st or os.fstat(fd)
    head = os.pread(fd, FP_LEN, 0)
    return FileId(st.st_dev, st.st_ino, len(head), _hash(head))


def same_start(fd: int, ident: FileId) -> bool:
    """Whether the file still starts with the bytes `ident` fingerprinted."""
    if ident.fp_len == 0:
        return True
    head = os.pread(fd, ident.fp_len, 0)
    return len(head) == ident.fp_len and _hash(head) == ident.fp


def grown(fd: int, ident: FileId, size: int) -> FileId:
    """`ident` with a fingerprint over more bytes once the file has them (the
    caller checked `same_start` first)."""
    if ident.fp_len >= FP_LEN or size <= ident.fp_len:
        return ident
    head = os.pread(fd, FP_LEN, 0)
    return replace(ident, fp_len=len(head), fp=_hash(head))


def find_elsewhere(
    ident: FileId, path: str, hints: tuple[str, ...] = (), *, min_size: int = 0
) -> tuple[int, str] | None:
    """An open fd (and its name) of the file `ident` names, found where rotation
    puts it: `hints` first (a symlink's old target), then the siblings of `path`
    whose name starts with its name (access.log.1, access.log-20250101). A file
    with the same inode and start wins; else a copy (copytruncate) with the same
    start and at least `min_size` bytes. Compressed rotations do not match."""
    d, base = os.path.split(path)
    names: list[str] = list(hints)
    try:
        with os.scandir(d or ".") as it:
            names += sorted(
                e.path for e in it if e.name != base and e.name.startswith(base) and _regular(e)
            )
    except OSError:
        pass
    copy: tuple[int, str] | None = None
    for name in names:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            st = os.fstat(fd)
            ok = st.st_size >= max(min_size, ident.fp_len) and same_start(fd, ident)
        except OSError:
            ok = False
        if ok and ident.same_inode(st):
            if copy is not None:
                os.close(copy[0])
            return fd, name
        if ok and copy is None:
            copy = (fd, name)
        else:
            os.close(fd)
    return copy


def _regular(e: os.DirEntry[str]) -> bool:
    try:
        return e.is_file()
    except OSError:
        return False
