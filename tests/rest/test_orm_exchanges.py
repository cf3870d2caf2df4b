"""/api/v1/orm/exchanges: catalog and user exchange accounts, credentials handling."""

from __future__ import annotations

from cryptography.fernet import Fernet

from fullon_gateway.keys import AUTH, DB
from tests.rest.support import call, make_exchange, make_order, seed_catalog


async def test_catalog_read_by_anyone_written_by_admin(client, make_account):
    """Any user lists the catalog; only an admin adds to it; a duplicate name is 409."""
    user = await make_account()
    admin = await make_account("admin")
    await call(client, "POST", "/exchanges/catalog", user, 403, json={"name": "kraken"})
    cat = await call(
        client,
        "POST",
        "/exchanges/catalog",
        admin,
        201,
        json={"name": "kraken", "params": {"ws": True}},
    )
    await call(client, "POST", "/exchanges/catalog", admin, 409, json={"name": "kraken"})
    err = await call(client, "POST", "/exchanges/catalog", admin, 422, json={"name": "Bad Name!"})
    assert "name" in err["fields"]
    listed = await call(client, "GET", "/exchanges/catalog", user)
    assert listed == {"items": [{**cat}], "next_cursor": None}
    assert listed["items"][0]["params"] == {"ws": True}
    assert (await call(client, "GET", f"/exchanges/catalog/{cat['cat_ex_id']}", user))[
        "name"
    ] == "kraken"
    await call(client, "GET", "/exchanges/catalog/424242", user, 404)


async def test_catalog_symbols(client, make_account):
    """/exchanges/catalog/{id}/symbols lists only that exchange's symbols; unknown id is 404."""
    admin = await make_account("admin")
    seed = await seed_catalog(client, admin)
    body = await call(
        client, "GET", f"/exchanges/catalog/{seed['kraken']['cat_ex_id']}/symbols", admin
    )
    assert [s["symbol"] for s in body["items"]] == ["BTC/USD", "ETH/USD"]
    assert all(s["exchange"] == "kraken" for s in body["items"])
    await call(client, "GET", "/exchanges/catalog/999/symbols", admin, 404)


async def test_exchange_account_crud(client, make_account):
    """Create, read, list, update and delete an exchange account; announces ownership."""
    admin = await make_account("admin")
    user = await make_account()
    seed = await seed_catalog(client, admin)
    announced = []
    client.app[AUTH].add_revocation_listener(lambda kind, ident: announced.append((kind, ident)))
    ex = await call(
        client,
        "POST",
        "/exchanges/user-exchanges",
        user,
        201,
        json={"cat_ex_id": seed["kraken"]["cat_ex_id"], "name": "main", "test": True},
    )
    assert ex["user_id"] == user.user_id and ex["exchange"] == "kraken"
    assert ex["test"] is True and ex["active"] is True and ex["has_credentials"] is False
    assert ("ownership", user.user_id) in announced
    assert await call(client, "GET", f"/exchanges/user-exchanges/{ex['ex_id']}", user) == ex
    listed = await call(client, "GET", "/exchanges/user-exchanges", user)
    assert [e["ex_id"] for e in listed["items"]] == [ex["ex_id"]]
    upd = await call(
        client,
        "PATCH",
        f"/exchanges/user-exchanges/{ex['ex_id']}",
        user,
        json={"name": "renamed", "active": False},
    )
    assert upd["name"] == "renamed" and upd["active"] is False
    await call(
        client,
        "POST",
        "/exchanges/user-exchanges",
        user,
        409,
        json={"cat_ex_id": seed["kraken"]["cat_ex_id"], "name": "renamed"},
    )
    announced.clear()
    await call(client, "DELETE", f"/exchanges/user-exchanges/{ex['ex_id']}", user, 204)
    assert ("ownership", user.user_id) in announced
    await call(client, "GET", f"/exchanges/user-exchanges/{ex['ex_id']}", user, 404)


async def test_exchange_account_validation(client, make_account):
    """Bad bodies are 422 naming the fields; an unknown catalog id is a 422 on cat_ex_id."""
    user = await make_account()
    err = await call(
        client,
        "POST",
        "/exchanges/user-exchanges",
        user,
        422,
        json={"name": "", "test": "maybe", "extra": 1},
    )
    assert {"cat_ex_id", "name", "test", "extra"} <= set(err["fields"])
    err = await call(
        client,
        "POST",
        "/exchanges/user-exchanges",
        user,
        422,
        json={"cat_ex_id": 4242, "name": "x"},
    )
    assert "cat_ex_id" in err["fields"]
    err = await call(
        client,
        "POST",
        "/exchanges/user-exchanges",
        user,
        422,
        json={"cat_ex_id": 1, "name": "x\u0000y"},
    )
    assert "name" in err["fields"]
    resp = await client.post(
        "/api/v1/orm/exchanges/user-exchanges", data=b"{not json", headers=user.headers
    )
    assert resp.status == 400


