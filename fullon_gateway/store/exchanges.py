"""Queries on the exchange catalog and users' exchange accounts."""

from __future__ import annotations

from typing import Any

import asyncpg

from fullon_gateway.jsonutil import dumps_str
from fullon_gateway.store.conn import Conn, Viewer
from fullon_gateway.store.query import (
    Where,
    deleted,
    fetch_new,
    fetch_page,
    fetch_row,
    fetch_rows,
    update_by_id,
)

CAT_COLUMNS = "cat_ex_id, name, ohlcv_view, params, created_at"
# Never the credential columns: only whether they are set.
EX_COLUMNS = """e.ex_id, e.user_id, e.cat_ex_id, c.name AS exchange, e.name, e.test, e.active,
    (e.api_key_enc IS NOT NULL) AS has_credentials, e.created_at, e.updated_at"""
EX_FROM = "exchanges e JOIN cat_exchanges c USING (cat_ex_id)"


async def list_catalog(conn: Conn, after: int | None, limit: int) -> list[asyncpg.Record]:
    return await fetch_page(
        conn, f"SELECT {CAT_COLUMNS} FROM cat_exchanges", Where(), "cat_ex_id", after, limit
    )


async def catalog_by_id(conn: Conn, cat_ex_id: int) -> asyncpg.Record | None:
    return await fetch_row(
        conn, f"SELECT {CAT_COLUMNS} FROM cat_exchanges WHERE cat_ex_id = $1", cat_ex_id
    )


async def create_catalog(
    conn: Conn, name: str, ohlcv_view: str, params: dict[str, Any]
) -> asyncpg.Record:
    return await fetch_new(
        conn,
        f"INSERT INTO cat_exchanges (name, ohlcv_view, params) VALUES ($1, $2, $3::jsonb) "
        f"RETURNING {CAT_COLUMNS}",
        name,
        ohlcv_view,
        dumps_str(params),
    )


async def list_accounts(
    conn: Conn,
    caller: Viewer,
    *,
    user_id: int | None,
    cat_ex_id: int | None,
    active: bool | None,
    after: int | None,
    limit: int,
) -> list[asyncpg.Record]:
    w = (
        Where()
        .owner("e.user_id", caller, user_id)
        .maybe("e.cat_ex_id = {}", cat_ex_id)
        .maybe("e.active = {}", active)
    )
    return await fetch_page(conn, f"SELECT {EX_COLUMNS} FROM {EX_FROM}", w, "e.ex_id", after, limit)


async def account_by_id(conn: Conn, ex_id: int) -> asyncpg.Record | None:
    return await fetch_row(conn, f"SELECT {EX_COLUMNS} FROM {EX_FROM} WHERE e.ex_id = $1", ex_id)


async def accounts_by_ids(conn: Conn, ex_ids: list[int]) -> list[asyncpg.Record]:
    """Several accounts in one query, in ex_id order."""
    return await fetch_rows(
        conn,
        f"SELECT {EX_COLUMNS} FROM {EX_FROM} WHERE e.ex_id = ANY($1::int[]) ORDER BY e.ex_id",
        ex_ids,
    )


async def create_account(conn: Conn, user_id: int, data: dict[str, Any]) -> asyncpg.Record:
    ex_id = await conn.fetchval(
        """INSERT INTO exchanges (user_id, cat_ex_id, name, test, active,
                                  api_key_enc, api_secret_enc)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ex_id""",
        user_id,
        data["cat_ex_id"],
        data["name"],
        data["test"],
        data["active"],
        data.get("api_key_enc"),
        data.get("api_secret_enc"),
    )
    row = await account_by_id(conn, ex_id)
    assert row is not None
    return row


async def update_account(conn: Conn, ex_id: int, changes: dict[str, Any]) -> asyncpg.Record | None:
    await update_by_id(conn, "exchanges", "ex_id", ex_id, changes)
    return await account_by_id(conn, ex_id)


async def delete_account(conn: Conn, ex_id: int) -> bool:
    return deleted(await conn.execute("DELETE FROM exchanges WHERE ex_id = $1", ex_id))


async def owners_of(conn: Conn, ex_ids: list[int]) -> dict[int, int]:
    rows = await conn.fetch(
        "SELECT ex_id, user_id FROM exchanges WHERE ex_id = ANY($1::int[])", ex_ids
    )
    return {r["ex_id"]: r["user_id"] for r in rows}
