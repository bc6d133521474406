"""The dashboard's Cancel button on a job's page and its Queues page (pause, resume), on each
store: POSTs that need the CSRF token, like Retry and Discard."""

from __future__ import annotations

import html
import re

import dashboard_jobs
from dashboard_helpers import TestClient, running_worker, start_stepped, wait_for
from dashboard_jobs import Quick

import onward


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def test_cancel_is_a_post_with_the_csrf_token_and_an_enqueued_job_is_cancelled(
    store: onward.Store, client: TestClient
) -> None:
    handle = Quick.perform_later()
    page = client.get(f"/jobs/{handle.id}").text
    assert f'action="/jobs/{handle.id}/cancel"' in page
    assert client.get(f"/jobs/{handle.id}/cancel").status_code == 405
    assert client.post(f"/jobs/{handle.id}/cancel", data={}).status_code == 403
    assert handle.refresh().state == "enqueued"
    response = client.post(f"/jobs/{handle.id}/cancel", data={"csrf_token": csrf_of(page)}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/jobs/{handle.id}?done=cancel"
    assert handle.refresh().state == "cancelled"
    after = client.get(response.headers["location"]).text
    assert "Cancelled: an enqueued job will not run" in html.unescape(after)
    assert "state-cancelled" in after
    assert f'action="/jobs/{handle.id}/cancel"' not in after  # nothing left to cancel
    assert f'action="/jobs/{handle.id}/retry"' in after  # a cancelled job can be retried


def test_cancelling_a_running_job_shows_the_request_until_it_stops(store: onward.Store, client: TestClient) -> None:
    with running_worker(store):
        job_id = start_stepped(store)
        page = client.get(f"/jobs/{job_id}").text
        client.post(f"/jobs/{job_id}/cancel", data={"csrf_token": csrf_of(page)})
        record = onward.get_job(job_id)
        if record.state == "running":
            shown = client.get(f"/jobs/{job_id}").text
            assert 'data-field="cancel-requested"' in shown
            assert f'action="/jobs/{job_id}/cancel"' not in shown
        dashboard_jobs.THROTTLE.open()  # the job goes on to its next advance
        wait_for(lambda: onward.get_job(job_id).state == "cancelled", "the job to stop")
    record = onward.get_job(job_id)
    assert record.steps[1].name == "process"
    assert record.steps[1].cursor == 3  # the items done are kept, the one in flight when it noticed too


def test_the_queues_page_pauses_and_resumes_queues(store: onward.Store, client: TestClient) -> None:
    Quick.perform_later()
    page = client.get("/queues").text
    assert 'href="/queues" class="active" aria-current="page">Queues</a>' in page
    assert '<tr data-queue="default">' in page
    token = csrf_of(page)
    assert client.post("/queues/pause", data={"name": "default"}).status_code == 403
    response = client.post("/queues/pause", data={"csrf_token": token, "name": "default"}, follow_redirects=False)
    assert response.status_code == 303
    assert [q.name for q in store.paused_queues()] == ["default"]
    paused = client.get(response.headers["location"]).text
    assert "default: Queue paused" in paused
    assert "state-paused" in paused
    assert 'action="/queues/resume"' in paused
    resumed = client.post("/queues/resume", data={"csrf_token": token, "name": "default"})
    assert "Queue resumed" in resumed.text
    assert store.paused_queues() == []
    bad = client.post("/queues/pause", data={"csrf_token": token, "name": ""})
    assert bad.status_code == 400
    assert "non-empty" in html.unescape(bad.text)
