"""The baseline: a bare aiohttp app with one JSON handler and nothing else.

    python scripts/bench/bare_server.py PORT
"""

import sys

from aiohttp import web


async def hello(request: web.Request) -> web.Response:
    return web.json_response({"user_id": 1, "email": "bare@example.com", "role": "user"})


app = web.Application()
app.router.add_get("/bare", hello)
app.router.add_post("/bare", hello)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
