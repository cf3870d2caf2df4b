"""Catalog parameter definitions are checked on write (issue 11, item 5)."""

from __future__ import annotations

import pytest

from fullon_gateway.keys import DB
from fullon_gateway.store import strategies as str_db
from tests.rest.support import call, make_bot, seed_catalog

BAD_DEFINITIONS = [
    {"type": "int", "min": "abc"},
    {"type": "int", "max": [1]},
    {"type": "float", "min": True},
    {"type": "int", "min": 1.5},
    {"type": "int", "min": 10, "max": 1},
    {"type": "int", "min": 0, "max": 10, "default": 11},
    {"type": "int", "default": "ten"},
    {"type": "str", "min": 1},
    {"type": "bool", "description": 5},
]


@pytest.mark.parametrize("definition", BAD_DEFINITIONS)
async def test_unusable_definitions_are_refused(client, make_account, definition):
    """A catalog strategy whose parameter definition has non-numeric or inverted bounds,
    an out-of-range or mistyped default, or bounds on a non-number is a 422 naming the
    parameter, and nothing is stored."""
    admin = await make_account("admin")
    err = await call(client, "POST", "/strategies/catalog", admin, 422,
                     json={"name": "bad", "params": {"p": definition}})
    assert err["code"] == "validation_error" and "'p'" in err["fields"]["params"][0]
    listed = await call(client, "GET", "/strategies/catalog", admin)
    assert listed["items"] == []


async def test_good_definitions_are_stored(client, make_account):
    """Well-formed definitions of every type are accepted as they are."""
    admin = await make_account("admin")
    params = {"n": {"type": "int", "min": 1, "max": 9, "default": 3},
              "x": {"type": "float", "min": 0, "max": 1.5, "default": 1},
              "on": {"type": "bool", "default": True},
              "tag": {"type": "str", "default": "a", "description": "label"}}
    made = await call(client, "POST", "/strategies/catalog", admin, 201,
                      json={"name": "good", "params": params})
    assert made["params"] == params


async def test_a_bad_definition_stored_earlier_is_not_a_500(client, make_account):
    """A definition stored before this check (min "abc") does not turn a user's bot
    strategy into a 500: the broken bound is ignored, the type still checked."""
    admin, user = await make_account("admin"), await make_account()
    await seed_catalog(client, admin)
    row = await str_db.create_catalog(client.app[DB], {
        "name": "legacy", "description": "",
        "params": {"p": {"type": "int", "min": "abc", "max": [1]}}})
    bot = await make_bot(client, user)
    base = {"bot_id": bot["bot_id"], "cat_str_id": row["cat_str_id"]}
    await call(client, "POST", "/strategies/bot-strategies", user, 201,
               json={**base, "params": {"p": 5}})
    err = await call(client, "POST", "/strategies/bot-strategies", user, 422,
                     json={**base, "params": {"p": "five"}})
    assert "params.p" in err["fields"]
