"""How the dashboard answers what it cannot serve, on each store: a page for the pages and
their actions, ``{"error": ...}`` under /api/, with the status the documentation gives.
A NUL character in the address (which no job id, queue or class holds, and PostgreSQL
cannot even compare with) is a bad request, not a server error."""

from __future__ import annotations

import re

import dashboard_jobs as dj
import pytest
from dashboard_helpers import TestClient

import onward
from onward.admin import Admin
from onward.dashboard import create_app
from onward.testing import drain


def csrf_of(client: TestClient) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', client.get("/").text)
    assert match
    return match.group(1)


def assert_page(response: object, status: int, *words: str) -> None:
    from httpx import Response

    assert isinstance(response, Response)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "<html" in response.text
    for word in words:
        assert word in response.text


def assert_json_error(response: object, status: int, *words: str) -> str:
    from httpx import Response

    assert isinstance(response, Response)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert isinstance(error, str)
    assert error
    for word in words:
        assert word in error
    return error


NUL_PAGES = [
    "/jobs?state=%00",
    "/jobs?queue=mail%00ers",
    "/jobs?class=app.jobs:Send%00",
    "/jobs?search=01a2%00",
    "/jobs?parent=%00",
    "/jobs?before=%00",
    "/jobs?queue%00=x",
    "/jobs/01a2%00cd",
    "/?fragment=%00",
]
NUL_API = [
    "/api/jobs?queue=%00",
    "/api/jobs?class=app.jobs:Send%00",
    "/api/jobs?search=%00abc",
    "/api/jobs?state=failed&parent=x%00",
    "/api/jobs/01a2%00cd",
    "/api/overview?minutes=%00",
]


@pytest.mark.parametrize("path", NUL_PAGES)
def test_a_nul_character_in_a_page_address_is_a_400_page(store: onward.Store, client: TestClient, path: str) -> None:
    dj.Quick.perform_later()
    assert_page(client.get(path), 400, "NUL")


@pytest.mark.parametrize("path", NUL_API)
def test_a_nul_character_in_an_api_address_is_a_json_400(store: onward.Store, client: TestClient, path: str) -> None:
    dj.Quick.perform_later()
    assert_json_error(client.get(path), 400, "NUL")


def test_a_nul_character_in_an_action_address_is_a_400(store: onward.Store, client: TestClient) -> None:
    token = csrf_of(client)
    assert_page(client.post("/jobs/01a2%00cd/retry", data={"csrf_token": token}), 400, "NUL")
    assert_json_error(client.post("/api/jobs/01a2%00cd/discard", headers={"X-CSRF-Token": token}), 400, "NUL")


@pytest.mark.parametrize("action", ["retry", "discard", "rerun-continuations"])
def test_a_get_on_an_action_is_a_405_that_says_what_the_address_takes(
    store: onward.Store, client: TestClient, action: str
) -> None:
    job_id = dj.Boom.perform_later("x").id
    drain()
    page = client.get(f"/jobs/{job_id}/{action}")
    assert_page(page, 405, "POST")
    assert page.headers["allow"] == "POST"
    api = client.get(f"/api/jobs/{job_id}/{action}")
    assert_json_error(api, 405, "POST")
    assert api.headers["allow"] == "POST"
    assert_json_error(client.put(f"/api/jobs/{job_id}/{action}"), 405)
    assert store.get(job_id).state == "failed"


def test_a_post_where_only_get_is_served_is_a_405(store: onward.Store, client: TestClient) -> None:
    api = client.post("/api/overview", headers={"X-CSRF-Token": csrf_of(client)})
    assert_json_error(api, 405, "GET")
    assert "GET" in api.headers["allow"]
    assert_page(client.post("/jobs"), 405)


def test_unknown_addresses_are_404_pages_and_json_under_the_api(store: onward.Store, client: TestClient) -> None:
    assert_json_error(client.get("/api/nothing-here"), 404, "/api/nothing-here")
    assert_json_error(client.get("/api/jobs/not-a-job"), 404, "no job with id")
    assert_page(client.get("/nothing-here"), 404, "Not found")
    assert_page(client.get("/jobs/not-a-job"), 404, "no job with id")


def test_an_unexpected_failure_is_a_500_in_the_same_forms(store: onward.Store, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Admin, *args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(Admin, "stats", broken)
    client = TestClient(create_app(store), raise_server_exceptions=False)
    api = client.get("/api/overview")
    assert_json_error(api, 500)
    assert "a bug" not in api.text  # the details go to the server's log, not to the visitor
    page = client.get("/")
    assert_page(page, 500)
    assert "a bug" not in page.text
    assert page.headers["content-security-policy"]
