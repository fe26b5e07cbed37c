"""A log writer process for the logtail tests: numbered lines at a steady rate,
rotated every N lines in one of the ways log files are rotated.

    python tests/integration/logwriter.py PATH KIND LINES_PER_FILE ROTATIONS RATE
        [--first N] [--seen FILE]

Every line starts with its number (9 digits) so a reader can check which lines
it got; every 97th line carries bytes that are not UTF-8. Lines go out in small
writes, some of them split in two, so a reader also meets half-written lines.

Kinds (the writer rotates, as an application with its own rotation does):
  rename        PATH -> PATH.<i>, new PATH
  copytruncate  copy PATH to PATH.<i>, truncate PATH; no line is written between
                the copy and the truncate (see test_logtail_rotation for the race)
  recreate      unlink PATH, new PATH
  symlink       PATH is a symlink to files/<i>.log, swapped atomically to the next
  none          no rotation

`--seen FILE`: before a rotation, wait until the reader wrote into FILE a line
number at least that of the current file's first line. A file created and
rotated away between two of a reader's passes is invisible to any reader that
follows a name, so the test only asks that the reader has seen the file.
Exits 3 when the reader does not get there within 30 s.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import time


def line(n: int) -> bytes:
    body = b"%09d 203.0.113.%d - - GET /index.html?id=%d HTTP/1.1 200 512" % (n, n % 250, n)
    if n % 97 == 0:
        body += b" bad:\xff\xfe\xc3("
    return body + b"\n"


class Writer:
    def __init__(self, path: str, kind: str, seen: str | None) -> None:
        self.path, self.kind, self.seen = path, kind, seen
        self.files = os.path.join(os.path.dirname(path), "files")
        self.i = 0
        if kind == "symlink":
            os.makedirs(self.files, exist_ok=True)
            target = os.path.join(self.files, "0.log")
            open(target, "ab").close()
            os.symlink(target, path)
        self.fd = self._open()

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, data: bytes, rnd: random.Random) -> None:
        if len(data) > 8 and rnd.random() < 0.2:  # a half line first
            cut = rnd.randrange(1, len(data) - 1)
            os.write(self.fd, data[:cut])
            os.write(self.fd, data[cut:])
        else:
            os.write(self.fd, data)

    def wait_seen(self, n: int) -> None:
        if self.seen is None:
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with open(self.seen) as f:
                    if int(f.read() or -1) >= n:
                        return
            except (OSError, ValueError):
                pass
            time.sleep(0.001)
        sys.exit(3)

    def rotate(self) -> None:
        self.i += 1
        p, i = self.path, self.i
        if self.kind == "rename":
            os.rename(p, f"{p}.{i}")
            os.close(self.fd)
            self.fd = self._open()
        elif self.kind == "copytruncate":
            shutil.copyfile(p, f"{p}.{i}")
            os.truncate(p, 0)  # the fd is O_APPEND: the next write lands at 0
        elif self.kind == "recreate":
            os.unlink(p)
            os.close(self.fd)
            self.fd = self._open()
        elif self.kind == "symlink":
            target = os.path.join(self.files, f"{i}.log")
            new_fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.symlink(target, f"{p}.tmp")
            os.replace(f"{p}.tmp", p)
            os.close(self.fd)
            self.fd = new_fd


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("kind", choices=["rename", "copytruncate", "recreate", "symlink", "none"])
    ap.add_argument("per_file", type=int)
    ap.add_argument("rotations", type=int)
    ap.add_argument("rate", type=float)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--seen")
    a = ap.parse_args()
    w = Writer(a.path, a.kind, a.seen)
    rnd = random.Random(a.first)
    total = a.per_file * (a.rotations + 1)
    t0 = time.monotonic()
    n = 0
    file_first = a.first
    while n < total:
        due = min(total, int((time.monotonic() - t0) * a.rate) + 1)
        if due <= n:
            time.sleep(0.0005)
            continue
        while n < due:
            chunk = min(due - n, 50, a.per_file - n % a.per_file)
            w.write(b"".join(line(a.first + k) for k in range(n, n + chunk)), rnd)
            n += chunk
            if n % a.per_file == 0 and n < total and a.kind != "none":
                w.wait_seen(file_first)
                w.rotate()
                file_first = a.first + n
    os.close(w.fd)
    print(f"{total} lines in {time.monotonic() - t0:.2f}s", flush=True)


if __name__ == "__main__":
    main()
