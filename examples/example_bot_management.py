"""Manage a bot over REST: exchange account, bot with strategy and feed, list, update, delete.

    python examples/example_bot_management.py --url http://127.0.0.1:8000 \
        --email you@example.com --password '...'

Exits non-zero (with the failing step) when anything does not behave as documented.
"""

from __future__ import annotations

import argparse
import time

from _client import ORM, StepFailed, base_parser, logged_in_api, run


async def main(args: argparse.Namespace) -> None:
    async with logged_in_api(args.url, args.email, args.password) as api:
        me = await api.call("GET", f"{ORM}/users/me")
        print(f"logged in as {me['email']} (user {me['user_id']}, {me['role']})")

        catalog = (await api.call("GET", f"{ORM}/exchanges/catalog"))["items"]
        if not catalog:
            raise StepFailed("the exchange catalog is empty; an admin must add exchanges")
        cat = next((c for c in catalog if c["name"] == args.exchange), catalog[0])
        suffix = str(int(time.time() * 1000))
        account = await api.call("POST", f"{ORM}/exchanges/user-exchanges", 201, json={
            "cat_ex_id": cat["cat_ex_id"], "name": f"example-{suffix}", "test": True})
        print(f"exchange account {account['ex_id']} on {account['exchange']}")

        bot = await api.call("POST", f"{ORM}/bots", 201, json={
            "name": f"example-bot-{suffix}", "description": "made by example_bot_management",
            "dry_run": True, "ex_ids": [account["ex_id"]]})
        print(f"bot {bot['bot_id']} {bot['name']} linked to {bot['ex_ids']}")

        strategies = (await api.call("GET", f"{ORM}/strategies/catalog"))["items"]
        if strategies:
            strat = await api.call("POST", f"{ORM}/strategies/bot-strategies", 201, json={
                "bot_id": bot["bot_id"], "cat_str_id": strategies[0]["cat_str_id"],
                "size": 0.1, "leverage": 1})
            print(f"strategy {strat['strategy']} attached (str_id {strat['str_id']})")
        symbols = (await api.call("GET", f"{ORM}/exchanges/catalog/{cat['cat_ex_id']}/symbols",
                                  params={"limit": 1}))["items"]
        if symbols:
            feed = await api.call("POST", f"{ORM}/bots/{bot['bot_id']}/feeds", 201, json={
                "symbol_id": symbols[0]["symbol_id"], "period": "minutes", "compression": 15})
            print(f"feed {feed['symbol']} {feed['compression']} {feed['period']}")

        listed = await api.call("GET", f"{ORM}/bots", params={"limit": 1000})
        if bot["bot_id"] not in [b["bot_id"] for b in listed["items"]]:
            raise StepFailed("the new bot is missing from GET /bots")
        details = await api.call("GET", f"{ORM}/bots/{bot['bot_id']}/details")
        print(f"details: {len(details['strategies'])} strategies, {len(details['feeds'])} feeds, "
              f"{len(details['exchanges'])} accounts")

        updated = await api.call("PATCH", f"{ORM}/bots/{bot['bot_id']}",
                                 json={"active": True, "description": "updated"})
        if not updated["active"] or updated["description"] != "updated":
            raise StepFailed(f"PATCH did not apply: {updated}")
        print("bot activated")
        invalid = await api.call("PATCH", f"{ORM}/bots/{bot['bot_id']}", 422,
                                 json={"dry_run": "sometimes"})
        print(f"invalid update refused: {invalid['fields']}")

        await api.call("DELETE", f"{ORM}/bots/{bot['bot_id']}", 204)
        await api.call("GET", f"{ORM}/bots/{bot['bot_id']}", 404)
        await api.call("DELETE", f"{ORM}/exchanges/user-exchanges/{account['ex_id']}", 204)
        print("bot and exchange account deleted")


def parse() -> argparse.Namespace:
    parser = base_parser(__doc__.splitlines()[0], email=None, password=None)
    parser.add_argument("--exchange", default="kraken", help="catalog exchange to use")
    return parser.parse_args()


if __name__ == "__main__":
    run(main, parse())
