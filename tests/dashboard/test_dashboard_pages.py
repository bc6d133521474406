"""The dashboard's pages, on each store: overview, jobs list (filters, keyset paging), job
page (arguments, timeline, error, steps, chain) and the retry / discard actions."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import dashboard_jobs as dj
import pytest
from dashboard_helpers import TestClient, running_worker, start_stepped

import onward
from onward.testing import drain


def links(page: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'href="([^"]*)"', page)]


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def row(page: str, job_id: str) -> str:
    """The table row of ``job_id`` in a rendered list."""
    match = re.search(rf'<tr data-job="{job_id}">(.*?)</tr>', page, re.S)
    assert match, f"no row for {job_id}"
    return match.group(1)


def test_overview_shows_counts_per_queue_and_state_throughput_and_running_jobs(
    store: onward.Store, client: TestClient
) -> None:
    for i in range(3):
        dj.Quick.perform_later(i)
    dj.Boom.perform_later("broken")
    dj.Later.set(wait=timedelta(hours=1)).perform_later()
    assert drain(queues=["default"]) == 4

    with running_worker(store, ["steps"]):
        job_id = start_stepped(store, n=5, saved=2)
        page = client.get("/").text

    # Totals per state, and counts per queue and state.
    assert re.search(r'data-field="total-succeeded">3<', page)
    assert re.search(r'data-field="total-failed">1<', page)
    assert re.search(r'data-field="total-running">1<', page)
    queues = re.search(r'<table class="table queues">(.*?)</table>', page, re.S)
    assert queues is not None
    rows = {
        m.group(1): [int(x) for x in re.findall(r'<td class="num[^"]*">(?:<a [^>]*>)?([\d,]+)', m.group(2))]
        for m in re.finditer(r'<td><a href="[^"]*">([^<]+)</a></td>(.*?)</tr>', queues.group(1), re.S)
    }
    # columns: enqueued, running, succeeded, failed, discarded, total
    assert rows == {
        "default": [0, 0, 3, 1, 0, 0, 4],
        "later": [1, 0, 0, 0, 0, 0, 1],
        "steps": [0, 1, 0, 0, 0, 0, 1],
    }

    # The chart: one bar per minute of the last hour, the last one holding what just finished.
    bars = re.findall(r'<g class="minute"><title>([^<]*)</title>', page)
    assert len(bars) == 60
    assert bars[-1].endswith("3 succeeded, 1 failed, 0 discarded")
    assert "4 in the last hour" in page

    # The running job, in its step, with a progress bar at 2 of 5.
    running = row(page, job_id)
    assert f'href="/jobs/{job_id}"' in running
    assert "process" in running
    assert 'value="0.4000"' in running
    assert "2 / 5" in running
    assert client.get("/?fragment=live").text.count("<html") == 0  # the live fragment alone


def test_jobs_list_filters_by_state_queue_class_and_id(store: onward.Store, client: TestClient) -> None:
    quick = [dj.Quick.perform_later(i).id for i in range(2)]
    boom = dj.Boom.perform_later("x").id
    later = dj.Later.set(wait=3600).perform_later().id
    drain(queues=["default"])

    def ids(query: str) -> list[str]:
        response = client.get("/jobs" + query)
        assert response.status_code == 200
        return re.findall(r'<tr data-job="([^"]+)">', response.text)

    assert ids("") == [later, boom, *reversed(quick)]  # newest first
    assert ids("?state=failed") == [boom]
    assert ids("?state=succeeded") == list(reversed(quick))
    assert ids("?queue=later") == [later]
    assert ids("?class=dashboard_jobs:Quick") == list(reversed(quick))
    assert ids("?class=dashboard_jobs:Quick&state=failed") == []
    assert ids(f"?search={boom}") == [boom]
    assert ids(f"?search={later[:-4]}") == [later]
    assert "No jobs match." in client.get("/jobs?queue=nowhere").text
    bad = client.get("/jobs?state=bogus")
    assert bad.status_code == 400
    assert "unknown state" in bad.text


def test_jobs_list_pages_with_keyset_links_that_keep_the_filters(store: onward.Store, client: TestClient) -> None:
    enqueued = [dj.Later.set(wait=3600).perform_later().id for _ in range(120)]
    dj.Quick.perform_later()  # another queue: filtered out

    seen: list[str] = []
    url = "/jobs?queue=later"
    pages = 0
    while url:
        page = client.get(url).text
        pages += 1
        seen += re.findall(r'<tr data-job="([^"]+)">', page)
        older = [h for h in links(page) if "before=" in h]
        if older:
            assert "queue=later" in older[0]
            assert "/jobs?" in older[0]
            url = older[0]
        else:
            url = ""
        if pages > 1:
            assert any(h.endswith("/jobs?queue=later") for h in links(page)), "a later page links to the newest"
    assert pages == 3
    assert seen == list(reversed(enqueued))


def test_job_page_shows_steps_result_timeline_and_chain(store: onward.Store, client: TestClient) -> None:
    dj.THROTTLE.open()
    stepped = dj.Stepped.perform_later(4).id
    parent = dj.Parent.perform_later().id
    drain()
    tree = store.get(parent)
    child_a, child_b = tree.children
    [grandchild] = store.get(child_a).children

    page = client.get(f"/jobs/{stepped}").text
    assert "dashboard_jobs:Stepped" in page
    assert 'class="state state-succeeded"' in page
    steps = re.findall(r'<tr data-step="\d+">(.*?)</tr>', page, re.S)
    assert [re.search(r'class="step-name">([^<]+)<', s).group(1) for s in steps] == ["prepare", "process", "finish"]  # type: ignore[union-attr]
    assert "4 / 4" in steps[1]
    assert 'value="1.0000"' in steps[1]
    assert 'data-field="cursor" title="4">4<' in steps[1]
    assert "completed" in steps[1]
    assert '"processed": 4' in html.unescape(page)  # the result
    timeline = re.search(r'<ol class="timeline">(.*?)</ol>', page, re.S)
    assert timeline is not None
    events = [html.unescape(e) for e in re.findall(r'<span class="what">([^<]+)</span>', timeline.group(1))]
    assert events[0] == "Enqueued on queue 'steps'"
    assert "Step 'process' completed (4 advanced)" in events
    assert events[-1] == "Succeeded"

    # The chain, from any of its jobs: the whole tree, with links to the others.
    page = client.get(f"/jobs/{child_a}").text
    chain = re.search(r'<ul class="tree">(.*)</ul>', page, re.S)
    assert chain is not None
    hrefs = links(chain.group(1))
    assert hrefs == [f"/jobs/{parent}", f"/jobs/{grandchild}", f"/jobs/{child_b}"]
    tree_html = chain.group(1)
    assert "<strong>Child</strong>" in tree_html  # this job, not a link
    # The tree nests: the grandchild sits in a list under this job, before its sibling.
    here, below, sibling = (
        tree_html.index("<strong>Child</strong>"),
        tree_html.index(f"/jobs/{grandchild}"),
        tree_html.index(f"/jobs/{child_b}"),
    )
    assert here < below < sibling
    assert "<ul>" in tree_html[here:below]
    parent_page = client.get(f"/jobs/{parent}").text
    assert "2 continuations" in parent_page
    assert f"/jobs?parent={parent}" in parent_page
    children = client.get(f"/jobs?parent={parent}").text
    assert re.findall(r'<tr data-job="([^"]+)">', children) == [child_b, child_a]


def test_failed_job_page_shows_arguments_error_traceback_and_actions(store: onward.Store, client: TestClient) -> None:
    job_id = dj.Boom.perform_later("disk full", path="/var/data", size=3).id
    drain()
    page = client.get(f"/jobs/{job_id}").text
    assert 'class="state state-failed"' in page
    assert "Traceback (most recent call last)" in page
    assert "builtins.ValueError: disk full" in page
    assert '"path": "/var/data"' in html.unescape(page)
    assert "Failed: builtins.ValueError: disk full" in page  # the timeline's last event
    assert f'action="/jobs/{job_id}/retry"' in page
    assert f'action="/jobs/{job_id}/discard"' in page
    # An enqueued job can be discarded, not retried; a succeeded one neither.
    waiting = dj.Later.set(wait=3600).perform_later().id
    page = client.get(f"/jobs/{waiting}").text
    assert "/retry" not in page
    assert f'action="/jobs/{waiting}/discard"' in page
    assert "Scheduled to run" in page


def test_unknown_job_is_404(client: TestClient) -> None:
    response = client.get("/jobs/0000000000-nope")
    assert response.status_code == 404
    assert "no job with id" in response.text


def test_retry_a_failed_job_enqueues_it_again(store: onward.Store, client: TestClient) -> None:
    job_id = dj.Boom.perform_later("once").id
    drain()
    token = csrf_of(client.get(f"/jobs/{job_id}").text)
    response = client.post(f"/jobs/{job_id}/retry", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/jobs/{job_id}?done=retry"
    record = store.get(job_id)
    assert record.state == "enqueued"
    assert record.attempts == 0
    page = client.get(response.headers["location"]).text
    assert "Job enqueued again" in page
    assert 'class="state state-enqueued"' in page


def test_discard_an_enqueued_job(store: onward.Store, client: TestClient) -> None:
    job_id = dj.Later.set(wait=3600).perform_later().id
    token = csrf_of(client.get(f"/jobs/{job_id}").text)
    response = client.post(f"/jobs/{job_id}/discard", data={"csrf_token": token})
    assert response.status_code == 200  # followed the redirect
    assert "Job discarded" in response.text
    assert store.get(job_id).state == "discarded"


def test_an_action_the_state_forbids_is_refused_with_a_message(store: onward.Store, client: TestClient) -> None:
    job_id = dj.Quick.perform_later().id
    drain()
    token = csrf_of(client.get("/").text.replace('name="csrf-token" content=', 'name="csrf_token" value='))
    response = client.post(f"/jobs/{job_id}/retry", data={"csrf_token": token})
    assert response.status_code == 409
    assert "only failed, discarded or cancelled jobs can be retried" in response.text
    assert store.get(job_id).state == "succeeded"


@pytest.mark.parametrize("action", ["retry", "discard"])
def test_actions_need_post_and_a_csrf_token(store: onward.Store, client: TestClient, action: str) -> None:
    job_id = dj.Boom.perform_later("x").id
    drain()
    assert client.get(f"/jobs/{job_id}/{action}").status_code == 405
    missing = client.post(f"/jobs/{job_id}/{action}", data={})
    assert missing.status_code == 403
    wrong = client.post(f"/jobs/{job_id}/{action}", data={"csrf_token": "x" * 43})
    assert wrong.status_code == 403
    assert store.get(job_id).state == "failed"


def test_failed_continuations_have_a_filter_a_mark_and_a_button(store: onward.Store, client: TestClient) -> None:
    from jobs_core import FlakyContinuations, continuations_broken

    continuations_broken.set()
    try:
        failed = FlakyContinuations.perform_later(1).id
        fine = dj.Quick.perform_later().id
        drain()
    finally:
        continuations_broken.clear()
    listing = client.get("/jobs?state=continuation_failed")
    assert listing.status_code == 200
    assert f'data-job="{failed}"' in listing.text
    assert f'data-job="{fine}"' not in listing.text
    assert "continuations failed" in row(listing.text, failed)
    page = client.get(f"/jobs/{failed}").text
    assert "Run continuations again" in page
    response = client.post(f"/jobs/{failed}/rerun-continuations", data={"csrf_token": csrf_of(page)})
    assert response.status_code == 200
    assert "continuations will run again" in response.text
    drain()
    assert len(store.get(failed).children) == 2
    assert "Run continuations again" not in client.get(f"/jobs/{failed}").text
