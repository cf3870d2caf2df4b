"""Every open WebSocket of this process, so shutdown and revocations can reach them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Protocol


class LiveSocket(Protocol):
    """What the registry needs from a connection."""

    user_id: int | None
    session_id: object | None
    api_key_id: int | None

    async def close_with(self, code: int, reason: str) -> None: ...


class SocketRegistry:
    def __init__(self) -> None:
        self._sockets: set[LiveSocket] = set()

    def __len__(self) -> int:
        return len(self._sockets)

    def __iter__(self) -> Iterator[LiveSocket]:
        return iter(tuple(self._sockets))

    def add(self, sock: LiveSocket) -> None:
        self._sockets.add(sock)

    def discard(self, sock: LiveSocket) -> None:
        self._sockets.discard(sock)

    def affected_by(self, kind: str, ident: object) -> list[LiveSocket]:
        """Sockets whose credential a revocation of ``kind``/``ident`` touches."""
        match kind:
            case "session":
                return [s for s in self if s.session_id == ident]
            case "user" | "user_role":
                return [s for s in self if s.user_id == ident]
            case "api_key":
                return [s for s in self if s.api_key_id == ident]
        return []

    async def close_all(self, code: int, reason: str) -> None:
        await asyncio.gather(*(s.close_with(code, reason) for s in self), return_exceptions=True)
