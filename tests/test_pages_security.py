"""The dashboard's defences, in-process over a real socket: sign-in, session cookie, CSRF,
read-only mode, security headers, and feed text that never becomes markup.

The service runs as ``monitor run`` runs it (``test_api.running``), polling a loopback feed
server. The pages and the forms are not listed here by hand: they are the app's
:class:`PageRoute`s, so a page added later is held to the same rules. Tests whose outcome
depends on what is stored run on SQLite and PostgreSQL; pure HTTP behaviour on SQLite.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import httpx
import itsdangerous.timed
import pytest
from fastapi.routing import iter_route_contexts
from feedserver import FeedServer
from pages import csrf_in, web_client
from receivers import WebhookReceiver
from test_api import TOKEN, Running, running, stored_items, until
from test_service import rss

from monitor.config import Settings, load_settings
from monitor.config_ops import HttpConfig
from monitor.web.app import create_web_app
from monitor.web.context import WebContext
from monitor.web.pages.base import PageRoute
from monitor.web.pages.session import COOKIE, _serializer

PASSWORD = "page-test password 0123"
NOW = datetime.now(UTC)
WIRE = [
    ("w1", "CSTO summit opens in Astana", "Leaders of the CSTO met.", NOW),
    ("w2", "Встреча с Токаевым", "ТОКАЕВА встретили в Москве", NOW),
    ("w3", "Weather in Bishkek", "Sunny &amp; cold", NOW),
]
SCRIPT = "<script>window.pwned=1</script>"
IMG = '<img src=x onerror="window.pwned=2">'
FEED_TITLE = "<script>window.pwned=3</script> Hostile wire"
EVIL_LINK = 'https://evil.example/a?b="><script>window.pwned=6</script>'


def hostile_feed() -> bytes:
    """Feed text that is markup once decoded: titles are text (one level of escaping);
    descriptions are HTML, so their markup is escaped twice to survive as text."""

    def esc(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    items = [
        ("h1", f"{SCRIPT} pwned title", "javascript:window.pwned=4", esc(esc(IMG)) + " pwned"),
        ("h2", f"{IMG} pwned image", EVIL_LINK, esc(esc(SCRIPT)) + " pwned \u202ereversed"),
    ]
    entries = "".join(
        f"<item><guid>{guid}</guid><title>{esc(title)}</title><link>{esc(link)}</link>"
        f"<description>{text}</description></item>"
        for guid, title, link, text in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{esc(FEED_TITLE)}</title><link>javascript:window.pwned=5</link>{entries}"
        "</channel></rss>"
    ).encode()


def write_config(
    tmp_path: Path,
    db_url: str,
    feed_server: FeedServer,
    hook: str,
    *,
    password: str | None = PASSWORD,
    token: str | None = TOKEN,
    session: str = "12h",
    name: str = "monitor.yaml",
) -> Settings:
    """Two feeds: ``Wire`` (plain text) and a hostile one named by its own title."""
    http = [f'listen: "127.0.0.1:0", session: {session}']
    if password:
        http.append(f'password: "{password}"')
    if token:
        http.append(f'token: "{token}"')
    path = tmp_path / name
    path.write_text(
        f"""
database: {db_url}
service: {{tick: 0.1s}}
defaults: {{interval: 1s, backlog: all}}
polling: {{parse_workers: 0, jitter: 0}}
http: {{{", ".join(http)}}}
feeds:
  - url: {feed_server.url("/wire.xml")}
    name: Wire
  - url: {feed_server.url("/hostile.xml")}
watchlists:
  - name: csto
    terms: [CSTO]
    notify: [hook]
  - name: pwned
    query: pwned
    notify: [{{channel: hook, stories: separate}}]  # the hostile items are one story
channels:
  - name: hook
    type: webhook
    url: {hook}
    retry: [0s]
