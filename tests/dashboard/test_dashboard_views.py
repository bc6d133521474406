"""What the dashboard derives from records: the timeline of a job that was retried or
interrupted, and the throughput chart's geometry."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import dashboard_jobs as dj
from dashboard_helpers import TestClient

import onward
from onward.admin import MinuteCount
from onward.dashboard import views
from onward.testing import drain, interrupt_during_step


def timeline_of(client: TestClient, job_id: str) -> list[str]:
    page = client.get(f"/jobs/{job_id}").text
    section = re.search(r'<ol class="timeline">(.*?)</ol>', page, re.S)
    assert section is not None
    return [html.unescape(t) for t in re.findall(r'<span class="what">([^<]+)</span>', section.group(1))]


def test_a_retried_job_shows_its_attempts_and_keeps_its_last_error(store: onward.Store, client: TestClient) -> None:
    job_id = dj.Flaky.perform_later().id
    drain()
    assert store.get(job_id).state == "succeeded"
    events = timeline_of(client, job_id)
    assert events[-2:] == ["Succeeded", "2 attempts in all"]
    page = client.get(f"/jobs/{job_id}").text
    assert "Last error" in page  # kept for the record, under its own heading
    assert "builtins.ConnectionError: the mail server hung up" in page


def test_an_interrupted_job_shows_its_resumption(store: onward.Store, client: TestClient) -> None:
    dj.THROTTLE.open()
    job_id = dj.Stepped.perform_later(3).id
    with interrupt_during_step(dj.Stepped, "process", cursor=2):
        drain()
    record = store.get(job_id)
    assert (record.state, record.resumptions) == ("succeeded", 1)
    assert "1 resumption: interrupted, then resumed from its checkpoint" in timeline_of(client, job_id)


def test_chart_stacks_outcomes_on_a_round_scale() -> None:
    start = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    minutes = [MinuteCount(start + timedelta(minutes=i)) for i in range(60)]
    minutes[10] = MinuteCount(start + timedelta(minutes=10), succeeded=30, failed=7, discarded=0)
    minutes[59] = MinuteCount(start + timedelta(minutes=59), succeeded=3)
    chart = views.chart(minutes)
    assert chart.scale_max == 50  # 37 rounded up to 1, 2 or 5 times a power of ten
    assert (chart.total, chart.last_minute) == (40, 3)
    assert len(chart.bars) == 60
    assert chart.bars[0].segments == []
    busy = chart.bars[10]
    assert [s[0] for s in busy.segments] == ["succeeded", "failed"]
    plot = chart.plot_bottom - chart.plot_top
    succeeded, failed = busy.segments
    assert abs(succeeded[2] - plot * 30 / 50) < 0.01
    assert abs(failed[2] - plot * 7 / 50) < 0.01
    assert abs(failed[1] + failed[2] - succeeded[1]) < 0.01  # stacked: failed sits on succeeded
    assert abs(succeeded[1] + succeeded[2] - chart.plot_bottom) < 0.01
    assert busy.title == "12:10 UTC: 30 succeeded, 7 failed, 0 discarded"
    assert busy.x < chart.bars[11].x
    assert views.chart([MinuteCount(start)]).scale_max == 1


def test_formats() -> None:
    assert views.rate(None) == "-"
    assert views.rate(0.5) == "30.0/min"
    assert views.rate(12.34) == "12.3/s"
    assert views.rate(6488.2) == "6,488/s"
    assert views.percent(0.999) == "99%"
    assert views.percent(None) == "-"
    assert views.compact({"page": 3, "row": [1, 2]}) == '{"page": 3, "row": [1, 2]}'
    assert views.compact("x" * 100, 10) == '"' + "x" * 8 + "…"  # JSON, cut to 10 characters
    assert views.last_line("Traceback...\n  File x\nmod.Error: boom\n") == "mod.Error: boom"
    assert views.class_name("app.jobs:Outer.Inner") == "Outer.Inner"
