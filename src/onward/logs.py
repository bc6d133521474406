"""Logging set-up for the ``onward`` command: readable lines, or one JSON object per line.

The worker logs one line per job event (started, resumed, succeeded, failed, retry or
resume scheduled, interrupted, step started / resumed / completed / skipped) on the loggers
``onward.worker`` and ``onward.steps``, with ``job_id`` and ``event`` attached to the record.
:class:`JsonFormatter` puts those fields in the object, so a log pipeline can follow one job::

    {"time": "2026-01-05T10:00:00.123Z", "level": "INFO", "logger": "onward.worker",
     "message": "BulkWelcomeEmail 01a2... interrupted (worker stopping) at step 'send_emails'",
     "job_id": "01a2...", "event": "interrupted"}

Embedding Onward in an application needs none of this: attach your own handlers to the
``onward`` logger as with any library.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from onward import log_events

__all__ = ["FORMATS", "JsonFormatter", "TextFormatter", "configure"]

FORMATS = ("text", "json")

# Attributes every LogRecord has; anything else was passed in ``extra=`` and is kept.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (ISO 8601, UTC), ``level``, ``logger``,
    ``message``, then ``job_id``, ``event`` and ``worker_id`` when the record has them, any
    other ``extra`` field, and ``traceback`` for a logged exception. Values that are not JSON
    become strings."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        out: dict[str, Any] = {
            "time": when.replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("job_id", "event", "worker_id"):
            value = getattr(record, key, None)
            if value is not None:
                out[key] = value
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in out and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["traceback"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``time level logger: message`` on one line (line breaks in a message become spaces),
    with ``[job <id>]`` added when the message does not name the job it is about (step events,
    for instance), and ``[worker <id>]`` on the lines of job events, so the lines of several
    worker processes can be told apart."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        # One line per record: a message with line breaks (a driver's error text, say) is
        # joined; only a logged exception's traceback, added after it, spans lines.
        if "\n" in record.message:
            record.message = " ".join(part.strip() for part in record.message.splitlines() if part.strip())
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        tags = ""
        job_id = getattr(record, "job_id", None)
        if job_id and str(job_id) not in record.getMessage():
            tags += f" [job {job_id}]"
        worker_id = getattr(record, "worker_id", None)
        if worker_id:
            tags += f" [worker {worker_id}]"
        if tags:
            first, sep, rest = text.partition("\n")
            text = f"{first}{tags}{sep}{rest}"
        return text


_installed: list[logging.Handler] = []


def configure(level: str | int = "INFO", fmt: str = "text", stream: TextIO | None = None) -> logging.Handler:
    """Send log records at ``level`` and above to ``stream`` (stderr by default) in ``fmt``
    (``"text"`` or ``"json"``), through one handler on the root logger, so job code that
    logs is formatted the same way. Calling it again replaces the handler it installed."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r}; use one of {', '.join(FORMATS)}")
    root = logging.getLogger()
    for old in _installed:
        root.removeHandler(old)
    _installed.clear()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    _installed.append(handler)
    log_events.follow_levels()
    return handler
