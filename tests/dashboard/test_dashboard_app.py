"""The dashboard's server as an operator starts it: read-only, GET only, headers, the token."""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from dashboard_support import BUNDLE, T0, Clock, Dashboard, settle, uid

from trustprov.dashboard.app import CSP, access_token, needs_token, parse_listen
from trustprov.errors import InputError
from trustprov.line.records import RecordsError, RecordStore, meta

Start = Callable[..., Dashboard]


def _get(
    url: str, path: str = "/", *, method: str = "GET", headers: dict[str, str] | None = None
) -> http.client.HTTPResponse:
    return _fetch(url, path, method=method, headers=headers)[0]


def _fetch(
    url: str, path: str = "/", *, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[http.client.HTTPResponse, bytes]:
    parts = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    c.request(method, path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r, body


def _filled(url: str, clock: Clock) -> None:
    with RecordStore(url, clock=clock) as w:
        job = w.open_job("LOT-1", BUNDLE, [uid(i) for i in range(10)])
        settle(w, job, "st-1", 6, at=T0, failed=["bad-chunk"])


def test_the_token_rule() -> None:
    """The default binds to loopback and needs no token; every other address needs one, another
    loopback address (127.0.0.2) and the wildcard included."""
    assert parse_listen("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_listen("[::1]:0") == ("::1", 0)
    for bad in ("8080", "host:", "host:http", ":80", "h:70000"):
        with pytest.raises(InputError):
            parse_listen(bad)
    assert not needs_token("127.0.0.1")
    assert not needs_token("::1")
    for host in ("127.0.0.2", "0.0.0.0", "::", "192.168.1.10", "localhost"):  # noqa: S104
        assert needs_token(host)
        token, generated = access_token(host, None)
        assert generated
        assert token is not None
        assert len(token) >= 40
    assert access_token("127.0.0.1", None) == (None, False)
    assert access_token("127.0.0.1", "t" * 20) == ("t" * 20, False)
    with pytest.raises(InputError, match="at least"):
        access_token("0.0.0.0", "short")  # noqa: S104


def test_read_only_get_only_and_its_headers(
    start_dashboard: Start, store_url: str, clock: Clock
) -> None:
    _filled(store_url, clock)
    d = start_dashboard(store_url, "--listen", "127.0.0.1:0")
    assert d.token_url is None
    page = _get(d.url)
    assert page.status == 200
    assert page.headers["Content-Security-Policy"] == CSP
    assert "unsafe-inline" not in CSP
    assert "frame-ancestors 'none'" in CSP
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["X-Frame-Options"] == "DENY"
    for path in ("/static/dashboard.js", "/static/dashboard.css"):
        assert _get(d.url, path).status == 200
    assert _get(d.url, "/static/../app.py").status == 404
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        refused = _get(d.url, method=method)
        assert refused.status == 405, method
        assert refused.headers["Content-Security-Policy"] == CSP
    # a name rebound to 127.0.0.1 by someone else's web page is not this dashboard's host
    assert _get(d.url, headers={"Host": "attacker.example"}).status == 421
    host = urllib.parse.urlsplit(d.url).netloc
    assert _get(d.url, headers={"Host": host}).status == 200


def test_the_store_is_opened_read_only(store_url: str, clock: Clock) -> None:
    """The dashboard's store (as `serve` opens it) cannot write, even by a bug of its own."""
    _filled(store_url, clock)
    with (
        RecordStore(store_url, create=False, read_only=True) as r,
        pytest.raises(RecordsError, match="readonly"),
        r.transaction() as c,
    ):
        c.execute(sa.insert(meta).values(key="x", value="y"))


def test_the_token_is_required_beyond_loopback(
    start_dashboard: Start, store_url: str, clock: Clock
) -> None:
    _filled(store_url, clock)
    d = start_dashboard(store_url, "--listen", "127.0.0.2:0")
    assert d.token_url is not None
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(d.token_url).query)["token"][0]
    for path in ("/", "/events", "/static/dashboard.js", "/metrics", "/api/lots"):
        assert _get(d.url, path).status == 401, path
    assert _get(d.url, f"/?token={token[:-1]}x").status == 401
    assert _get(d.url, headers={"Authorization": f"Bearer {token}x"}).status == 401
    assert _get(d.url, headers={"Cookie": f"trustprov-dashboard={token[1:]}"}).status == 401
    first = _get(d.url, f"/?token={token}")
    assert first.status == 303
    assert first.headers["Location"] == "/"  # the token leaves the address bar at once
    cookie = first.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert _get(d.url, headers={"Cookie": cookie.split(";")[0]}).status == 200
    assert _get(d.url, headers={"Authorization": f"Bearer {token}"}).status == 200
    # a scraper presents the token as a bearer token (Prometheus: authorization.credentials)
    bearer = {"Authorization": f"Bearer {token}"}
    assert _get(d.url, "/metrics", headers=bearer).status == 200
    assert _get(d.url, "/api/lots", headers=bearer).status == 200


def test_a_given_token_on_loopback(start_dashboard: Start, store_url: str, clock: Clock) -> None:
    _filled(store_url, clock)
    token = "given-token-of-the-operator"  # noqa: S105 - a test's token, not a credential
    d = start_dashboard(
        store_url, "--listen", "127.0.0.1:0", env={"TRUSTPROV_DASHBOARD_TOKEN": token}
    )  # the token not on argv, where `ps` shows it
    assert token not in "".join(d.lines)  # an operator's token is never printed
    assert _get(d.url).status == 401
    assert _get(d.url, headers={"Authorization": f"Bearer {token}"}).status == 200


def test_a_token_from_a_file(
    start_dashboard: Start, store_url: str, clock: Clock, tmp_path: Path
) -> None:
    _filled(store_url, clock)
    token = "token-of-the-operator-in-a-file"  # noqa: S105 - a test's token, not a credential
    path = tmp_path / "token"
    path.write_text(token + "\n")
    path.chmod(0o600)
    d = start_dashboard(store_url, "--listen", "127.0.0.2:0", "--token-file", str(path))
    assert token not in "".join(d.lines)
    assert _get(d.url).status == 401
    assert _get(d.url, headers={"Authorization": f"Bearer {token}"}).status == 200


def test_metrics_and_api_lots_are_served(
    start_dashboard: Start, store_url: str, clock: Clock
) -> None:
    _filled(store_url, clock)
    d = start_dashboard(store_url, "--listen", "127.0.0.1:0")
    r, body = _fetch(d.url, "/metrics")
    assert r.status == 200
    assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert r.headers["Content-Security-Policy"] == CSP
    text = body.decode()
    assert 'trustprov_lot_good_chips{lot="LOT-1"} 5\n' in text
    assert 'trustprov_lot_failed_chips{lot="LOT-1"} 1\n' in text
    assert 'trustprov_lot_alarm{lot="LOT-1"} 1\n' in text
    r, body = _fetch(d.url, "/api/lots")
    assert r.status == 200
    assert r.headers["Content-Type"] == "application/json"
    doc = json.loads(body)
    lot = doc["lots"][0]
    assert (lot["lot"], lot["good"], lot["failed"], lot["pending"]) == ("LOT-1", 5, 1, 4)
    assert doc["alarms"] == [{"lot": "LOT-1", "why": ["1 of 10 chips failed"]}]
    assert _get(d.url, "/metrics", method="POST").status == 405
