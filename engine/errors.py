"""The one exception tree of vigil.

    VigilError
    ├── ConfigError            configuration could not be loaded (carries Problems)
    ├── ExprError              an expression failed to compile or to evaluate
    ├── CollectorError         a collector could not read its source
    ├── DeliveryError          a channel could not deliver (retryable or not)
    ├── JournalError           the journal is unusable (corrupt, locked)
    │   └── JournalLocked      another daemon holds the data_dir lock
    └── ClientError            a CLI client call to the daemon failed

Code catches these, never a bare Exception, except at the few boundaries that
turn untrusted input into a Problem (the YAML reader) and say so.
"""

from __future__ import annotations

from dataclasses import dataclass

# control characters (and the Unicode line separators) as escapes, as repr() writes them
_ONE_LINE = {c: repr(chr(c))[1:-1] for c in (*range(0x20), 0x7F, 0x85, 0x2028, 0x2029)}


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One error a person can act on: where, which field, what was wrong."""

    file: str
    line: int  # 1-based; 0 when the problem is about the whole file
    col: int  # 1-based
    message: str
    path: str = ""  # field path such as rules[3].for

    def format(self) -> str:
        """One line: a key or value holding a line break or tab is escaped, so a
        problem is one line for grep, editors and CI annotations."""
        where = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        field = f" {self.path}:" if self.path else ""
        return f"{where}:{field} {self.message}".translate(_ONE_LINE)

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "path": self.path,
            "message": self.message,
        }


class VigilError(Exception):
    """Base of every error vigil raises on purpose."""


class ConfigError(VigilError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("; ".join(p.format() for p in self.problems[:3]))


class ExprError(VigilError):
    """An expression is not allowed, did not compile or failed to evaluate.

    `col` is the 0-based character offset in the expression, when known.
    """

    def __init__(self, message: str, col: int | None = None) -> None:
        self.message = message
        self.col = col
        super().__init__(message)


class CollectorError(VigilError):
    """A collector could not read its source; its rules go to no_data handling."""


class DeliveryError(VigilError):
    """A channel failed to deliver. `retryable` says whether a retry may help;
    `retry_after` is the receiver's requested delay in seconds, if it gave one."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        self.retryable = retryable
        self.retry_after = retry_after
        super().__init__(message)


class JournalError(VigilError):
    """The journal cannot be used as it is (corrupt in the middle, unwritable)."""


class JournalLocked(JournalError):
    """`command`: what the kernel says the holder runs; None when only the lock
    file's PID (possibly stale) was available."""

    def __init__(
        self, path: str, pid: int | None, *, command: str | None = None, vigil: bool = True
    ) -> None:
        self.path = path
        self.pid = pid
        self.command = command
        holder = f"PID {pid}" if pid else "another process"
        if command is None:
            msg = f"{path} is locked by {holder}: another vigil uses this data_dir"
        elif vigil:
            msg = f"{path} is locked by {holder} ({command}): another vigil uses this data_dir"
        else:
            msg = (
                f"{path} is locked by {holder} ({command}), which is not vigil: "
                "stop it or give vigil another data_dir"
            )
        super().__init__(msg)


class ClientError(VigilError):
    """A CLI command could not get an answer from the daemon."""
