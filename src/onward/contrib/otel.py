"""OpenTelemetry traces of jobs (``pip install 'onward[otel]'``).

::

    from onward.contrib import otel

    otel.enable()        # after configuring a tracer provider (opentelemetry-sdk, an exporter...)

Enqueueing a job opens a *producer* span (``<queue> send``) in the current trace and stores
its W3C trace context with the job. The execution opens a *consumer* span (``<queue>
process``), a child of that producer span, current while the job runs, with the attributes
``messaging.system="onward"``, ``messaging.destination.name`` (the queue),
``messaging.message.id`` (the job id), ``onward.job_class`` and ``onward.attempt``; each step
is a child span (``step <name>``); an error is recorded on the span with its exception and an
error status. Jobs enqueued while a job runs — its continuations, a batch and its callbacks
declared there — are enqueued in its span's context, so a whole chain is one trace.

Nothing of this is imported until it is turned on, and with it off Onward checks one module
attribute per enqueue.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider

from onward import events, tracing

__all__ = ["Tracing", "disable", "enable"]

SYSTEM = "onward"

_ERRORS = {events.FAILED, events.RETRIED, events.DISCARDED}
_NOT_OK = {"failed", "retrying", "resuming", "discarded", "lost"}


class _Open:
    """What an execution has open on its thread: its span and the steps' spans."""

    __slots__ = ("span", "step", "step_token", "token")

    def __init__(self, span: Span, token: object) -> None:
        self.span = span
        self.token = token
        self.step: Span | None = None
        self.step_token: object | None = None


class Tracing:
    """Producer spans at enqueue, consumer and step spans in executions (see the module)."""

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        self.tracer = trace.get_tracer("onward", tracer_provider=tracer_provider)
        self._open: dict[tuple[str, int], _Open] = {}
        self._lock = threading.Lock()

    # -- enqueue -------------------------------------------------------------------------------
    def inject(self, queue: str, job_class: str, job_id: str) -> str | None:
        """Open and close the producer span of a job being enqueued; return its context."""
        attributes = {
            "messaging.system": SYSTEM,
            "messaging.operation.type": "send",
            "messaging.destination.name": queue,
            "messaging.message.id": job_id,
            "onward.job_class": job_class,
        }
        with self.tracer.start_as_current_span(f"{queue} send", kind=SpanKind.PRODUCER, attributes=attributes):
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
        return json.dumps(carrier, separators=(",", ":")) if carrier else None

    # -- executions ----------------------------------------------------------------------------
    #: The event kinds it follows.
    KINDS = frozenset({events.STARTED, events.STEP_STARTED, events.STEP_COMPLETED, events.EXECUTION_ENDED, *_ERRORS})

    def on_event(self, event: events.Event) -> None:
        kind = event.kind
        if kind == events.STARTED:
            self._started(event)
        elif kind == events.STEP_STARTED:
            self._step_started(event)
        elif kind == events.STEP_COMPLETED:
            self._step_ended(event)
        elif kind in _ERRORS:
            self._error(event)
        elif kind == events.EXECUTION_ENDED:
            self._ended(event)

    def _key(self, event: events.Event) -> tuple[str, int]:
        return (event.job_id or "", threading.get_ident())

    def _started(self, event: events.Event) -> None:
        stored = event.data.get("trace")
        parent = propagate.extract(json.loads(stored)) if isinstance(stored, str) else None
        queue = event.queue or ""
        span = self.tracer.start_span(
            f"{queue} process",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": SYSTEM,
                "messaging.operation.type": "process",
                "messaging.destination.name": queue,
                "messaging.message.id": event.job_id or "",
                "onward.job_class": event.job_class or "",
                "onward.attempt": event.attempt,
                "onward.resumptions": event.resumptions,
            },
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        with self._lock:
            self._open[self._key(event)] = _Open(span, token)

    def _step_started(self, event: events.Event) -> None:
        with self._lock:
            found = self._open.get(self._key(event))
        if found is None:
            return
        self._close_step(found)
        found.step = self.tracer.start_span(
            f"step {event.data.get('step')}", attributes={"onward.step": str(event.data.get("step"))}
        )
        found.step_token = otel_context.attach(trace.set_span_in_context(found.step))

    def _step_ended(self, event: events.Event) -> None:
        with self._lock:
            found = self._open.get(self._key(event))
        if found is not None:
            self._close_step(found)

    def _close_step(self, found: _Open) -> None:
        if found.step is not None:
            if found.step_token is not None:
                otel_context.detach(found.step_token)  # type: ignore[arg-type]
            found.step.end()
            found.step = found.step_token = None

    def _error(self, event: events.Event) -> None:
        with self._lock:
            found = self._open.get(self._key(event))
        if found is None:
            return
        exception = event.data.get("exception")
        lines = (event.error or "").rstrip().splitlines()
        for span in (found.step, found.span):
            if span is None:
                continue
            if isinstance(exception, BaseException):
                span.record_exception(exception)
            span.set_status(Status(StatusCode.ERROR, lines[-1] if lines else event.kind))

    def _ended(self, event: events.Event) -> None:
        with self._lock:
            found = self._open.pop(self._key(event), None)
        if found is None:
            return
        self._close_step(found)
        outcome = str(event.data.get("outcome", ""))
        found.span.set_attribute("onward.outcome", outcome)
        if outcome not in _NOT_OK:
            found.span.set_status(Status(StatusCode.OK))
        otel_context.detach(found.token)  # type: ignore[arg-type]
        found.span.end()


_lock = threading.Lock()
_active: tuple[Tracing, Callable[[], None]] | None = None


def enable(tracer_provider: TracerProvider | None = None) -> Tracing:
    """Trace jobs from now on, with ``tracer_provider`` (default: the global one)."""
    global _active
    with _lock:
        if _active is None:
            tracer = Tracing(tracer_provider)
            _active = (tracer, events.subscribe(tracer.on_event, Tracing.KINDS))
            tracing.inject = tracer.inject
        return _active[0]


def disable() -> None:
    """Stop tracing jobs (spans already open end as their executions do)."""
    global _active
    with _lock:
        if _active is not None:
            tracing.inject = None
            _active[1]()
            _active = None