async def test_credentials_refused_without_encryption_key(client, make_account):
    """Without exchange_secrets_key, a body carrying credentials is a 422 that says why."""
    admin = await make_account("admin")
    user = await make_account()
    seed = await seed_catalog(client, admin)
    err = await call(
        client,
        "POST",
        "/exchanges/user-exchanges",
        user,
        422,
        json={
            "cat_ex_id": seed["kraken"]["cat_ex_id"],
            "name": "k",
            "api_key": "A",
            "api_secret": "B",
        },
    )
    assert err["code"] == "credentials_not_accepted"
    assert "exchange_secrets_key" in err["fields"]["api_key"][0]
    err = await call(
        client,
        "POST",
        "/exchanges/user-exchanges",
        user,
        422,
        json={"cat_ex_id": seed["kraken"]["cat_ex_id"], "name": "k", "api_key": "A"},
    )
    assert "api_secret" in err["fields"]


async def test_credentials_encrypted_and_never_returned(app_client, make_settings, settings):
    """With a key, credentials are stored as Fernet ciphertext and no answer contains them."""
    key = Fernet.generate_key().decode()
    client = await app_client(make_settings(exchange_secrets_key=key))
    admin_row = await client.app[AUTH].create_user("adm@example.com", "pw-123456", role="admin")
    user_row = await client.app[AUTH].create_user("u@example.com", "pw-123456")
    tokens = {}
    for row in (admin_row, user_row):
        resp = await client.post(
            "/api/v1/auth/login", json={"email": row["email"], "password": "pw-123456"}
        )
        tokens[row["role"]] = {"Authorization": "Bearer " + (await resp.json())["access_token"]}

    class Who:
        def __init__(self, headers):
            self.headers = headers

    admin, user = Who(tokens["admin"]), Who(tokens["user"])
    seed = await seed_catalog(client, admin)
    ex = await call(
        client,
        "POST",
        "/exchanges/user-exchanges",
        user,
        201,
        json={
            "cat_ex_id": seed["kraken"]["cat_ex_id"],
            "name": "k",
            "api_key": "PUBLIC-KEY-123",
            "api_secret": "SUPER-SECRET-456",
        },
    )
    assert ex["has_credentials"] is True
    for path in (f"/exchanges/user-exchanges/{ex['ex_id']}", "/exchanges/user-exchanges"):
        resp = await client.get("/api/v1/orm" + path, headers=user.headers)
        text = await resp.text()
        assert "SUPER-SECRET" not in text and "PUBLIC-KEY" not in text and "api_secret" not in text
    # Through the app's pool: its search_path is the mode's (attach: schema gateway).
    row = await client.app[DB].fetchrow("SELECT api_key_enc, api_secret_enc FROM exchanges")
    assert b"SUPER-SECRET" not in row["api_secret_enc"]
    assert Fernet(key).decrypt(row["api_secret_enc"]) == b"SUPER-SECRET-456"
    assert Fernet(key).decrypt(row["api_key_enc"]) == b"PUBLIC-KEY-123"


async def test_exchange_with_orders_cannot_be_deleted(client, make_account):
    """Deleting an exchange account that orders refer to is a 409, and the account stays."""
    admin = await make_account("admin")
    user = await make_account()
    seed = await seed_catalog(client, admin)
    ex = await make_exchange(client, user, seed["kraken"]["cat_ex_id"])
    await make_order(client, user, ex["ex_id"])
    err = await call(client, "DELETE", f"/exchanges/user-exchanges/{ex['ex_id']}", user, 409)
    assert err["code"] == "exchange_account_in_use" and "still used" in err["detail"]
    await call(client, "GET", f"/exchanges/user-exchanges/{ex['ex_id']}", user)


async def test_other_users_accounts_are_invisible(client, make_account):
    """User B gets 404 on A's account (read, update, delete) and never sees it in lists;
    an admin sees both and can filter by user_id."""
    admin = await make_account("admin")
    a, b = await make_account(), await make_account()
    seed = await seed_catalog(client, admin)
    ex_a = await make_exchange(client, a, seed["kraken"]["cat_ex_id"])
    ex_b = await make_exchange(client, b, seed["kraken"]["cat_ex_id"])
    path = f"/exchanges/user-exchanges/{ex_a['ex_id']}"
    await call(client, "GET", path, b, 404)
    await call(client, "PATCH", path, b, 404, json={"name": "mine"})
    await call(client, "DELETE", path, b, 404)
    listed = await call(client, "GET", "/exchanges/user-exchanges", b)
    assert [e["ex_id"] for e in listed["items"]] == [ex_b["ex_id"]]
    listed = await call(
        client, "GET", "/exchanges/user-exchanges", b, params={"user_id": a.user_id}
    )
    assert [e["ex_id"] for e in listed["items"]] == [ex_b["ex_id"]]
    everyone = await call(client, "GET", "/exchanges/user-exchanges", admin)
    assert {e["ex_id"] for e in everyone["items"]} == {ex_a["ex_id"], ex_b["ex_id"]}
    only_a = await call(
        client, "GET", "/exchanges/user-exchanges", admin, params={"user_id": a.user_id}
    )
    assert [e["ex_id"] for e in only_a["items"]] == [ex_a["ex_id"]]
    await call(client, "GET", path, admin)
