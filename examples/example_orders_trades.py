"""Orders and trades over REST: an order's life, fills, filters, statistics and views.

    python examples/example_orders_trades.py --url http://127.0.0.1:8000 \
        --email you@example.com --password '...'

Exits non-zero (with the failing step) when anything does not behave as documented.
"""

from __future__ import annotations

import argparse
import time

from _client import ORM, base_parser, logged_in_api, require, run


async def main(args: argparse.Namespace) -> None:
    async with logged_in_api(args.url, args.email, args.password) as api:
        catalog = (await api.call("GET", f"{ORM}/exchanges/catalog"))["items"]
        require(bool(catalog), "the exchange catalog is empty; an admin must add exchanges")
        suffix = str(int(time.time() * 1000))
        account = await api.call("POST", f"{ORM}/exchanges/user-exchanges", 201, json={
            "cat_ex_id": catalog[0]["cat_ex_id"], "name": f"orders-{suffix}", "test": True})
        bot = await api.call("POST", f"{ORM}/bots", 201, json={
            "name": f"orders-bot-{suffix}", "ex_ids": [account["ex_id"]]})
        ex_id, bot_id = account["ex_id"], bot["bot_id"]

        order = await api.call("POST", f"{ORM}/orders", 201, json={
            "ex_id": ex_id, "bot_id": bot_id, "symbol": args.symbol, "side": "buy",
            "order_type": "limit", "volume": 2, "price": 100})
        oid = order["order_id"]
        print(f"order {oid} is {order['status']}")
        for status, extra in (("Open", {}), ("PartiallyFilled", {"filled": 1}), ("Filled", {})):
            order = await api.call("PATCH", f"{ORM}/orders/{oid}/status",
                                   json={"status": status, **extra})
            print(f"order {oid} -> {order['status']} (filled {order['filled']})")
        refused = await api.call("PATCH", f"{ORM}/orders/{oid}/status", 409,
                                 json={"status": "Open"})
        print(f"illegal move refused: {refused['detail']}")

        await api.call("POST", f"{ORM}/trades", 201, json={
            "ex_id": ex_id, "bot_id": bot_id, "order_id": oid, "symbol": args.symbol,
            "side": "buy", "volume": 2, "price": 100, "fee": 0.2})
        await api.call("POST", f"{ORM}/trades", 201, json={
            "ex_id": ex_id, "bot_id": bot_id, "symbol": args.symbol, "side": "sell",
            "volume": 2, "price": 110, "fee": 0.22, "roi": 19.58})
        trades = await api.call("GET", f"{ORM}/trades", params={"bot_id": bot_id})
        require(len(trades["items"]) == 2, f"expected 2 trades for the bot, got {trades}")
        stats = await api.call("GET", f"{ORM}/trades/stats", params={"bot_id": bot_id})
        require(stats["trades"] == 2 and abs(stats["pnl"] - 19.58) < 1e-9, f"stats: {stats}")
        print(f"bot stats: {stats['trades']} trades, pnl {stats['pnl']}, "
              f"win rate {stats['win_rate']}")
        perf = await api.call("GET", f"{ORM}/trades/performance",
                              params={"bot_id": bot_id, "bucket": "day"})
        print(f"performance: {[(p['period'], p['pnl']) for p in perf['points']]}")

        pending = await api.call("POST", f"{ORM}/orders", 201, json={
            "ex_id": ex_id, "bot_id": bot_id, "symbol": args.symbol, "side": "sell",
            "order_type": "market", "volume": 1})
        open_orders = await api.call("GET", f"{ORM}/orders/open", params={"bot_id": bot_id})
        require([o["order_id"] for o in open_orders["items"]] == [pending["order_id"]],
                f"open orders: {open_orders}")
        blocked = await api.call("DELETE", f"{ORM}/bots/{bot_id}", 409)
        print(f"delete refused while an order is open: {blocked['detail']}")
        await api.call("PATCH", f"{ORM}/orders/{pending['order_id']}/status",
                       json={"status": "Cancelled", "reason": "example done"})
        filled = await api.call("GET", f"{ORM}/orders",
                                params={"bot_id": bot_id, "status": "Filled"})
        require([o["order_id"] for o in filled["items"]] == [oid], f"filled filter: {filled}")

        dash = await api.call("GET", f"{ORM}/views/bot-dashboard", params={"bot_id": bot_id})
        row = dash["items"][0]
        print(f"dashboard: orders {row['orders']}, open {row['open_orders']}, "
              f"trades {row['trades']}, pnl {row['pnl']}")
        require(row["orders"] == 2 and row["open_orders"] == 0, f"dashboard row: {row}")
        overview = await api.call("GET", f"{ORM}/views/trading-overview")
        print(f"overview symbols: {[s['symbol'] for s in overview['by_symbol']]}")
        await api.call("DELETE", f"{ORM}/bots/{bot_id}", 204)
        print("bot deleted; its orders and trades stay in the history")


def parse() -> argparse.Namespace:
    parser = base_parser(__doc__.splitlines()[0], email=None, password=None)
    parser.add_argument("--symbol", default="BTC/USD")
    return parser.parse_args()


if __name__ == "__main__":
    run(main, parse())
