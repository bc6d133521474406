"""The dashboard in headless Chromium, on each store: follow a running stepped job and watch
its progress bar advance, retry a failed job, and check that job data stays text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dashboard_jobs as dj
import pytest
from dashboard_helpers import LiveServer, running_worker, start_stepped

import onward
from onward.dashboard import create_app
from onward.testing import drain

SCRIPT = "<script>alert('xss')</script>"


@pytest.fixture
def watched(page: Any) -> Any:
    """The page, failing the test on any script error or console error (CSP violations
    included) and on any dialog (an injected ``alert``)."""
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None)

    def dialog(d: Any) -> None:
        problems.append(f"dialog: {d.message}")
        d.dismiss()

    page.on("dialog", dialog)
    yield page
    assert problems == []


def test_follow_a_running_job_then_retry_a_failed_one(
    store: onward.Store, live_server: LiveServer, watched: Any, screenshots: Path, store_url: str
) -> None:
    from playwright.sync_api import expect

    page = watched
    backend = store_url.split(":", 1)[0]
    failed = dj.Boom.perform_later("the disk is full", path="/var/spool/import.csv").id
    dj.Parent.perform_later()
    dj.Quick.perform_later(1)
    drain(queues=["default"])

    with running_worker(store, ["steps"]):
        job_id = start_stepped(store, n=10, saved=3)

        # The overview lists the running job with its step and progress.
        page.goto(live_server.url + "/")
        running = page.locator(f'tr[data-job="{job_id}"]')
        expect(running).to_contain_text("process")
        expect(running.locator('[data-field="percent"]')).to_have_text("30%")
        expect(page.locator('[data-field="total-failed"]')).to_have_text("1")
        page.screenshot(path=str(screenshots / f"overview-{backend}.png"), full_page=True)

        # The overview refreshes itself.
        dj.THROTTLE.allow(2)
        dj.THROTTLE.wait_saved(5)
        expect(running.locator('[data-field="percent"]')).to_have_text("50%")

        # Follow it: its page shows each step; the bar advances as the job does.
        running.locator("a.job-name").click()
        expect(page).to_have_url(f"{live_server.url}/jobs/{job_id}")
        process = page.locator('tr[data-step="1"]')
        expect(process.locator('[data-field="status"]')).to_have_text("running")
        expect(process.locator('[data-field="count"]')).to_have_text("5 / 10")
        expect(process.locator("progress")).to_have_js_property("value", 0.5)

        dj.THROTTLE.allow(2)
        dj.THROTTLE.wait_saved(7)
        expect(process.locator('[data-field="count"]')).to_have_text("7 / 10")
        expect(process.locator("progress")).to_have_js_property("value", 0.7)
        expect(process.locator('[data-field="percent"]')).to_have_text("70%")
        expect(process.locator('[data-field="cursor"]')).to_have_text("7")
        # Updated in place too: a step that saved nothing shows "-", as on the server.
        expect(page.locator('tr[data-step="0"] [data-field="count"]')).to_have_text("-")
        page.screenshot(path=str(screenshots / f"job-{backend}.png"), full_page=True)

        # It finishes: the page notices and shows the outcome.
        dj.THROTTLE.allow(3)
        expect(page.locator("h1 .state")).to_have_text("succeeded", timeout=20_000)
        expect(page.locator('tr[data-step="2"] [data-field="status"]')).to_have_text("completed")

    # Retry the failed job from its page: it is enqueued again.
    page.goto(f"{live_server.url}/jobs/{failed}")
    expect(page.locator("h1 .state")).to_have_text("failed")
    expect(page.locator("pre.traceback")).to_contain_text("builtins.ValueError: the disk is full")
    page.get_by_role("button", name="Retry").click()
    expect(page.locator(".banner.ok")).to_contain_text("Job enqueued again")
    expect(page.locator("h1 .state")).to_have_text("enqueued")
    assert store.get(failed).state == "enqueued"
    assert page.get_by_role("button", name="Retry").count() == 0


def test_discard_asks_first(store: onward.Store, live_server: LiveServer, page: Any) -> None:
    from playwright.sync_api import expect

    job_id = dj.Later.set(wait=3600).perform_later().id
    page.goto(f"{live_server.url}/jobs/{job_id}")
    page.once("dialog", lambda d: d.dismiss())
    page.get_by_role("button", name="Discard").click()
    expect(page.locator("h1 .state")).to_have_text("enqueued")
    assert store.get(job_id).state == "enqueued"
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Discard").click()
    expect(page.locator(".banner.ok")).to_contain_text("Job discarded")
    assert store.get(job_id).state == "discarded"


def test_job_data_renders_as_text(store: onward.Store, live_server: LiveServer, watched: Any) -> None:
    from playwright.sync_api import expect

    page = watched
    job_id = dj.Boom.perform_later(SCRIPT, note=SCRIPT).id
    drain()
    for path in ("/", "/jobs", f"/jobs/{job_id}"):
        page.goto(live_server.url + path)
        assert page.locator("main script").count() == 0, path
    expect(page.locator("pre.traceback")).to_contain_text(f"builtins.ValueError: {SCRIPT}")
    expect(page.locator("pre.json").first).to_contain_text(SCRIPT)
    page.goto(f"{live_server.url}/jobs")
    expect(page.locator(f'tr[data-job="{job_id}"] td.args')).to_contain_text(SCRIPT)


def _attacker_app(target: str, planted: str) -> Any:
    """A page on another port of 127.0.0.1: it plants the dashboard's CSRF cookie (cookies do
    not tell ports apart) and offers a button that posts a form to ``target`` with it."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    def bait(request: Any) -> HTMLResponse:
        form = (
            f'<form method="post" action="{target}"><input type="hidden" name="csrf_token" value="{planted}">'
            '<button type="submit">Claim your prize</button></form>'
        )
        page = HTMLResponse(f"<!doctype html><title>Prize</title>{form}")
        page.set_cookie("onward_csrf", planted, path="/", samesite="lax")
        return page

    return Starlette(routes=[Route("/", bait)])


