"""Login and /api/v1/auth/verify throughput against a bare aiohttp JSON handler.

    python scripts/bench/auth.py [--seconds 5] [--rounds 3] [--concurrency 32]

Starts, in one run: the bare baseline server and the real gateway (default password
hashing: argon2id, 19 MiB, t=2). Rounds alternate baseline and gateway so drift on a
noisy machine hits both; the medians and their ratios are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid

from harness import cli, drive, median_of, start_bare, start_gateway

PASSWORD = "bench-password-123"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()

    bare = start_bare()
    gateway = start_gateway("auth")
    try:
        email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
        cli(gateway, "create-user", "--email", email, "--password", PASSWORD)
        import aiohttp

        async with aiohttp.ClientSession() as s, s.post(gateway.url + "/api/v1/auth/login",
                          json={"email": email, "password": PASSWORD}) as r:
            token = (await r.json())["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        body = {"email": email, "password": PASSWORD}
        bare_runs, verify_runs, login_runs = [], [], []
        for rnd in range(args.rounds):
            b = await drive("GET", bare.url + "/bare", concurrency=args.concurrency,
                           seconds=args.seconds)
            v = await drive("GET", gateway.url + "/api/v1/auth/verify", headers=auth,
                           concurrency=args.concurrency, seconds=args.seconds)
            # Few workers: each login is ~tens of ms of argon2 in the executor.
            lg = await drive("POST", gateway.url + "/api/v1/auth/login", json=body,
                            concurrency=4, seconds=args.seconds)
            bare_runs.append(b)
            verify_runs.append(v)
            login_runs.append(lg)
            print(f"round {rnd + 1}")
            print("  " + b.line("bare aiohttp JSON handler"))
            print("  " + v.line("gateway GET /auth/verify (JWT)"))
            print("  " + lg.line("gateway POST /auth/login (argon2id)"))
        base = median_of(bare_runs)
        print("\nmedians over rounds")
        print(f"  bare handler      {base:9.0f} req/s")
        print(f"  /auth/verify      {median_of(verify_runs):9.0f} req/s  "
              f"ratio to bare {median_of(verify_runs) / base:.2f}")
        print(f"  /auth/login       {median_of(login_runs):9.0f} req/s  "
              f"ratio to bare {median_of(login_runs) / base:.4f}")
    finally:
        gateway.stop()
        bare.stop()


asyncio.run(main())
