"""The dashboard's Schedules page, on each store: every schedule with its next tick, its last
tick and that tick's job, paused or not, a live worker or not; Pause and Resume (POST + CSRF);
and in headless Chromium."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dashboard_helpers import LiveServer, TestClient

import onward
from jobs_schedules import Tick
from onward.duties.scheduler import Scheduler
from onward.testing import drain, run_schedules

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def row(page: str, key: str) -> str:
    match = re.search(rf'<tr data-schedule="{re.escape(html.escape(key))}">(.*?)</tr>', page, re.S)
    assert match, f"no row for {key}"
    return match.group(1)


def test_the_schedules_page_shows_each_schedule(store: onward.Store, client: TestClient) -> None:
    onward.schedule("nightly-report", Tick, cron="0 3 * * *", timezone="Europe/Paris")
    onward.schedule("ping", Tick, every=30)
    onward.schedule("a/b <c>", Tick, every=60)
    run_schedules(T0)
    [job] = run_schedules(T0 + timedelta(seconds=31))
    drain()
    page = client.get("/schedules").text
    assert 'href="/schedules" class="active" aria-current="page">Schedules</a>' in page
    nightly = row(page, "nightly-report")
    assert "0 3 * * * (Europe/Paris)" in nightly
    assert "2024-05-02 01:00:00 UTC" in nightly
    assert "state-active" in nightly
    assert "none" in nightly  # no live worker
    ping = row(page, "ping")
    assert "2024-05-01 12:01:00 UTC" in ping  # next tick
    assert "2024-05-01 12:00:30 UTC" in ping  # last tick
    assert f'href="/jobs/{job.id}"' in ping
    assert "state-succeeded" in ping
    assert 'href="/jobs?schedule=ping"' in ping
    assert "a/b &lt;c&gt;" in page  # keys are text
    jobs = client.get("/jobs?schedule=ping").text
    assert f'data-job="{job.id}"' in jobs
    assert "Jobs of schedule" in jobs
    detail = client.get(f"/jobs/{job.id}").text
    assert "<dt>Schedule</dt>" in detail
    assert "2024-05-01 12:00:30 UTC" in detail


def test_a_live_worker_is_shown(store: onward.Store, client: TestClient) -> None:
    onward.schedule("ping", Tick, every=30)
    scheduler = Scheduler("host:1:abc")
    scheduler.tick(store)
    ping = row(client.get("/schedules").text, "ping")
    assert "live worker" in ping
    assert 'title="declared by host:1:abc"' in ping
    scheduler.close(store)
    assert "live worker" not in row(client.get("/schedules").text, "ping")


def test_pause_and_resume_are_posts_with_the_csrf_token(store: onward.Store, client: TestClient) -> None:
    onward.schedule("a/b <c>", Tick, every=30)
    run_schedules(T0)
    page = client.get("/schedules").text
    token = csrf_of(page)
    assert 'action="/schedules/pause"' in row(page, "a/b <c>")
    response = client.post("/schedules/pause", data={"csrf_token": token, "key": "a/b <c>"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/schedules?done=pause&key=a%2Fb+%3Cc%3E"
    assert store.list_schedules()[0].paused
    page = client.get(response.headers["location"]).text
    assert "a/b &lt;c&gt;: Schedule paused" in page
    paused = row(page, "a/b <c>")
    assert "state-paused" in paused
    assert 'action="/schedules/resume"' in paused
    response = client.post("/schedules/resume", data={"csrf_token": token, "key": "a/b <c>"})
    assert response.status_code == 200  # followed the redirect
    assert "Schedule resumed" in html.unescape(response.text)
    assert not store.list_schedules()[0].paused


def test_pause_and_resume_refuse_without_a_csrf_token_or_with_an_unknown_key(
    store: onward.Store, client: TestClient
) -> None:
    onward.schedule("ping", Tick, every=30)
    run_schedules(T0)
    assert client.post("/schedules/pause", data={"key": "ping"}).status_code == 403
    assert client.post("/schedules/pause", data={"key": "ping", "csrf_token": "x" * 43}).status_code == 403
    assert client.get("/schedules/pause").status_code == 405
    assert not store.list_schedules()[0].paused
    token = csrf_of(client.get("/schedules").text)
    unknown = client.post("/schedules/resume", data={"csrf_token": token, "key": "nope"})
    assert unknown.status_code == 404
    assert "no schedule with key &#39;nope&#39;" in unknown.text


def test_no_schedules(store: onward.Store, client: TestClient) -> None:
    assert "No schedules yet" in client.get("/schedules").text


def test_pause_a_schedule_in_the_browser(
    store: onward.Store, live_server: LiveServer, page: Any, screenshots: Path, store_url: str
) -> None:
    from playwright.sync_api import expect

    onward.schedule("nightly-report", Tick, cron="0 3 * * *", timezone="Europe/Paris")
    onward.schedule("ping", Tick, every=30)
    run_schedules(T0)
    run_schedules(T0 + timedelta(seconds=31))
    drain()
    page.goto(live_server.url + "/")
    page.get_by_role("link", name="Schedules").click()
    expect(page).to_have_url(live_server.url + "/schedules")
    ping = page.locator('tr[data-schedule="ping"]')
    expect(ping.locator('[data-field="status"]')).to_have_text("active")
    expect(ping.locator('[data-field="last-tick"]')).to_contain_text("succeeded")
    page.screenshot(path=str(screenshots / f"schedules-{store_url.split(':', 1)[0]}.png"), full_page=True)
    ping.get_by_role("button", name="Pause").click()
    expect(page.locator(".banner.ok")).to_contain_text("ping: Schedule paused")
    expect(ping.locator('[data-field="status"]')).to_have_text("paused")
    assert store.list_schedules()[1].paused
    ping.get_by_role("button", name="Resume").click()
    expect(ping.locator('[data-field="status"]')).to_have_text("active")
    assert not store.list_schedules()[1].paused
