"""The dashboard's batch page, on each store: counts, a progress bar, members page by page
and callbacks; a member's and a callback's job pages link to the batch."""

from __future__ import annotations

import re

from dashboard_helpers import TestClient

import onward
from jobs_batches import Callback, Member
from onward.testing import drain


def rows(page: str) -> list[str]:
    return re.findall(r'<tr data-job="([^"]+)">', page)


def test_the_batch_page_shows_counts_progress_members_and_callbacks(store: onward.Store, client: TestClient) -> None:
    batch = onward.batch("album <7>")
    with batch:
        Member.perform_all_later([(i,) for i in range(70)])
        Member.perform_later(70, fail=True)
        batch.on_finish(Callback, "notify")
    record = onward.get_batch(batch.id)
    pending = client.get(f"/batches/{batch.id}")
    assert pending.status_code == 200
    assert "album &lt;7&gt;" in pending.text
    assert 'data-field="pending">71<' in pending.text
    assert "None enqueued yet." in pending.text
    drain()
    page = client.get(f"/batches/{batch.id}").text
    assert 'class="state state-finished"' in page
    assert 'data-field="succeeded">70<' in page
    assert 'data-field="failed">1<' in page
    assert '<progress class="bar bar-finished" max="1" value="1.0000"' in page
    assert "page 1 of 2" in page
    [callback] = onward.get_batch(batch.id).callback_ids
    assert rows(page) == [*record.job_ids[:50], callback]
    second = client.get(f"/batches/{batch.id}?page=2").text
    assert rows(second)[:21] == list(record.job_ids[50:])
    assert 'rel="prev"' in second
    member_page = client.get(f"/jobs/{record.job_ids[0]}").text
    assert f'href="/batches/{batch.id}"' in member_page
    callback_page = client.get(f"/jobs/{callback}").text
    assert f'data-field="parent-batch" href="/batches/{batch.id}"' in callback_page


def test_an_unknown_batch_is_not_found(store: onward.Store, client: TestClient) -> None:
    response = client.get("/batches/no-such-batch")
    assert response.status_code == 404
    assert "no batch with id" in response.text
