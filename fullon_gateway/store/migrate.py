"""Versioned SQL migrations.

Files ``migrations/NNN_name.sql`` are applied in order, each in its own transaction,
and recorded in ``schema_migrations``. A transaction-level advisory lock makes two
processes starting at once take turns: the second finds the work done.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

log = logging.getLogger(__name__)

# Any constant works; it only has to be the same in every gateway process.
_LOCK_ID = 0x46554C4C4F4E  # "FULLON"
_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    found = []
    for entry in resources.files("fullon_gateway.store.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(versions) != len(set(versions)):
        raise RuntimeError(f"duplicate migration versions: {versions}")
    return found


async def migrate(conn: asyncpg.Connection, wanted: list[Migration] | None = None) -> list[str]:
    """Apply what is missing of ``wanted`` (standalone's by default); return the names
    applied now. Tables land in the connection's search_path (attach mode: gateway)."""
    applied_now: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_ID)
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for m in available() if wanted is None else wanted:
            if m.version in done:
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    m.version, m.name,
                )
            applied_now.append(f"{m.version:03d}_{m.name}")
            log.info("applied migration %03d_%s", m.version, m.name)
    return applied_now
