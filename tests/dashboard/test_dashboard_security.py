"""Access token, CSRF, host check, security headers, escaping of job data, and mounting
the dashboard inside another application."""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin

import dashboard_jobs as dj
import pytest
from dashboard_helpers import TestClient
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

import onward
from onward.dashboard import create_app
from onward.testing import drain

TOKEN = "s3cret-token-for-tests"
SCRIPT = "<script>alert('xss')</script>"


@pytest.fixture
def guarded(sqlite_store: onward.Store) -> TestClient:
    return TestClient(create_app(sqlite_store, token=TOKEN), follow_redirects=False)


def test_with_a_token_every_request_must_carry_it(guarded: TestClient) -> None:
    for path in ("/", "/jobs", "/static/dashboard.css"):
        response = guarded.get(path)
        assert response.status_code == 401, path
        assert "access token" in response.text
    api = guarded.get("/api/overview")
    assert api.status_code == 401
    assert "Authorization: Bearer" in api.json()["error"]
    assert guarded.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 401
    guarded.cookies.set("onward_token", "wrong")
    assert guarded.get("/").status_code == 401
    guarded.cookies.clear()
    assert guarded.get("/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert guarded.get("/api/overview", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_the_login_link_sets_a_cookie_and_drops_the_token_from_the_address(guarded: TestClient) -> None:
    wrong = guarded.get("/jobs?token=nope")
    assert wrong.status_code == 401
    login = guarded.get(f"/jobs?state=failed&token={TOKEN}")
    assert login.status_code == 303
    assert login.headers["location"] == "/jobs?state=failed"
    cookie = login.headers["set-cookie"]
    assert f"onward_token={TOKEN}" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert login.headers["referrer-policy"] == "no-referrer"
    # The client keeps the cookie: the dashboard now opens without the token in the address.
    assert guarded.get("/jobs?state=failed").status_code == 200
    assert guarded.get("/api/jobs").status_code == 200


@pytest.mark.parametrize(
    ("address", "target"),
    [
        ("//evil.example/x", "/evil.example/x"),
        ("///evil.example/x?state=failed", "/evil.example/x?state=failed"),
        ("/%2F%2Fevil.example/x", "/evil.example/x"),
        ("/%5Cevil.example/x", "/%5Cevil.example/x"),  # browsers read /\host as //host: kept encoded
        ("/%5C%5Cevil.example", "/%5C%5Cevil.example"),
        ("/%09/evil.example", "/%09/evil.example"),  # browsers drop tabs from addresses
        ("/jobs/%2e%2e/x", "/x"),
        ("/%2e%2e/%2E%2E/./evil.example/", "/evil.example/"),  # never above the dashboard's path
        ("/jobs?search=%2F%2Fevil.example", "/jobs?search=%2F%2Fevil.example"),
    ],
)
def test_the_login_link_only_redirects_within_the_dashboard(
    sqlite_store: onward.Store, address: str, target: str
) -> None:
    for base in ("", "/ops"):
        app = create_app(sqlite_store, token=TOKEN)
        client = TestClient(Starlette(routes=[Mount(base, app=app)]) if base else app, follow_redirects=False)
        separator = "&" if "?" in address else "?"
        login = client.get(f"http://testserver{base}{address}{separator}token={TOKEN}")
        assert login.status_code == 303
        location = login.headers["location"]
        assert location == base + target
        assert urljoin("http://127.0.0.1:8642/", location).startswith(f"http://127.0.0.1:8642{base}/"), location


def test_token_in_a_header_needs_no_csrf_but_a_token_cookie_does(sqlite_store: onward.Store) -> None:
    first = dj.Boom.perform_later("a").id
    second = dj.Boom.perform_later("b").id
    drain()
    app = create_app(sqlite_store, token=TOKEN)
    with TestClient(app) as scripted:
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert scripted.post(f"/api/jobs/{first}/retry", headers=bearer).status_code == 200
    with TestClient(app) as browser_like:
        browser_like.get(f"/?token={TOKEN}")  # logs in: the cookie now authenticates
        assert browser_like.post(f"/api/jobs/{second}/retry").status_code == 403
        assert browser_like.post(f"/jobs/{second}/retry", data={}).status_code == 403
        assert sqlite_store.get(second).state == "failed"
        token = re.search(r'name="csrf_token" value="([^"]+)"', browser_like.get(f"/jobs/{second}").text)
        assert token is not None
        assert browser_like.post(f"/jobs/{second}/retry", data={"csrf_token": token.group(1)}).status_code == 200
        assert sqlite_store.get(second).state == "enqueued"


def test_allowed_hosts_refuse_other_host_names(sqlite_store: onward.Store) -> None:
    app = create_app(sqlite_store, allowed_hosts=["127.0.0.1", "localhost", "::1"])
    client = TestClient(app)
    assert client.get("/", headers={"Host": "127.0.0.1:8642"}).status_code == 200
    assert client.get("/", headers={"Host": "localhost:8642"}).status_code == 200
    assert client.get("/", headers={"Host": "[::1]:8642"}).status_code == 200
    refused = client.get("/", headers={"Host": "attacker.example:8642"})
    assert refused.status_code == 400
    assert client.get("/api/overview", headers={"Host": "attacker.example"}).json()["error"]


def test_pages_forbid_inline_script_and_style_and_framing(client: TestClient) -> None:
    dj.Boom.perform_later("x")
    drain()
    response = client.get("/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "style-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    # A referrer for the dashboard's own requests only: with none at all, browsers send
    # "Origin: null" with its forms, which the dashboard must refuse.
    assert response.headers["referrer-policy"] == "same-origin"
    for path in ("/", "/jobs", f"/jobs/{client.get('/api/jobs').json()['jobs'][0]['id']}"):
        page = client.get(path).text
        assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page) == [], path  # no inline script
        assert " style=" not in page, path  # no inline style (the policy would block it)
    client.cookies.clear()
    assert "onward_csrf=" in client.get("/").headers["set-cookie"]  # a CSRF token for each new visitor


def test_job_data_is_escaped_everywhere(store: onward.Store, client: TestClient) -> None:
    job_id = dj.Boom.perform_later(SCRIPT, **{"<img src=x onerror=alert(1)>": SCRIPT}).id
    drain()
    for path in ("/", "/jobs", f"/jobs?search={job_id}", f"/jobs/{job_id}"):
        page = client.get(path).text
        assert "<script>alert" not in page, path
        assert "<img src=x" not in page, path
    page = client.get(f"/jobs/{job_id}").text
    assert f"builtins.ValueError: {SCRIPT}" in html.unescape(page)  # the error, as text
    assert "&lt;script&gt;alert(" in page
    listing = client.get("/jobs").text
    assert "&lt;script&gt;alert(" in listing  # the arguments column
    assert client.get(f"/api/jobs/{job_id}").json()["job"]["args"] == [SCRIPT]


def test_mounted_under_a_prefix_in_another_application(sqlite_store: onward.Store) -> None:
    failed = dj.Boom.perform_later("x").id
    drain()

    def home(request: object) -> PlainTextResponse:
        return PlainTextResponse("the host application")

    host_app = Starlette(routes=[Route("/", home), Mount("/ops/jobs-ui", app=create_app(sqlite_store))])
    client = TestClient(host_app)
    assert client.get("/").text == "the host application"

    overview = client.get("/ops/jobs-ui/")
    assert overview.status_code == 200
    hrefs = re.findall(r'(?:href|src)="([^"]+)"', overview.text)
    assert "/ops/jobs-ui/jobs" in hrefs
    assert "/ops/jobs-ui/static/dashboard.css?v=" + onward.__version__ in hrefs
    assert all(h.startswith("/ops/jobs-ui/") for h in hrefs), hrefs
    assert 'data-refresh="/ops/jobs-ui/?fragment=live"' in overview.text
    assert "Path=/ops/jobs-ui" in overview.headers["set-cookie"]
    assert client.get("/ops/jobs-ui/static/dashboard.css").status_code == 200
    assert client.get("/ops/jobs-ui/static/dashboard.js").status_code == 200

    page = client.get(f"/ops/jobs-ui/jobs/{failed}").text
    assert f'data-api="/ops/jobs-ui/api/jobs/{failed}"' in page
    assert f'action="/ops/jobs-ui/jobs/{failed}/retry"' in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    done = client.post(f"/ops/jobs-ui/jobs/{failed}/retry", data={"csrf_token": token.group(1)}, follow_redirects=False)
    assert done.headers["location"] == f"/ops/jobs-ui/jobs/{failed}?done=retry"
    assert sqlite_store.get(failed).state == "enqueued"
    assert client.get("/ops/jobs-ui/api/jobs").json()["jobs"][0]["id"] == failed


def test_mounted_with_a_token(sqlite_store: onward.Store) -> None:
    host_app = Starlette(routes=[Mount("/ops", app=create_app(sqlite_store, token=TOKEN))])
    client = TestClient(host_app, follow_redirects=False)
    assert client.get("/ops/").status_code == 401
    login = client.get(f"/ops/?token={TOKEN}")
    assert login.headers["location"] == "/ops/"
    assert "Path=/ops" in login.headers["set-cookie"]
    assert client.get("/ops/").status_code == 200
