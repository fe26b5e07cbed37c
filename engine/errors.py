"""The one exception tree of vigil: every exception class in engine/ derives from
VigilError (tests/unit/common/test_records.py walks engine/ and checks). The classes a
module owns stay in it, under a base here:

    VigilError
    ├── ConfigError            configuration could not be loaded (carries Problems)
    ├── ExprError              an expression failed to compile or to evaluate
    │   └── MissingData        expr/scope.py: a metric the expression needs is missing
    ├── CollectorError         a collector could not read its source
    ├── DeliveryError          a channel could not deliver (retryable or not)
    ├── JournalError           the journal is unusable (corrupt, locked)
    │   ├── JournalLocked      another daemon holds the data_dir lock
    │   └── JournalFatal       journal/hold.py: an fsync or I/O error; vigil exits
    ├── ClientError            a CLI client call to the daemon failed
    │   └── Status             cli/client.py: the daemon answered with an error status
    ├── InputError             text from outside that cannot be read, at a place
    │   ├── YamlError          config/load.py: a YAML file (carries a Problem)
    │   ├── MatcherError       common/matchers.py: a label matcher (also a ValueError)
    │   ├── SeriesError        ruletest/series.py: a test's input series (also a ValueError)
    │   ├── BadLine            journal/lines.py: one journal line
    │   └── BadSnapshot        journal/snapshots.py: one snapshot file
    ├── HttpError              httpclient/transport.py: an outgoing HTTP request
    │   ├── RequestError       cannot be sent as asked (also a ValueError):
    │   │                      InvalidURL, UnsupportedScheme, InvalidHeader
    │   └── WireError          the exchange failed: ConnectError, ReadError, ProtocolError
    ├── AddressRefused         common/address_policy.py: only refused addresses
    ├── Unresolved             common/address_policy.py: no address (also an OSError)
    ├── ApiError               api/responses.py: an API answer other than success
    ├── Unauthorized           api/auth.py: no usable token (401)
    ├── _Refused               api/guard.py: a request refused while being parsed
    ├── UsageError             cli/log.py: a command line that cannot be run
    ├── UnknownRule            explain/result.py: `vigil explain` of a rule that is not there
    ├── PreviewError           channels/preview_build.py: a preview of nothing (also a ValueError)
    ├── NotReady               journal/history.py: the history index is still being built (503)
    ├── IndexBroken            journal/history_build.py: the history index must be rebuilt
    └── LoadTimeout            runtime/reload_thread.py: a configuration load took too long

The "also a ValueError / OSError" ones keep the builtin base they had, so every
`except ValueError` or `except OSError` that caught them still does.

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


class InputError(VigilError):
    """Text from outside vigil (a file, a request, a journal line) cannot be read;
    the subclass says what and where."""


class HttpError(VigilError):
    """An outgoing HTTP request was refused before sending or failed on the wire."""
