"""The two sweeps over every open socket of the process (one task each, not one
timer per socket): heartbeat + token expiry, and credential revalidation."""

from __future__ import annotations

import asyncio
import logging
import time

from fullon_gateway.auth.service import AuthFailure, AuthService
from fullon_gateway.settings import Settings
from fullon_gateway.stream.connection import GOING_AWAY
from fullon_gateway.stream.registry import POLICY_VIOLATION, SocketRegistry

log = logging.getLogger(__name__)

_EXPIRY_PRECISION = 1.0  # seconds: a socket closes at most this long after its token expired


def sweep_once(sockets: SocketRegistry, beat: float, now: float, wall: float) -> None:
    """Ping a socket silent for ``beat`` seconds, close one silent for twice that (1001
    heartbeat timeout), and close one whose credential expired (1008 token expired)."""
    for conn in sockets:
        if conn.closing:
            continue
        caller = conn.caller
        if caller is not None and caller.expires_at is not None and caller.expires_at <= wall:
            conn.close_soon(POLICY_VIOLATION, "token expired")
            continue
        silent = now - conn.last_seen
        if silent >= 2 * beat:
            conn.close_soon(GOING_AWAY, "heartbeat timeout")
        elif silent >= beat and now - conn.pinged_at >= beat:
            conn.ping()


async def heartbeat_forever(sockets: SocketRegistry, settings: Settings) -> None:
    """``sweep_once`` every quarter heartbeat (at least every second, for expiry).

    Any frame the client sends counts as activity, a pong included (the endpoint reads
    with ``autoping=False`` so pongs reach it; aiohttp's own heartbeat would only wait
    half a period for the pong). An in-band ``refresh`` moves the expiry on.
    """
    beat = settings.ws_heartbeat
    while True:
        await asyncio.sleep(min(beat / 4, _EXPIRY_PRECISION))
        sweep_once(sockets, beat, time.monotonic(), time.time())


async def revalidate_forever(sockets: SocketRegistry, auth: AuthService,
                             settings: Settings) -> None:
    """Re-check each socket's credential about every ``auth_cache_ttl`` seconds.

    Revocations normally arrive at once over Redis (StreamService.on_revocation closes
    the sockets); this sweep is the safety net for an announcement lost while Redis was
    unreachable. Only sockets not checked for a cache TTL are re-checked, so the cost
    stays a couple of cached lookups per socket per TTL.
    """
    interval = max(settings.ws_revocation_check, 0.05)
    ttl = settings.auth_cache_ttl
    while True:
        await asyncio.sleep(interval)
        now = time.monotonic()
        for conn in sockets:
            if conn.closing or conn.token is None or now - conn.checked_at < ttl:
                continue
            conn.checked_at = now
            try:
                caller = await auth.authenticate(conn.token)
            except AuthFailure as exc:
                conn.close_soon(POLICY_VIOLATION, exc.reason)
                continue
            except Exception as exc:  # a dependency down: keep the socket, retry later
                log.debug("revalidation skipped: %r", exc)
                continue
            if conn.caller is not None and caller.user_id == conn.caller.user_id:
                conn.set_caller(caller)
