"""Helpers shared by every test folder."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(check: Callable[[], T | Awaitable[T]], within: float = 10.0,
                     every: float = 0.02, what: str = "condition") -> T:
    """Call ``check`` (plain or async) until it returns something truthy, and return that.

    For states that only the server can change and that announce themselves by no event
    a test can wait on (a reconnect, a cache expiring, another process seeing a
    revocation). Fails the test after ``within`` seconds, naming ``what``.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        assert loop.time() < deadline, f"{what} not reached within {within}s"
        await asyncio.sleep(every)
