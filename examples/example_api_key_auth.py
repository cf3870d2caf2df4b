"""Create an API key, use it, see its scope enforced, deactivate and delete it.

    python examples/example_api_key_auth.py --url http://127.0.0.1:8000 --email E --password P

Exits non-zero as soon as a step does not behave as documented in docs/contract.md section 3.
"""

from __future__ import annotations

import argparse

import aiohttp
from _client import base_parser, bearer, call, check, login, run


async def main(args: argparse.Namespace) -> None:
    url = args.url.rstrip("/")
    async with aiohttp.ClientSession() as session:
        tokens = await login(session, url, args.email, args.password)
        auth = bearer(tokens["access_token"])

        status, created = await call(session, "POST", f"{url}/api/v1/orm/api_keys/me",
                                     headers=auth, json={"name": "example", "scopes": ["read"]})
        check(status == 201 and created.get("key", "").startswith("fullon_ak_"),
              "create a read-only key (shown once)", created)
        key, key_id = created["key"], created["id"]

        status, listed = await call(session, "GET", f"{url}/api/v1/orm/api_keys/me", headers=auth)
        mine = [k for k in listed.get("items", []) if k["id"] == key_id]
        check(status == 200 and mine and "key" not in mine[0],
              "the list shows the key without the key itself", listed)

        status, me = await call(session, "GET", f"{url}/api/v1/auth/verify",
                                headers={"X-API-Key": key})
        check(status == 200 and me["auth_type"] == "api_key", "the key authenticates", me)

        status, body = await call(session, "POST", f"{url}/api/v1/orm/api_keys/me",
                                  headers={"X-API-Key": key},
                                  json={"name": "child", "scopes": ["read"]})
        check(status == 403, "a key cannot change anything or mint keys", body)

        status, body = await call(session, "PATCH",
                                  f"{url}/api/v1/orm/api_keys/{key_id}/deactivate", headers=auth)
        check(status == 200 and body["is_active"] is False, "deactivate the key", body)
        status, body = await call(session, "GET", f"{url}/api/v1/auth/verify",
                                  headers={"X-API-Key": key})
        check(status == 401, "a deactivated key is refused", body)

        status, _ = await call(session, "DELETE", f"{url}/api/v1/orm/api_keys/{key_id}",
                               headers=auth)
        check(status == 204, "delete the key")
        status, listed = await call(session, "GET", f"{url}/api/v1/orm/api_keys/me", headers=auth)
        check(all(k["id"] != key_id for k in listed["items"]), "the deleted key is gone", listed)


if __name__ == "__main__":
    run(main, base_parser(__doc__ or "").parse_args())
