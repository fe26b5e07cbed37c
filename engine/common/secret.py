"""A resolved secret: a value that never shows itself (engine/config/secrets.py
resolves the references; JSON and logs below config need only this type)."""

from __future__ import annotations

from typing import Any


class Secret:
    """A resolved secret. `str`, `repr`, f-strings, logs and JSON all show ***."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> Any:
        raise TypeError("a Secret cannot be pickled")
