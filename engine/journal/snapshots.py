"""Reading snapshot files: the newest one that is whole, or why one is not.

Separate from the journal because start-up replay, `vigil log verify`/`repair`
and `vigil explain` all read snapshots, and only the journal writes them.
"""

from __future__ import annotations

import json
import os
import stat
from typing import Any, cast

from engine.common.boundary import valid_text
from engine.errors import InputError
from engine.journal.files import snapshot_files
from engine.journal.format import FORMAT_VERSION
from engine.journal.lines import CRC_HEAD, SUFFIX_LEN, BadLine, check_crc


class BadSnapshot(InputError):
    """A snapshot file that cannot be used (replay then takes an older one)."""


def read_snapshot_file(path: str, name_seq: int) -> tuple[int, dict[str, Any]]:
    try:
        # O_NONBLOCK: a FIFO with a snapshot's name must not hang start-up
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with open(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise BadSnapshot("not a regular file")
            data = f.read().rstrip(b"\n")
    except OSError as e:
        raise BadSnapshot(f"cannot read: {e.strerror}") from None
    if data[-SUFFIX_LEN:-10] == CRC_HEAD:
        try:
            check_crc(data)
        except BadLine as e:
            raise BadSnapshot(e.reason) from None
    try:
        obj = json.loads(data)
    except ValueError:
        raise BadSnapshot("not valid JSON") from None
    if not isinstance(obj, dict) or obj.get("v") != FORMAT_VERSION:
        raise BadSnapshot("not a version-1 snapshot object")
    seq, state = obj.get("seq"), obj.get("state")
    if type(seq) is not int or seq != name_seq:
        raise BadSnapshot(f"seq {seq!r} does not match the file name")
    if not isinstance(state, dict):
        raise BadSnapshot("state is not a JSON object")
    if b"\\ud" in data:  # see open_line
        state = cast(dict[str, Any], valid_text(state))
    return seq, state


def read_snapshot(data_dir: str | os.PathLike[str]) -> tuple[int, dict[str, Any]] | None:
    """(seq, state) of the newest readable snapshot, or None. Read-only, no lock."""
    for seq, path in snapshot_files(os.fspath(data_dir)):
        try:
            return read_snapshot_file(path, seq)
        except BadSnapshot:
            continue
    return None
