"""Every open WebSocket of this process: shutdown, revocations and the sweeps reach
them here (the one registry; ``app[SOCKETS]`` is this object)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from fullon_gateway.auth.revocation import Revocation
from fullon_gateway.stream.connection import Connection

POLICY_VIOLATION = 1008  # the close code of a socket whose credential no longer holds
# The close reason (1008) a socket gets when its credential is revoked.
CLOSE_REASONS = {
    Revocation.SESSION: "session revoked",
    Revocation.USER: "user disabled",
    Revocation.USER_ROLE: "role changed",
    Revocation.API_KEY: "key revoked",
}


class SocketRegistry:
    def __init__(self) -> None:
        self._sockets: set[Connection] = set()

    def __len__(self) -> int:
        return len(self._sockets)

    def __iter__(self) -> Iterator[Connection]:
        return iter(tuple(self._sockets))

    def add(self, sock: Connection) -> None:
        self._sockets.add(sock)

    def discard(self, sock: Connection) -> None:
        self._sockets.discard(sock)

    def affected_by(self, kind: Revocation, ident: object) -> list[Connection]:
        """Sockets whose credential a revocation of ``kind``/``ident`` touches."""
        match kind:
            case Revocation.SESSION:
                return [s for s in self if s.session_id == ident]
            case Revocation.USER | Revocation.USER_ROLE:
                return [s for s in self if s.user_id == ident]
            case Revocation.API_KEY:
                return [s for s in self if s.api_key_id == ident]
        return []

    async def close_all(self, code: int, reason: str) -> None:
        await asyncio.gather(*(s.close_with(code, reason) for s in self), return_exceptions=True)
