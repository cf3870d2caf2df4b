"""What every example shares: argument parsing, checked steps, REST calls, login, and the
runner that turns the outcome into an exit code.

Examples run as scripts (`python examples/<name>.py`), so this directory is on sys.path
and they import from here with `from _client import ...`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

DEFAULT_URL = "http://127.0.0.1:8000"
ORM = "/api/v1/orm"


class StepFailed(Exception):
    """A step did not behave as documented. `reported` is True when the failure line was
    already printed (by `check`), so `run` does not print it a second time."""

    def __init__(self, what: str, *, reported: bool = False) -> None:
        super().__init__(what)
        self.reported = reported


def base_parser(
    description: str,
    email: str | None = "admin@example.com",
    password: str | None = "change-me-now",
) -> argparse.ArgumentParser:
    """--url, --email and --password; an email or password default of None makes the flag
    required."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--url", default=DEFAULT_URL, help="gateway base URL")
    parser.add_argument("--email", default=email, required=email is None)
    parser.add_argument("--password", default=password, required=password is None)
    return parser


def check(condition: Any, what: str, detail: Any = "") -> None:
    """Print the step; raise (and so exit non-zero) when it did not hold."""
    if not condition:
        print(f"FAIL  {what} {detail}", file=sys.stderr)
        raise StepFailed(what, reported=True)
    print(f"ok    {what}")


def require(condition: Any, failure: str) -> None:
    """Raise StepFailed(failure) when the condition does not hold; print nothing otherwise."""
    if not condition:
        raise StepFailed(failure)


async def call(session: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> tuple[int, Any]:
    """One request: (status, JSON body, or the text when the reply is not JSON)."""
    async with session.request(method, url, **kw) as resp:
        body = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, body


async def login(
    session: aiohttp.ClientSession, url: str, email: str, password: str,
    what: str = "log in with email and password",
) -> dict[str, Any]:
    """POST /auth/login as a checked step; the token pair (with `user`) on success."""
    status, body = await call(session, "POST", f"{url}/api/v1/auth/login",
                              json={"email": email, "password": password})
    check(status == 200, what, body)
    return body


class Api:
    """A logged-in REST client whose every call states the status it expects."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url.rstrip("/")
        self.headers: dict[str, str] = {}

    async def call(self, method: str, path: str, expect: int = 200, **kw: Any) -> Any:
        """The JSON body (None when not JSON); StepFailed when the status is not `expect`."""
        async with self.session.request(method, self.url + path, headers=self.headers,
                                        **kw) as resp:
            body = await resp.json() if resp.content_type == "application/json" else None
            if resp.status != expect:
                raise StepFailed(f"{method} {path}: expected {expect}, got {resp.status} {body}")
            return body

    async def login(self, email: str, password: str) -> None:
        body = await self.call("POST", "/api/v1/auth/login",
                               json={"email": email, "password": password})
        self.headers = bearer(body["access_token"])


def bearer(access_token: str) -> dict[str, str]:
    """The header that authenticates a request with a JWT access token."""
    return {"Authorization": f"Bearer {access_token}"}


@asynccontextmanager
async def logged_in_api(url: str, email: str, password: str) -> AsyncIterator[Api]:
    """A session with an Api already logged in (StepFailed when the login is refused)."""
    async with aiohttp.ClientSession() as session:
        api = Api(session, url)
        await api.login(email, password)
        yield api


def ws_url(base: str, path: str) -> str:
    """The WebSocket URL for `path` on the gateway at http(s) URL `base`."""
    return base.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + path


def run(main: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
    """Run `main(*args)`; print `all steps passed` when it returns, exit 1 on a failed
    step and 2 when the gateway cannot be reached."""
    try:
        asyncio.run(main(*args))
    except StepFailed as exc:
        if not exc.reported:
            print(f"FAILED: {exc}", file=sys.stderr)
        sys.exit(1)
    except (aiohttp.ClientError, ConnectionError) as exc:
        print(f"FAIL  cannot talk to the gateway: {exc!r}", file=sys.stderr)
        sys.exit(2)
    print("all steps passed")
