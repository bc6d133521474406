"""OpenTelemetry: a chain of jobs is one trace, from the caller's span through producer and
consumer spans to each step, with the attributes named in the docs and errors recorded."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from jobs_tracing import Broken, First
from onward import Store
from onward.contrib import otel
from onward.testing import drain


@pytest.fixture
def provider() -> Iterator[TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    yield provider
    provider.shutdown()


@pytest.fixture
def spans(provider: TracerProvider) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    otel.enable(provider)
    try:
        yield exporter
    finally:
        otel.disable()


def by_name(exporter: InMemorySpanExporter) -> dict[str, list[ReadableSpan]]:
    found: dict[str, list[ReadableSpan]] = {}
    for span in exporter.get_finished_spans():
        found.setdefault(span.name, []).append(span)
    return found


def parent_of(span: ReadableSpan, spans: list[ReadableSpan]) -> ReadableSpan:
    assert span.parent is not None, f"{span.name} has no parent"
    return next(s for s in spans if s.context.span_id == span.parent.span_id)


def test_a_chain_of_three_jobs_is_one_trace_under_the_callers_span(
    store: Store, spans: InMemorySpanExporter, provider: TracerProvider
) -> None:
    with provider.get_tracer("app").start_as_current_span("POST /signup") as request:
        handle = First.perform_later(1)
    assert drain() == 3
    finished = spans.get_finished_spans()
    assert {s.context.trace_id for s in finished} == {request.get_span_context().trace_id}
    names = by_name(spans)
    assert len(names["default send"]) == 3
    assert len(names["default process"]) == 3
    consumers = {s.attributes["onward.job_class"]: s for s in names["default process"] if s.attributes}
    first, second, third = (consumers[f"jobs_tracing:{n}"] for n in ("First", "Second", "Third"))
    # caller -> producer -> consumer -> (continuations) producer -> consumer -> ...
    assert parent_of(parent_of(first, finished), finished).name == "POST /signup"
    assert parent_of(first, finished).kind == SpanKind.PRODUCER
    assert parent_of(parent_of(second, finished), finished) is first
    assert parent_of(parent_of(third, finished), finished) is second
    assert first.kind == SpanKind.CONSUMER
    assert first.attributes is not None
    assert first.attributes["messaging.system"] == "onward"
    assert first.attributes["messaging.destination.name"] == "default"
    assert first.attributes["messaging.message.id"] == handle.id
    assert first.attributes["onward.attempt"] == 1
    assert first.status.status_code == StatusCode.OK
    steps = [s for s in finished if s.name.startswith("step ")]
    assert sorted(s.name for s in steps) == ["step double", "step one", "step two"]
    assert {parent_of(s, finished).name for s in steps} == {"default process"}
    assert {parent_of(s, finished) for s in steps if s.name != "step double"} == {third}


def test_a_failing_job_records_its_exception(store: Store, spans: InMemorySpanExporter) -> None:
    Broken.perform_later()
    drain()
    consumers = by_name(spans)["default process"]
    assert len(consumers) == 2  # the try and its retry
    for span in consumers:
        assert span.status.status_code == StatusCode.ERROR
        assert span.status.description == "builtins.ValueError: cannot parse the invoice"
        [event] = [e for e in span.events if e.name == "exception"]
        assert event.attributes is not None
        assert event.attributes["exception.type"] == "ValueError"
        assert event.attributes["exception.message"] == "cannot parse the invoice"
    assert [s.attributes["onward.attempt"] for s in consumers if s.attributes] == [1, 2]


def test_nothing_is_traced_once_disabled(store: Store, spans: InMemorySpanExporter) -> None:
    otel.disable()
    First.perform_later(1)
    drain()
    assert spans.get_finished_spans() == ()


def test_neither_metrics_nor_tracing_is_imported_unless_turned_on(
    tmp_path: object, subprocess_env: dict[str, str]
) -> None:
    import subprocess
    import sys

    script = (
        "import sys, onward\n"
        "from onward.testing import drain\n"
        "from jobs_tracing import First\n"
        f"onward.connect('sqlite:///{tmp_path}/t.sqlite3')\n"
        "First.perform_later(1)\n"
        "drain()\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('opentelemetry', 'prometheus_client')]\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", script], env=subprocess_env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_a_batch_s_callback_is_in_the_trace_of_the_code_that_opened_the_batch(
    store: Store, spans: InMemorySpanExporter, provider: TracerProvider
) -> None:
    import onward
    from jobs_batches import Callback, Member

    with provider.get_tracer("app").start_as_current_span("POST /albums") as request:
        batch = onward.batch()
        with batch:
            Member.perform_later(1)
            Member.perform_later(2)
            batch.on_success(Callback, "publish")
    assert drain() == 3
    finished = spans.get_finished_spans()
    assert {s.context.trace_id for s in finished} == {request.get_span_context().trace_id}
    consumers = [s for s in by_name(spans)["default process"] if s.attributes]
    [callback] = [s for s in consumers if s.attributes and s.attributes["onward.job_class"] == "jobs_batches:Callback"]
    producer = parent_of(callback, finished)
    assert producer.kind == SpanKind.PRODUCER
    assert parent_of(producer, finished).name == "POST /albums"


def test_a_tick_s_job_is_traced_from_the_scheduler_s_producer_span(store: Store, spans: InMemorySpanExporter) -> None:
    from datetime import UTC, datetime, timedelta

    import onward
    from jobs_schedules import Tick
    from onward.testing import run_schedules

    onward.schedule("traced-tick", Tick, every=60)
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    run_schedules(start)  # first seen: ticks from here on
    [handle] = run_schedules(start + timedelta(minutes=1))
    drain()
    finished = spans.get_finished_spans()
    mine = [s for s in finished if s.attributes and s.attributes.get("messaging.message.id") == handle.id]
    [consumer] = [s for s in mine if s.kind == SpanKind.CONSUMER]
    producer = parent_of(consumer, finished)
    assert producer.kind == SpanKind.PRODUCER
    assert producer.context.trace_id == consumer.context.trace_id
