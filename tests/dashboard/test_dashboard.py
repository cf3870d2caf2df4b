"""The dashboard page and its assets are served to anyone; data needs a login."""


async def test_root_redirects_to_dashboard(client):
    """GET / sends a browser to /dashboard."""
    resp = await client.get("/", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"] == "/dashboard"


async def test_dashboard_page_is_public_and_locked_down(client):
    """The page renders without a login, has the login form, and a strict CSP that
    allows only its own script and style."""
    resp = await client.get("/dashboard")
    assert resp.status == 200
    html = await resp.text()
    assert 'id="login-form"' in html and "/static/dashboard.js" in html
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp


async def test_dashboard_assets_are_served(client):
    """The script and stylesheet are served without credentials; a missing asset is 404."""
    js = await client.get("/static/dashboard.js")
    assert js.status == 200 and "cache/ws" in await js.text()
    css = await client.get("/static/dashboard.css")
    assert css.status == 200
    missing = await client.get("/static/nope.js")
    assert missing.status == 404
