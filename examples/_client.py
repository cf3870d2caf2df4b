"""What every example shares: argument parsing, a checked step, and login."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import aiohttp


class StepFailed(Exception):
    pass


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="gateway base URL")
    parser.add_argument("--email", default="admin@example.com")
    parser.add_argument("--password", default="change-me-now")
    return parser


def check(condition: bool, what: str, detail: Any = "") -> None:
    """Print the step; raise (and so exit non-zero) when it did not hold."""
    if not condition:
        print(f"FAIL  {what} {detail}", file=sys.stderr)
        raise StepFailed(what)
    print(f"ok    {what}")


async def call(session: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> tuple[int, Any]:
    async with session.request(method, url, **kw) as resp:
        body = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, body


async def login(
    session: aiohttp.ClientSession, url: str, email: str, password: str
) -> dict[str, Any]:
    status, body = await call(session, "POST", f"{url}/api/v1/auth/login",
                              json={"email": email, "password": password})
    check(status == 200, "log in with email and password", body)
    return body  # type: ignore[no-any-return]


def run(main: Any) -> None:
    import asyncio

    try:
        asyncio.run(main())
    except StepFailed:
        sys.exit(1)
    except aiohttp.ClientError as exc:
        print(f"FAIL  cannot talk to the gateway: {exc!r}", file=sys.stderr)
        sys.exit(2)