def test_a_page_on_another_port_cannot_discard_a_job(store: onward.Store, live_server: LiveServer, page: Any) -> None:
    from playwright.sync_api import expect

    job_id = dj.Later.set(wait=3600).perform_later().id
    page.goto(f"{live_server.url}/jobs/{job_id}")  # the browser has the dashboard's cookie
    expect(page.get_by_role("button", name="Discard")).to_be_visible()
    attacker = LiveServer(_attacker_app(f"{live_server.url}/jobs/{job_id}/discard", "planted0123456789abcdefghij"))
    try:
        page.goto(attacker.url + "/")
        assert attacker.url.rsplit(":", 1)[0] == live_server.url.rsplit(":", 1)[0]  # same host, another port
        with page.expect_navigation(url=f"{live_server.url}/**"):
            page.get_by_role("button", name="Claim your prize").click()
        expect(page.locator("main")).to_contain_text("another site")
    finally:
        attacker.stop()
    assert store.get(job_id).state == "enqueued"


def test_forms_work_when_mounted_under_a_prefix(store: onward.Store, watched: Any) -> None:
    from playwright.sync_api import expect
    from starlette.applications import Starlette
    from starlette.routing import Mount

    page = watched
    failed = dj.Boom.perform_later("x").id
    drain()
    server = LiveServer(Starlette(routes=[Mount("/ops/jobs", app=create_app(store))]))
    try:
        page.goto(f"{server.url}/ops/jobs/jobs/{failed}")
        page.get_by_role("button", name="Retry").click()
        expect(page.locator(".banner.ok")).to_contain_text("Job enqueued again")
        expect(page).to_have_url(f"{server.url}/ops/jobs/jobs/{failed}?done=retry")
    finally:
        server.stop()
    assert store.get(failed).state == "enqueued"


def test_a_failed_jobs_error_line_fits_its_row(store: onward.Store, live_server: LiveServer, watched: Any) -> None:
    from playwright.sync_api import expect

    page = watched
    job_id = dj.Boom.perform_later("the disk is full: " + "x" * 300).id
    drain()
    page.goto(f"{live_server.url}/jobs")
    line = page.locator(f'tr[data-job="{job_id}"] .error-line')
    expect(line).to_contain_text("builtins.ValueError: the disk is full")
    expect(line).to_have_attribute("title", "builtins.ValueError: the disk is full: " + "x" * 300)
    # The line is cut to its cell: a long error does not widen the table past its panel.
    page.set_viewport_size({"width": 1100, "height": 800})
    overflow = "t => t.getBoundingClientRect().right - t.closest('.panel').getBoundingClientRect().right"
    assert page.locator("table.jobs").evaluate(overflow) <= 0
