"""How the dashboard shows job data: times, values, the timeline, and the throughput chart.

Pure functions from :mod:`onward.admin` values to plain strings and small dataclasses;
the templates only lay them out (and Jinja escapes every string they print).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from onward.admin import MinuteCount, StepProgress, to_plain
from onward.admin_text import ago, class_name
from onward.errors import error_summary
from onward.records import FINISHED_STATES, JobRecord, State

__all__ = [
    "Bar",
    "Chart",
    "Event",
    "ago",
    "arguments",
    "chart",
    "class_name",
    "compact",
    "cut",
    "done",
    "last_line",
    "module_name",
    "percent",
    "plural",
    "pretty",
    "rate",
    "times",
    "timeline",
    "when",
]


def when(value: datetime | None) -> str:
    """``2026-01-31 14:05:09 UTC``, or ``-``."""
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else "-"


def module_name(path: str) -> str:
    """``package.module:Outer.Name`` -> ``package.module``."""
    return path.rpartition(":")[0]


def pretty(value: Any) -> str:
    """A stored value as indented JSON (datetimes and other typed values as strings)."""
    return json.dumps(to_plain(value), indent=2, ensure_ascii=False, sort_keys=False)


def compact(value: Any, limit: int | None = None) -> str:
    """A stored value as one-line JSON, cut to ``limit`` characters. The dashboard's script
    formats cursors the same way, so a live update does not change how a value looks."""
    text = json.dumps(to_plain(value), ensure_ascii=False)
    return text if limit is None else cut(text, limit)


def arguments(job: JobRecord, limit: int = 80) -> str:
    """A job's arguments as one short line: ``42, "x", user_id=7``."""
    parts = [compact(a) for a in job.args] + [f"{k}={compact(v)}" for k, v in job.kwargs.items()]
    return cut(", ".join(parts), limit)


def percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{math.floor(fraction * 100)}%"


def rate(per_second: float | None) -> str:
    """Items per second, or per minute when slow: ``12.5/s``, ``3.0/min``."""
    if per_second is None:
        return "-"
    if per_second >= 100:
        return f"{per_second:,.0f}/s"
    if per_second >= 1:
        return f"{per_second:.1f}/s"
    return f"{per_second * 60:.1f}/min"


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 attempt``, ``2 attempts``, ``0 attempts``."""
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"


def times(count: int) -> str:
    """``once``, ``twice``, ``3 times``."""
    return {1: "once", 2: "twice"}.get(count, f"{count:,} times")


def cut(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, ending in ``…`` when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def done(step: StepProgress) -> str:
    """Items advanced, out of the total when there is one: ``1,200 / 5,000``, ``42``; ``-``
    for a step that saved nothing and has no total (as ``onward show`` prints it). The
    dashboard's script counts the same way."""
    if step.total is not None:
        return f"{step.advanced:,} / {step.total:,}"
    return f"{step.advanced:,}" if step.advanced else "-"


def last_line(error: str | None) -> str:
    """The ``module.Type: message`` part of a traceback, on one line."""
    return error_summary(error)


