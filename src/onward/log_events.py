"""The log lines: one line per job event, written by a subscriber of :mod:`onward.events`.

Job outcomes go to the ``onward.worker`` logger and step events to ``onward.steps``, each
record carrying ``job_id``, ``event`` and ``worker_id`` (see :mod:`onward.logs` for the text
and JSON formats). It is subscribed when ``onward`` is imported; attach handlers to the
``onward`` logger as with any library, or unsubscribe it with ``onward.log_events.disable()``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from onward import events
from onward.errors import error_summary
from onward.events import Event

__all__ = ["disable", "enable", "follow_levels", "log_event"]

worker_log = logging.getLogger("onward.worker")
steps_log = logging.getLogger("onward.steps")

_INFO, _WARNING, _ERROR = logging.INFO, logging.WARNING, logging.ERROR


def _name(event: Event) -> str:
    path = event.job_class or "?"
    return path.rpartition(":")[2] or path


def _last_line(text: object) -> str:
    """The ``module.Type: message`` of a stored error, on one line and capped."""
    return error_summary(text if isinstance(text, str) else str(text or ""))


def _write(logger: logging.Logger, level: int, event: Event, name: str, message: str, *args: object) -> None:
    logger.log(level, message, *args, extra={"job_id": event.job_id, "event": name, "worker_id": event.worker_id})


def _started(event: Event) -> None:
    if not worker_log.isEnabledFor(_INFO):
        return
    if event.data.get("resumed"):
        step = event.data.get("step")
        where = f" at step {step!r}" if step else ""
        _write(
            worker_log,
            _INFO,
            event,
            "resumed",
            "%s %s resumed%s (attempt %d, resumption %d)",
            _name(event),
            event.job_id,
            where,
            event.attempt,
            event.resumptions,
        )
    else:
        _write(
            worker_log, _INFO, event, "started", "%s %s started (attempt %d)", _name(event), event.job_id, event.attempt
        )


def _succeeded(event: Event) -> None:
    if worker_log.isEnabledFor(_INFO):
        n = event.data.get("continuations") or 0
        more = f" ({n} continuations)" if n else ""
        _write(worker_log, _INFO, event, "succeeded", "%s %s succeeded%s", _name(event), event.job_id, more)


def _ended_badly(event: Event) -> None:
    _write(
        worker_log,
        _WARNING,
        event,
        event.kind,
        "%s %s %s: %s",
        _name(event),
        event.job_id,
        event.kind,
        _last_line(event.data.get("error")),
    )


def _retried(event: Event) -> None:
    resumption = bool(event.data.get("resumption"))
    _write(
        worker_log,
        _WARNING,
        event,
        "resume_scheduled" if resumption else "retry_scheduled",
        "%s %s failed (%s); %s in %.1f s",
        _name(event),
        event.job_id,
        _last_line(event.data.get("error")),
        "resume from its checkpoint" if resumption else "retry",
        float(event.data.get("delay") or 0.0),
    )


def _cancelled(event: Event) -> None:
    _write(worker_log, _INFO, event, "cancelled", "%s %s cancelled", _name(event), event.job_id)


def _interrupted(event: Event) -> None:
    _write(
        worker_log,
        _INFO,
        event,
        "interrupted",
        "%s %s interrupted (%s) %s",
        _name(event),
        event.job_id,
        event.data.get("reason", ""),
        event.data.get("where", ""),
    )


def _lost(event: Event) -> None:
    _write(
        worker_log,
        _WARNING,
        event,
        "lease_lost",
        "%s %s: lease lost; this execution's result is dropped",
        _name(event),
        event.job_id,
    )


def _continuation_error(event: Event) -> None:
    _write(
        worker_log,
        _ERROR,
        event,
        "continuation_error",
        "%s %s: continuations raised; none of them was enqueued: %s",
        _name(event),
        event.job_id,
        _last_line(event.data.get("error")),
    )


def _released(event: Event) -> None:
    _write(
        worker_log,
        _WARNING,
        event,
        "released",
        "job %s did not finish within the shutdown timeout; released to the queue",
        event.job_id,
    )


def _step_started(event: Event) -> None:
    if not steps_log.isEnabledFor(_INFO):
        return
    step = event.data.get("step")
    if event.data.get("resumed"):
        _write(steps_log, _INFO, event, "step_resumed", "step %r resumed at cursor %r", step, event.data.get("cursor"))
    else:
        _write(steps_log, _INFO, event, "step_started", "step %r started", step)


def _step_completed(event: Event) -> None:
    if steps_log.isEnabledFor(_INFO):
        _write(steps_log, _INFO, event, "step_completed", "step %r completed", event.data.get("step"))


def _step_skipped(event: Event) -> None:
    if steps_log.isEnabledFor(_INFO):
        _write(steps_log, _INFO, event, "step_skipped", "step %r skipped (completed earlier)", event.data.get("step"))


_HANDLERS: dict[str, Callable[[Event], None]] = {
    events.STARTED: _started,
    events.SUCCEEDED: _succeeded,
    events.FAILED: _ended_badly,
    events.DISCARDED: _ended_badly,
    events.RETRIED: _retried,
    events.INTERRUPTED: _interrupted,
    events.CANCELLED: _cancelled,
    events.LOST: _lost,
    events.CONTINUATION_ERROR: _continuation_error,
    events.RELEASED: _released,
    events.STEP_STARTED: _step_started,
    events.STEP_COMPLETED: _step_completed,
    events.STEP_SKIPPED: _step_skipped,
}


def log_event(event: Event) -> None:
    """Write the log line for ``event``, if it has one."""
    handler = _HANDLERS.get(event.kind)
    if handler is not None:
        handler(event)


_unsubscribe: Callable[[], None] | None = None
# Kinds logged only at INFO: not listened to while neither logger writes INFO records.
_INFO_KINDS = {
    events.STARTED: worker_log,
    events.SUCCEEDED: worker_log,
    events.INTERRUPTED: worker_log,
    events.STEP_STARTED: steps_log,
    events.STEP_COMPLETED: steps_log,
    events.STEP_SKIPPED: steps_log,
}


def enable() -> None:
    """Write log lines for job events (the default)."""
    _subscribe(_HANDLERS)


def follow_levels() -> None:
    """If enabled, listen only to the events whose line the loggers' levels would write now
    (events logged at INFO are not even built while nothing writes INFO records). Called by
    :func:`onward.logs.configure`; call it again after changing the levels by hand."""
    if _unsubscribe is not None:
        _subscribe(k for k in _HANDLERS if k not in _INFO_KINDS or _INFO_KINDS[k].isEnabledFor(_INFO))


def _subscribe(kinds: Iterable[str]) -> None:
    global _unsubscribe
    if _unsubscribe is not None:
        _unsubscribe()
    _unsubscribe = events.subscribe(log_event, kinds)


def disable() -> None:
    """Stop writing log lines for job events."""
    global _unsubscribe
    if _unsubscribe is not None:
        _unsubscribe()
        _unsubscribe = None