""",
        encoding="utf-8",
    )
    return load_settings(path, {})


def serve_feeds(feed_server: FeedServer) -> None:
    feed_server.set_feed("/wire.xml", rss(*WIRE, title="Wire feed"))
    feed_server.set_feed("/hostile.xml", hostile_feed())


ITEMS = len(WIRE) + 2


async def stored(api: Running, count: int = ITEMS) -> None:
    """Wait for ``count`` items, through the store (the API is off without a token)."""

    async def enough() -> bool:
        feeds = api.app.store.list_feeds()
        return sum(f.items for f in feeds) >= count and all(f.last_polled_at for f in feeds)

    await until(enough, f"{count} items stored")


# --- the app's pages, and a signed-in browser ------------------------------------------


def page_routes(api: Running) -> list[tuple[str, set[str]]]:
    """Every page of the app as the server builds it (its path and methods), the login
    form included: the routes whose class is :class:`PageRoute`."""
    web = create_web_app(WebContext(api.service))
    return [
        (str(route.path), set(route.methods or ()))
        for route in iter_route_contexts(web.routes)
        if isinstance(route.original_route, PageRoute)
    ]


def get_pages(api: Running) -> list[str]:
    return sorted({path for path, methods in page_routes(api) if "GET" in methods})


def post_pages(api: Running) -> list[str]:
    return sorted({path for path, methods in page_routes(api) if "POST" in methods})


def filled(path: str, api: Running) -> str:
    """A route's path with real values in its parameters where the store has some."""
    feeds = api.app.store.list_feeds()
    alerts = api.app.store.page_alerts(after=None, limit=1) if "{" in path else []
    values = {
        "feeds": str(feeds[0].id) if feeds else "1",
        "alerts": str(alerts[0].alert.id) if alerts else "1",
        "watchlists": "csto",
    }
    section = path.strip("/").split("/")[0]
    return re.sub(r"\{[^}]+\}", values.get(section, "1"), path)


def client(api: Running) -> httpx.AsyncClient:
    """A browser of its own: its own cookies, no token."""
    return web_client(str(api.anon.base_url))


async def login_form(browser: httpx.AsyncClient, next: str = "/") -> str:
    r = await browser.get("/login", params={"next": next})
    assert r.status_code == 200, r.text
    return csrf_in(r.text)


async def sign_in(browser: httpx.AsyncClient, secret: str = PASSWORD) -> str:
    """Sign in as a browser does; returns the CSRF value of the session's forms."""
    csrf = await login_form(browser)
    r = await browser.post("/login", data={"csrf": csrf, "password": secret, "next": "/"})
    assert r.status_code == 303, r.text
    page = await browser.get("/")
    assert page.status_code == 200
    return csrf_in(page.text)


async def signed_in(browser: httpx.AsyncClient) -> bool:
    r = await browser.get("/")
    return r.status_code == 200