# -- timeline ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    """One line of a job's timeline. ``at`` is ``None`` for what the record keeps as a
    count rather than a moment (e.g. how many resumptions there were)."""

    at: datetime | None
    kind: str  # enqueued, scheduled, started, step, interrupted, retry, succeeded, failed, discarded, note
    text: str


def timeline(job: JobRecord) -> list[Event]:
    """What is known of the job's life, oldest first. A record keeps the latest of each
    moment (the latest execution's start, each step's start and completion) and counts of
    attempts and resumptions, so that is what the timeline shows."""
    timed: list[Event] = [Event(job.enqueued_at, "enqueued", f"Enqueued on queue {job.queue!r}")]
    if job.scheduled_at.timestamp() - job.enqueued_at.timestamp() >= 1:
        waiting = job.state == State.ENQUEUED
        timed.append(Event(job.scheduled_at, "scheduled", "Scheduled to run" if waiting else "Was scheduled for"))
    for step in job.steps:
        if step.started_at is not None:
            timed.append(Event(step.started_at, "step", f"Step {step.name!r} started"))
        if step.completed_at is not None:
            done = f" ({step.advanced:,} advanced)" if step.advanced else ""
            timed.append(Event(step.completed_at, "step", f"Step {step.name!r} completed{done}"))
    if job.started_at is not None:
        label = "Running" if job.state == State.RUNNING else "Latest execution started"
        timed.append(Event(job.started_at, "started", f"{label} (attempt {max(job.attempts, 1)})"))
    if job.cancel_requested_at is not None:
        timed.append(Event(job.cancel_requested_at, "note", "Cancellation requested"))
    if job.finished_at is not None and job.state in FINISHED_STATES:
        text = {
            State.SUCCEEDED: "Succeeded",
            State.FAILED: f"Failed: {last_line(job.error)}" if job.error else "Failed",
            State.DISCARDED: f"Discarded: {last_line(job.error)}" if job.error else "Discarded",
            State.CANCELLED: "Cancelled",
        }[job.state]
        timed.append(Event(job.finished_at, str(job.state), text))
    timed.sort(key=lambda e: e.at.timestamp() if e.at is not None else 0.0)

    notes: list[Event] = []
    if job.attempts > 1 or (job.attempts == 1 and job.error and job.state != State.FAILED):
        so_far = "in all" if job.state in FINISHED_STATES else "so far"
        notes.append(Event(None, "retry", f"{plural(job.attempts, 'attempt')} {so_far}"))
    if job.resumptions:
        text = f"{plural(job.resumptions, 'resumption')}: interrupted, then resumed from its checkpoint"
        notes.append(Event(None, "interrupted", text))
    for step in job.steps:
        if step.status == "interrupted":
            where = "before saving a cursor" if step.cursor is None else f"at cursor {compact(step.cursor, 60)}"
            notes.append(Event(None, "interrupted", f"Step {step.name!r} interrupted {where}"))
    if job.state == State.ENQUEUED and job.error:
        notes.append(Event(None, "retry", f"Waiting to run again; the last try failed: {last_line(job.error)}"))
    return timed + notes


# -- throughput chart ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bar:
    """One minute of the throughput chart: a stack of rectangles (in SVG units)."""

    x: float
    width: float
    segments: list[tuple[str, float, float]]  # (outcome, y, height)
    title: str


@dataclass(frozen=True, slots=True)
class Chart:
    """An SVG bar chart of jobs finished per minute (the template draws it)."""

    width: int
    height: int
    plot_top: int
    plot_bottom: int
    scale_max: int
    bars: list[Bar]
    total: int
    last_minute: int


CHART_WIDTH = 720
CHART_HEIGHT = 190
_TOP = 14
_BOTTOM = 168
_OUTCOMES = ("succeeded", "failed", "discarded")


def _nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50... at least ``value`` (an axis maximum)."""
    if value <= 1:
        return 1
    magnitude = int(10 ** math.floor(math.log10(value)))
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= value:
            return factor * magnitude
    return 10 * magnitude


def chart(minutes: list[MinuteCount]) -> Chart:
    """Bars for ``minutes`` (oldest first), stacked by outcome, scaled to the busiest one."""
    scale = _nice_ceiling(max((m.total for m in minutes), default=0))
    slot = CHART_WIDTH / max(len(minutes), 1)
    plot = _BOTTOM - _TOP
    bars = []
    for i, m in enumerate(minutes):
        y = float(_BOTTOM)
        segments = []
        for outcome in _OUTCOMES:
            count = getattr(m, outcome)
            if count:
                h = max(1.0, plot * count / scale)
                y -= h
                segments.append((outcome, round(y, 2), round(h, 2)))
        title = f"{m.start.strftime('%H:%M')} UTC: " + ", ".join(f"{getattr(m, o)} {o}" for o in _OUTCOMES)
        bars.append(Bar(round(i * slot + 1, 2), round(max(slot - 2, 1.0), 2), segments, title))
    return Chart(
        CHART_WIDTH,
        CHART_HEIGHT,
        _TOP,
        _BOTTOM,
        scale,
        bars,
        sum(m.total for m in minutes),
        minutes[-1].total if minutes else 0,
    )
