"""Forms and API actions refuse requests another site could make, on each store: a CSRF
token bound to a secret of the server (a cookie planted by a page on another port of the
same host is not enough), and the Origin and Sec-Fetch-Site headers browsers send."""

from __future__ import annotations

import re

import dashboard_jobs as dj
import pytest
from dashboard_helpers import TestClient
from starlette.applications import Starlette
from starlette.routing import Mount

import onward
from onward.dashboard import create_app
from onward.testing import drain

TOKEN = "s3cret-token-for-tests"
PLANTED = "planted-by-another-page-0123456789"
OWN_ORIGIN = "http://testserver"


def failed_job() -> str:
    job_id = dj.Boom.perform_later("x").id
    drain()
    return job_id


def form_token(client: TestClient, path: str = "/jobs") -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', client.get(path).text)
    assert match, "the page carries no CSRF token"
    return match.group(1)


def plant(client: TestClient, value: str) -> None:
    """Replace the browser's CSRF cookie, as a page of another port of the host can."""
    client.cookies.delete("onward_csrf")
    client.cookies.set("onward_csrf", value)


def test_a_planted_cookie_repeated_in_the_form_is_refused(store: onward.Store, client: TestClient) -> None:
    """A page on another port of the same host can set the dashboard's cookies (cookies do
    not tell ports apart); repeating the value it planted must not be enough."""
    job_id = failed_job()
    plant(client, PLANTED)
    page = client.post(f"/jobs/{job_id}/discard", data={"csrf_token": PLANTED}, follow_redirects=False)
    assert page.status_code == 403
    assert "CSRF token" in page.text
    api = client.post(f"/api/jobs/{job_id}/discard", headers={"X-CSRF-Token": PLANTED})
    assert api.status_code == 403
    assert "X-CSRF-Token" in api.json()["error"]
    assert store.get(job_id).state == "failed"
    # The dashboard's own pages carry the token for whatever cookie the browser holds.
    token = form_token(client)
    assert token != PLANTED
    done = client.post(f"/jobs/{job_id}/discard", data={"csrf_token": token}, follow_redirects=False)
    assert done.status_code == 303
    assert store.get(job_id).state == "discarded"


def test_the_token_is_bound_to_the_server_not_only_to_the_cookie(store: onward.Store) -> None:
    """Without an access token each app signs with a random secret of its own; with one, the
    secret derives from it, so every process serving the same dashboard agrees."""
    job_id = failed_job()
    with TestClient(create_app(store)) as one, TestClient(create_app(store)) as other:
        token = form_token(one)
        plant(other, one.cookies["onward_csrf"])
        assert other.post(f"/jobs/{job_id}/retry", data={"csrf_token": token}).status_code == 403
    with TestClient(create_app(store, token=TOKEN)) as one, TestClient(create_app(store, token=TOKEN)) as other:
        one.get(f"/?token={TOKEN}")
        other.get(f"/?token={TOKEN}")
        token = form_token(one)
        plant(other, one.cookies["onward_csrf"])
        done = other.post(f"/jobs/{job_id}/retry", data={"csrf_token": token}, follow_redirects=False)
        assert done.status_code == 303
        assert store.get(job_id).state == "enqueued"
        nonce = one.cookies["onward_csrf"]
    with TestClient(create_app(store, token="another-token")) as elsewhere:
        elsewhere.get("/?token=another-token")
        plant(elsewhere, nonce)
        assert elsewhere.post(f"/jobs/{job_id}/discard", data={"csrf_token": token}).status_code == 403
    assert store.get(job_id).state == "enqueued"


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://testserver:8643"},  # another port of the same host
        {"Origin": "http://evil.example"},
        {"Origin": "null"},  # a sandboxed frame, a data: page
        {"Sec-Fetch-Site": "same-site"},  # another port or a sibling domain
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": OWN_ORIGIN, "Sec-Fetch-Site": "same-site"},
    ],
)
def test_a_post_from_another_origin_is_refused_even_with_a_good_token(
    store: onward.Store, client: TestClient, headers: dict[str, str]
) -> None:
    job_id = failed_job()
    token = form_token(client)
    page = client.post(f"/jobs/{job_id}/discard", data={"csrf_token": token}, headers=headers, follow_redirects=False)
    assert page.status_code == 403
    assert "another site" in page.text
    api = client.post(f"/api/jobs/{job_id}/discard", headers={"X-CSRF-Token": token, **headers})
    assert api.status_code == 403
    assert "another site" in api.json()["error"]
    assert store.get(job_id).state == "failed"


@pytest.mark.parametrize(
    "headers",
    [
        {},  # an older browser, or a script
        {"Origin": OWN_ORIGIN, "Sec-Fetch-Site": "same-origin"},  # the dashboard's own form
        {"Origin": "HTTP://TestServer", "Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},  # typed by the user
        {"Origin": "https://testserver"},  # served over HTTPS by a proxy in front
    ],
)
def test_a_post_from_the_dashboard_itself_is_accepted(
    store: onward.Store, client: TestClient, headers: dict[str, str]
) -> None:
    job_id = failed_job()
    token = form_token(client)
    done = client.post(f"/jobs/{job_id}/retry", data={"csrf_token": token}, headers=headers, follow_redirects=False)
    assert done.status_code == 303
    assert store.get(job_id).state == "enqueued"


def test_a_bearer_token_needs_no_csrf_token_but_another_origin_is_still_refused(store: onward.Store) -> None:
    job_id = failed_job()
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(create_app(store, token=TOKEN)) as scripted:
        refused = scripted.post(f"/api/jobs/{job_id}/retry", headers={**bearer, "Sec-Fetch-Site": "cross-site"})
        assert refused.status_code == 403
        assert scripted.post(f"/api/jobs/{job_id}/retry", headers=bearer).status_code == 200
    assert store.get(job_id).state == "enqueued"


def test_mounted_under_a_prefix_the_origin_is_the_host_s(store: onward.Store) -> None:
    job_id = failed_job()
    client = TestClient(Starlette(routes=[Mount("/ops/jobs-ui", app=create_app(store))]))
    token = form_token(client, "/ops/jobs-ui/jobs")
    own = {"Origin": OWN_ORIGIN, "Sec-Fetch-Site": "same-origin"}
    other = {"Origin": "http://testserver:1", "Sec-Fetch-Site": "same-site"}
    url = f"/ops/jobs-ui/jobs/{job_id}/retry"
    assert client.post(url, data={"csrf_token": token}, headers=other).status_code == 403
    done = client.post(url, data={"csrf_token": token}, headers=own, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == f"/ops/jobs-ui/jobs/{job_id}?done=retry"
    assert store.get(job_id).state == "enqueued"
