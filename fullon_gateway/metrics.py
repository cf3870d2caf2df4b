"""Prometheus metrics (prometheus-client), one registry per application.

A registry per app (not the global default) keeps two apps in one process, as in
tests, from colliding.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from fullon_gateway.keys import METRICS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "gateway_http_requests_total", "HTTP requests by route and status",
            ["method", "route", "status"], registry=r,
        )
        self.latency = Histogram(
            "gateway_http_request_seconds", "HTTP request latency by route",
            ["method", "route"], registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.sockets_open = Gauge(
            "gateway_ws_open_sockets", "Open WebSocket connections", registry=r
        )
        self.subscriptions = Gauge(
            "gateway_ws_subscriptions", "Active subscriptions per stream", ["stream"], registry=r
        )
        self.delivered = Counter(
            "gateway_ws_messages_delivered_total", "Stream messages sent to clients",
            ["stream"], registry=r,
        )
        self.conflated = Counter(
            "gateway_ws_messages_conflated_total",
            "Market-data messages replaced by a newer value before they were sent",
            ["stream"], registry=r,
        )
        self.dropped = Counter(
            "gateway_ws_messages_dropped_total",
            "Messages not delivered because their socket was closed as a slow consumer",
            ["stream"], registry=r,
        )
        self.slow_closes = Counter(
            "gateway_ws_slow_consumer_closes_total", "Sockets closed with 1013 slow consumer",
            registry=r,
        )
        self.publish_to_send = Histogram(
            "gateway_ws_publish_to_send_seconds",
            "Time from a publisher's timestamp to the frame being written to the socket",
            registry=r,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
        )
        self.nonfinite = Counter(
            "gateway_fullon_nonfinite_values_total",
            "NaN/Infinity tokens in fullon values, sent as null", ["stream"], registry=r,
        )
        self.hub_reconnects = Counter(
            "gateway_hub_reconnects_total", "Redis pub/sub reconnections", registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    start = time.perf_counter()
    # The route template, not the raw path, so label cardinality stays bounded.
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        metrics = request.app[METRICS]
        metrics.requests.labels(request.method, route, str(status)).inc()
        metrics.latency.labels(request.method, route).observe(time.perf_counter() - start)


async def metrics_view(request: web.Request, metrics: Metrics) -> web.Response:
    return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})
