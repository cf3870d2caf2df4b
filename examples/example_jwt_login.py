"""Log in, verify, refresh (rotating the refresh token), and log out.

    python examples/example_jwt_login.py --url http://127.0.0.1:8000 --email E --password P

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
        check(tokens.get("token_type") == "bearer" and tokens.get("refresh_token"),
              "login returns a bearer token pair", tokens.keys())
        auth = bearer(tokens["access_token"])

        status, me = await call(session, "GET", f"{url}/api/v1/auth/verify", headers=auth)
        check(status == 200 and me["email"].lower() == args.email.lower(),
              "verify says who the token belongs to", me)

        status, bad = await call(session, "GET", f"{url}/api/v1/auth/verify",
                                 headers={"Authorization": "Bearer not.a.token"})
        check(status == 401, "a forged token is refused with 401", bad)

        status, new = await call(session, "POST", f"{url}/api/v1/auth/refresh",
                                 json={"refresh_token": tokens["refresh_token"]})
        check(status == 200 and new["refresh_token"] != tokens["refresh_token"],
              "refresh returns a new pair", new)
        auth = bearer(new["access_token"])

        status, body = await call(session, "POST", f"{url}/api/v1/auth/refresh",
                                  json={"refresh_token": tokens["refresh_token"]})
        check(status == 401, "the retired refresh token is refused", body)

        status, body = await call(session, "GET", f"{url}/api/v1/auth/verify", headers=auth)
        check(status == 401, "reusing a retired refresh token revoked the whole session", body)

        tokens = await login(session, url, args.email, args.password)
        auth = bearer(tokens["access_token"])
        status, body = await call(session, "POST", f"{url}/api/v1/auth/logout", headers=auth)
        check(status == 200, "logout", body)
        status, body = await call(session, "GET", f"{url}/api/v1/auth/verify", headers=auth)
        check(status == 401, "after logout the access token is refused", body)
        status, body = await call(session, "POST", f"{url}/api/v1/auth/refresh",
                                  json={"refresh_token": tokens["refresh_token"]})
        check(status == 401, "after logout the refresh token is refused", body)


if __name__ == "__main__":
    run(main, base_parser(__doc__ or "").parse_args())
