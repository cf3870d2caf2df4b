"""/health, /health/live, /health/ready and /metrics: public, for operators and probes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from fullon_gateway import __version__
from fullon_gateway.auth.identity import public
from fullon_gateway.jsonutil import json_response
from fullon_gateway.keys import (
    DB,
    HUB,
    METRICS,
    REDIS,
    SETTINGS,
    SOCKETS,
    STARTED_AT,
    STREAMS,
    WATCHER,
)
from fullon_gateway.metrics import metrics_view


async def _timed(check: Any, timeout: float) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        await asyncio.wait_for(check, timeout)
    except Exception as exc:  # any failure is "down"; the reason is for the operator
        return {"ok": False, "latency_ms": None, "error": type(exc).__name__}
    return {"ok": True, "latency_ms": round((time.perf_counter() - start) * 1000, 2)}


async def dependency_checks(app: web.Application) -> dict[str, dict[str, Any]]:
    """Ask Postgres and Redis for real, each with a short timeout, side by side."""
    timeout = app[SETTINGS].dependency_timeout
    postgres, redis = await asyncio.gather(
        _timed(app[DB].fetchval("SELECT 1"), timeout),
        _timed(app[REDIS].ping(), timeout),
    )
    hub = app[HUB]
    checks: dict[str, dict[str, Any]] = {
        "postgres": postgres,
        "redis": redis,
        "hub": {
            "ok": hub.connected,
            "channels": hub.channel_count,
            "connections": len(app[SOCKETS]),
        },
    }
    if WATCHER in app:
        checks["fullon"] = app[WATCHER].status()
    if redis["ok"] and STREAMS in app:
        checks["processes"] = await _process_counts(app, timeout)
    return checks


async def _process_counts(app: web.Application, timeout: float) -> dict[str, Any]:
    """fullon's process registry: how many processes, how many stale (no heartbeat for
    5 minutes). Stale processes are reported, they do not make the gateway degraded."""
    try:
        procs = await asyncio.wait_for(app[STREAMS].processes(), timeout)
    except Exception as exc:  # the registry is information, never a reason to fail
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "total": len(procs), "stale": sum(1 for p in procs if p["stale"])}


class HealthHandler:
    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/health", self.health),
            web.get("/health/live", self.live),
            web.get("/health/ready", self.ready),
            web.get("/metrics", self.metrics),
        ]

    @public
    async def health(self, request: web.Request) -> web.Response:
        """Status of the gateway and each dependency; 503 when Postgres or Redis is down."""
        checks = await dependency_checks(request.app)
        up = checks["postgres"]["ok"] and checks["redis"]["ok"]
        fullon_ok = checks.get("fullon", {}).get("ok", True)
        body = {
            "status": "ok" if up and checks["hub"]["ok"] and fullon_ok else "degraded",
            "version": __version__,
            "uptime_s": round(time.monotonic() - request.app[STARTED_AT], 1),
            "checks": checks,
        }
        return json_response(body, status=200 if up else 503)

    @public
    async def live(self, request: web.Request) -> web.Response:
        """The process is up and its loop answers."""
        return json_response({"status": "ok"})

    @public
    async def ready(self, request: web.Request) -> web.Response:
        """Ready for traffic: Postgres and Redis both answer."""
        checks = await dependency_checks(request.app)
        up = checks["postgres"]["ok"] and checks["redis"]["ok"]
        return json_response(
            {"status": "ok" if up else "unavailable", "checks": checks},
            status=200 if up else 503,
        )

    @public
    async def metrics(self, request: web.Request) -> web.Response:
        """Prometheus text exposition."""
        return await metrics_view(request, request.app[METRICS])
