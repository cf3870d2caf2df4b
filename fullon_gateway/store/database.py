"""Getting the database ready: which mode it is in, its schema, and the pool.

Standalone (an empty database, or one the gateway made): the gateway's migrations in
schema public, as always. Attach (fullon's tables are there): store/attach prepares
schema gateway, and every pooled connection runs with ``search_path = gateway``, so
the store's queries read the mapping views instead of tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from fullon_gateway.settings import Settings
from fullon_gateway.store import attach
from fullon_gateway.store.migrate import migrate
from fullon_gateway.store.pool import create_pool, ensure_database


@dataclass(frozen=True)
class Database:
    mode: str  # attach.STANDALONE or attach.ATTACH
    applied: list[str] = field(default_factory=list)
    fullon_api_keys: bool = False  # attach mode, and fullon has an api_keys table

    @property
    def attached(self) -> bool:
        return self.mode == attach.ATTACH

    @property
    def search_path(self) -> str | None:
        return attach.SCHEMA if self.attached else None


async def prepare_database(settings: Settings) -> Database:
    """Create the database if missing, decide the mode, and bring the schema up to date.

    Raises attach.AttachError (a SettingsError) for a database of unknown shape.
    """
    url = settings.database_url
    assert url
    await ensure_database(url, timeout=max(settings.dependency_timeout, 5.0))
    conn = await asyncpg.connect(url, timeout=max(settings.dependency_timeout, 5.0))
    try:
        catalog = await attach.read_catalog(conn)
        mode = attach.decide(catalog)
        if mode == attach.STANDALONE:
            return Database(mode, await migrate(conn))
        applied = await attach.prepare(conn, catalog, settings.admin_mail)
        return Database(mode, applied, fullon_api_keys=catalog.api_keys)
    finally:
        await conn.close()


async def open_pool(settings: Settings, db: Database, min_size: int, max_size: int) -> asyncpg.Pool:
    assert settings.database_url
    return await create_pool(settings.database_url, min_size, max_size,
                             search_path=db.search_path)
