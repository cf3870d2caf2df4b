"""The asyncpg pool: create the database if it is missing, then open the pool."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

log = logging.getLogger(__name__)


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "postgres"


async def ensure_database(url: str, timeout: float = 5.0) -> None:
    """Create the target database when the server has none by that name.

    Connects to the maintenance database of the same server; two processes racing
    here is fine, the loser sees DuplicateDatabaseError and carries on.
    """
    name = database_name(url)
    try:
        conn = await asyncpg.connect(url, timeout=timeout)
    except asyncpg.InvalidCatalogNameError:
        pass
    else:
        await conn.close()
        return
    admin = await asyncpg.connect(_with_database(url, "postgres"), timeout=timeout)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        log.info("created database %s", name)
    except asyncpg.DuplicateDatabaseError:
        pass
    finally:
        await admin.close()


async def create_pool(
    url: str, min_size: int = 2, max_size: int = 10, search_path: str | None = None, **kw: Any
) -> asyncpg.Pool:
    # Every session works in UTC so date_bin/date_trunc buckets are UTC buckets. A
    # startup parameter (not a SET) survives the RESET ALL asyncpg runs when a
    # connection goes back to the pool; so does the search_path of attach mode.
    server_settings = {"timezone": "UTC"}
    if search_path is not None:
        server_settings["search_path"] = search_path
    pool = await asyncpg.create_pool(
        url, min_size=min_size, max_size=max_size, server_settings=server_settings, **kw
    )
    assert pool is not None
    return pool
