"""Bearer tokens and roles: viewer < operator < admin.

The configuration holds only SHA-256 digests of tokens (api.tokens[].sha256),
so a leaked vigil.yaml does not leak access. A request's token is hashed and
compared with every digest in constant time; what the rest of the API sees is
the token's configured *name*, which is what audit events record.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from engine.config.model import ApiToken, Role
from engine.errors import VigilError

RANK: dict[str, int] = {"viewer": 0, "operator": 1, "admin": 2}
CHALLENGE = 'Bearer realm="vigil"'


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the configured token's name and role."""

    name: str
    role: Role

    def allows(self, needed: Role) -> bool:
        return RANK[self.role] >= RANK[needed]


class Unauthorized(VigilError):
    """No usable token (401). `challenge` is the WWW-Authenticate value."""

    def __init__(self, message: str, challenge: str = CHALLENGE) -> None:
        self.message = message
        self.challenge = challenge
        super().__init__(message)


def token_digest(token: str) -> str:
    """The hex digest to put in api.tokens[].sha256 for `token`."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def authenticate(authorization: str | None, tokens: Sequence[ApiToken]) -> Principal:
    """The principal of an `Authorization` header value. Raises Unauthorized."""
    if not authorization:
        if not tokens:
            raise Unauthorized("no API tokens are configured (api.tokens in vigil.yaml)")
        raise Unauthorized("a bearer token is required (Authorization: Bearer <token>)")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized(
            "expected Authorization: Bearer <token>",
            f'{CHALLENGE}, error="invalid_request"',
        )
    digest = token_digest(token)
    found: ApiToken | None = None
    # every digest is compared, so timing does not tell which entry (if any) matched
    for t in tokens:
        if hmac.compare_digest(digest, t.sha256.lower()):
            found = t
    if found is None:
        raise Unauthorized("invalid token", f'{CHALLENGE}, error="invalid_token"')
    return Principal(found.name, found.role)