@pytest.fixture
async def locked(
    tmp_path: Path, sqlite_url: str, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> AsyncIterator[Running]:
    """A dashboard with a password and a token, on SQLite, its feeds polled."""
    serve_feeds(feed_server)
    settings = write_config(tmp_path, sqlite_url, feed_server, webhook_receiver.url)
    async with running(settings) as api:
        await stored_items(api, ITEMS)
        yield api


@pytest.fixture
async def stocked(
    tmp_path: Path, db_url: str, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> AsyncIterator[Running]:
    """The same on each database, with the alerts on hostile items delivered."""
    serve_feeds(feed_server)
    settings = write_config(tmp_path, db_url, feed_server, webhook_receiver.url)
    async with running(settings) as api:
        await stored_items(api, ITEMS)
        await webhook_receiver.wait_for_async(3, timeout=20)
        yield api


# --- sign-in ---------------------------------------------------------------------------


async def test_every_page_sends_a_stranger_to_the_login_form(locked: Running) -> None:
    pages = get_pages(locked)
    assert {"/", "/items", "/login"} <= set(pages)
    async with client(locked) as stranger:
        await login_form(stranger)  # a login form's cookie is no sign-in either
        for path in [p for p in pages if p != "/login"]:
            url = filled(path, locked) + "?q=x"
            r = await stranger.get(url)
            assert r.status_code == 303, (path, r.status_code)
            target = urlsplit(r.headers["location"])
            assert target.path == "/login", path
            assert parse_qs(target.query)["next"] == [url], path
        for path in post_pages(locked):
            if path != "/login":
                r = await stranger.post(filled(path, locked), data={"csrf": "x"})
                assert r.status_code == 303, path
                assert urlsplit(r.headers["location"]).path == "/login"


async def test_login_takes_the_password_or_the_token_and_refuses_others(
    locked: Running,
) -> None:
    for secret in (PASSWORD, TOKEN):
        async with client(locked) as browser:
            csrf = await login_form(browser, next="/items?q=CSTO")
            r = await browser.post(
                "/login", data={"csrf": csrf, "password": secret, "next": "/items?q=CSTO"}
            )
            assert (r.status_code, r.headers["location"]) == (303, "/items?q=CSTO")
            assert await signed_in(browser)
    async with client(locked) as browser:
        csrf = await login_form(browser)
        for wrong in ("", PASSWORD.upper(), PASSWORD + " ", TOKEN[:-1]):
            r = await browser.post("/login", data={"csrf": csrf, "password": wrong})
            assert r.status_code == 401, wrong
            assert "not the password" in r.text and COOKIE not in r.headers.get("set-cookie", "")
        assert not await signed_in(browser)


async def test_login_refuses_everything_after_five_failures(locked: Running) -> None:
    async with client(locked) as browser:
        csrf = await login_form(browser)
        for _ in range(5):
            r = await browser.post("/login", data={"csrf": csrf, "password": "guess 0123456"})
            assert r.status_code == 401
        r = await browser.post("/login", data={"csrf": csrf, "password": PASSWORD})
        assert r.status_code == 429 and "Too many" in r.text
        assert not await signed_in(browser)


def cookie_attributes(response: httpx.Response) -> dict[str, str]:
    [header] = [h for h in response.headers.get_list("set-cookie") if h.startswith(COOKIE)]
    parts = [p.strip() for p in header.split(";")]
    attributes = {}
    for part in parts[1:]:
        name, _, value = part.partition("=")
        attributes[name.lower()] = value
    return attributes


async def test_the_session_cookie_is_httponly_lax_for_the_whole_site_and_lasts_the_session(
    tmp_path: Path, sqlite_url: str, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    serve_feeds(feed_server)
    settings = write_config(tmp_path, sqlite_url, feed_server, webhook_receiver.url, session="2h")
    async with running(settings) as api, client(api) as browser:
        csrf = await login_form(browser)
        r = await browser.post("/login", data={"csrf": csrf, "password": PASSWORD})
        attributes = cookie_attributes(r)
        assert "httponly" in attributes and "secure" not in attributes  # plain http here
        assert attributes["samesite"].lower() == "lax" and attributes["path"] == "/"
        assert attributes["max-age"] == str(2 * 3600)


async def test_the_login_forms_cookie_is_no_fast_test_of_a_password_guess(
    locked: Running,
) -> None:
    """Every visitor of /login gets a cookie signed with the session key: were the key a
    fast hash of the password, a guess could be checked against it offline, unthrottled."""
    async with client(locked) as browser:
        await login_form(browser)
        cookie = browser.cookies[COOKIE]
    joined = "\0".join(("monitor-dashboard", PASSWORD, TOKEN))
    for key in (
        PASSWORD.encode(),
        hashlib.sha256(PASSWORD.encode()).digest(),
        hashlib.sha256(joined.encode()).digest(),
    ):
        for salt in ("monitor-session", "itsdangerous"):
            with pytest.raises(itsdangerous.BadSignature):
                itsdangerous.URLSafeTimedSerializer(key, salt=salt).loads(cookie)


async def test_a_tampered_or_foreign_cookie_is_no_session(locked: Running) -> None:
    async with client(locked) as browser:
        await sign_in(browser)
        good = browser.cookies[COOKIE]
        payload, _, signature = good.rpartition(".")
        flipped = ("A" if signature[0] != "A" else "B") + signature[1:]  # all bits count
        others = {
            "signature changed": f"{payload}.{flipped}",
            "payload changed": f"{payload[:-1]}{'A' if payload[-1] != 'A' else 'B'}.{signature}",
            "another password": _serializer(HttpConfig(password="another password 0")).dumps(
                {"n": "nonce", "u": 1}
            ),
            "garbage": "x" * 2000,
        }
        for what, value in others.items():
            browser.cookies.set(COOKIE, value)
            assert not await signed_in(browser), what
        browser.cookies.set(COOKIE, good)
        assert await signed_in(browser)


async def test_changing_the_password_signs_everyone_out(
    tmp_path: Path, sqlite_url: str, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    serve_feeds(feed_server)
    hook = webhook_receiver.url
    before = write_config(tmp_path, sqlite_url, feed_server, hook, token=None)
    after = write_config(
        tmp_path, sqlite_url, feed_server, hook, token=None, password="a new password 0"
    )
    async with running(before) as api, client(api) as browser:
        await sign_in(browser)
        cookie = browser.cookies[COOKIE]
    async with running(before) as api, client(api) as browser:
        browser.cookies.set(COOKIE, cookie)
        assert await signed_in(browser)  # a restart keeps sessions
    async with running(after) as api, client(api) as browser:
        browser.cookies.set(COOKIE, cookie)
        assert not await signed_in(browser)


def clock_ago(seconds: float) -> SimpleNamespace:
    """A stand-in for the ``time`` module ``itsdangerous`` stamps cookies with."""
    return SimpleNamespace(time=lambda: time.time() - seconds)


async def test_a_sign_in_ends_after_http_session(
    tmp_path: Path,
    sqlite_url: str,
    feed_server: FeedServer,
    webhook_receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    serve_feeds(feed_server)
    settings = write_config(tmp_path, sqlite_url, feed_server, webhook_receiver.url, session="5m")
    async with running(settings) as api:
        for age, still in ((290, True), (310, False)):
            async with client(api) as browser:
                with monkeypatch.context() as m:  # sign in ``age`` seconds ago
                    m.setattr(itsdangerous.timed, "time", clock_ago(age))
                    csrf = await login_form(browser)
                    r = await browser.post("/login", data={"csrf": csrf, "password": PASSWORD})
                    assert r.status_code == 303
                assert await signed_in(browser) is still, age


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "//evil.example/items",
        "https://evil.example",
        "http:evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
        "evil.example",
    ],
)
async def test_the_next_page_is_never_another_site(locked: Running, target: str) -> None:
    async with client(locked) as browser:
        csrf = await login_form(browser, next=target)
        r = await browser.post("/login", data={"csrf": csrf, "password": PASSWORD, "next": target})
        assert r.status_code == 303
        location = r.headers["location"]
        assert location == "/", location
        r = await browser.get("/login", params={"next": target})  # signed in: straight on
        assert (r.status_code, r.headers["location"]) == (303, "/")


# --- forms -----------------------------------------------------------------------------


async def test_every_form_refuses_a_missing_or_wrong_csrf_a_foreign_origin_and_a_big_body(
    locked: Running,
) -> None:
    posts = post_pages(locked)
    assert {"/login", "/logout"} <= set(posts)
    async with client(locked) as browser:
        csrf = await sign_in(browser)
        for path in posts:
            url = filled(path, locked)
            refusals = [
                ({}, {}, 403),
                ({"csrf": ""}, {}, 403),
                ({"csrf": csrf[:-1] + "0" if csrf[-1] != "0" else csrf[:-1] + "1"}, {}, 403),
                ({"csrf": csrf}, {"Origin": "http://evil.example"}, 403),
                ({"csrf": csrf}, {"Origin": "null"}, 403),
                ({"csrf": csrf, "padding": "x" * (64 * 1024)}, {}, 413),
            ]
            for form, headers, status in refusals:
                r = await browser.post(url, data=form, headers=headers)
                assert r.status_code == status, (path, form.keys(), headers, r.status_code)
                assert "set-cookie" not in r.headers, path
        assert await signed_in(browser)  # not even the sign-out went through
        r = await browser.post("/logout", data={"csrf": csrf})
        assert r.status_code == 303
        assert not await signed_in(browser)


# --- read-only mode --------------------------------------------------------------------


def whole_page(html: str) -> bool:
    """A page, not a fragment a script of ours puts into one (the query tester's)."""
    return "<html" in html[:200]


class Tags(HTMLParser):
    """Every start tag of a page with its attributes, and the text inside <script>."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.script_text: list[str] = []
        self._in: str | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k.lower(): v or "" for k, v in attrs}))
        self._in = tag

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in in ("script", "style") and data.strip():
            self.script_text.append(data)

    def named(self, *names: str) -> Iterator[dict[str, str]]:
        return (attrs for tag, attrs in self.tags if tag in names)


async def test_without_a_credential_the_dashboard_is_read_only_and_says_so(
    tmp_path: Path, sqlite_url: str, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    serve_feeds(feed_server)
    settings = write_config(
        tmp_path, sqlite_url, feed_server, webhook_receiver.url, password=None, token=None
    )
    async with running(settings) as api, client(api) as browser:
        await stored(api)
        for path in get_pages(api):
            r = await browser.get(filled(path, api))
            if path == "/login":
                assert (r.status_code, r.headers["location"]) == (303, "/")
                continue
            assert r.status_code in (200, 404), (path, r.status_code)
            assert "Read-only" in r.text or not whole_page(r.text), path
            assert "set-cookie" not in r.headers, path
            methods = [a.get("method", "get").lower() for a in Tags(r.text).named("form")]
            assert "post" not in methods, path
        for path in post_pages(api):
            r = await browser.post(filled(path, api), data={"csrf": "", "password": PASSWORD})
            assert r.status_code == 403, path
            assert "read-only" in r.text.lower() or "expired" in r.text, path


async def test_pages_answer_only_to_addresses_localhost_and_the_configured_names(
    tmp_path: Path, sqlite_url: str, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    """A read-only dashboard needs no sign-in: a page of another site whose name its owner
    points at 127.0.0.1 (DNS rebinding) must not be able to read it."""
    serve_feeds(feed_server)
    settings = write_config(
        tmp_path, sqlite_url, feed_server, webhook_receiver.url, password=None, token=None
    )
    async with running(settings) as api, client(api) as browser:
        port = urlsplit(str(api.anon.base_url)).port
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "10.0.0.7"):
            r = await browser.get("/", headers={"host": host})
            assert r.status_code == 200, host
        for host in (f"rebind.example:{port}", "localhost.evil.example", "", "[bad"):
            r = await browser.get("/", headers={"host": host})
            assert r.status_code == 421, host
            assert "http.hosts" in r.text
            assert "Hostile wire" not in r.text
        assert (await browser.get("/healthz", headers={"host": "rebind.example"})).is_success
    named = write_config(
        tmp_path, sqlite_url, feed_server, webhook_receiver.url, password=None, token=None
    )
    named.http.hosts.append("monitor.example.org")
    async with running(named) as api, client(api) as browser:
        r = await browser.get("/", headers={"host": "Monitor.Example.org."})
        assert r.status_code == 200


# --- headers and origins ---------------------------------------------------------------


def assert_security_headers(response: httpx.Response, what: str) -> None:
    csp = response.headers.get("content-security-policy", "")
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives.get("script-src") == ["'self'"], (what, csp)
    assert directives.get("default-src") == ["'none'"], (what, csp)
    assert directives.get("frame-ancestors") == ["'none'"], (what, csp)
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, what
    assert response.headers.get("x-content-type-options") == "nosniff", what


async def test_every_response_carries_the_security_headers(locked: Running) -> None:
    async with client(locked) as browser:
        await sign_in(browser)
        for path in [*get_pages(locked), "/static/monitor.css", "/static/monitor.js"]:
            r = await browser.get(filled(path, locked))
            assert_security_headers(r, path)
        for path in ("/api/feeds", "/api/items?q=CSTO", "/healthz", "/no-such-page"):
            assert_security_headers(await locked.client.get(path), path)
            assert_security_headers(await locked.anon.get(path), path)
        r = await browser.get("/static/monitor.css")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/css")
        r = await browser.get("/static/monitor.js")
        assert r.status_code == 200 and "javascript" in r.headers["content-type"]


async def test_no_page_loads_anything_from_another_origin(locked: Running) -> None:
    async with client(locked) as browser:
        await sign_in(browser)
        for path in get_pages(locked):
            if path == "/login":
                continue
            url = filled(path, locked)
            html = (await browser.get(url)).text
            page = Tags(html)
            for tag, attrs in page.tags:
                for name in ("src", "href", "action", "formaction", "srcset", "poster"):
                    value = attrs.get(name)
                    if value is None:
                        continue
                    external = bool(re.match(r"\s*([a-z][a-z0-9+.-]*:|//|\\)", value, re.I))
                    if tag == "a" and name == "href" and external:
                        assert value.startswith(("http://", "https://")), (url, value)
                        rel = set(attrs.get("rel", "").split())
                        assert {"noopener", "noreferrer", "nofollow"} <= rel, (url, value)
                    else:
                        assert not external, (url, tag, name, value)
            assets = [a["src"] for a in page.named("script") if "src" in a]
            assets += [a["href"] for a in page.named("link") if "stylesheet" in a.get("rel", "")]
            assert assets or not whole_page(html), url
            for asset in assets:
                assert asset.startswith("/static/"), asset
                assert (await browser.get(asset)).status_code == 200, asset


# --- hostile feed text -----------------------------------------------------------------


async def test_hostile_feed_text_is_shown_as_text_on_every_page(stocked: Running) -> None:
    async with client(stocked) as browser:
        await sign_in(browser)
        pages = {}
        for path in get_pages(stocked):
            if path != "/login":
                url = filled(path, stocked)
                pages[url] = (await browser.get(url)).text
        pages["/items?q=pwned"] = (await browser.get("/items", params={"q": "pwned"})).text
        for url, html in pages.items():
            tags = Tags(html)
            scripts = list(tags.named("script"))
            assert all(s.get("src", "").startswith("/static/") for s in scripts), url
            assert not tags.script_text, (url, tags.script_text)
            assert not list(tags.named("img", "iframe", "object", "embed", "base", "style")), url
            for tag, attrs in tags.tags:
                assert not [a for a in attrs if a.startswith("on")], (url, tag, attrs)
                assert "style" not in attrs, (url, tag)  # the CSP would refuse it anyway
                for name in ("href", "src", "action"):
                    assert (
                        not attrs.get(name, "")
                        .lower()
                        .strip()
                        .startswith(("javascript:", "data:", "vbscript:"))
                    ), (url, tag, attrs)
            assert "\u202e" not in html, url
        items = pages["/items?q=pwned"]
        assert "&lt;script&gt;window.pwned=1&lt;/script&gt; pwned title" in items
        assert "&lt;img src=x onerror=&#34;window.pwned=2&#34;&gt; pwned image" in items
        assert "&lt;script&gt;window.pwned=3&lt;/script&gt; Hostile wire" in items
        links = [a for a in Tags(items).named("a") if "evil.example" in a.get("href", "")]
        assert [a["href"] for a in links] == [EVIL_LINK]  # whole, inside its attribute
        assert "<mark>pwned</mark>" in items
