"""Operator text, in and out: durations, JSON arguments, and JSON-ready views of records.

Shared by the ``onward`` command and the dashboard (through :mod:`onward.admin`, which
re-exports these), so both accept the same input and print the same JSON.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from onward import serialization
from onward.errors import SerializationError

__all__ = ["decode_arguments", "format_duration", "parse_duration", "to_plain"]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)", re.IGNORECASE)
_UNITS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(text: str) -> timedelta:
    """``"7d"``, ``"12h"``, ``"1h30m"``, ``"90s"``, ``"2w"`` or plain seconds as a timedelta;
    ``ValueError`` with a readable message otherwise."""
    cleaned = text.strip().lower()
    try:
        return _duration(cleaned, text)
    except OverflowError:
        raise ValueError(f"duration {text!r} is too long: write at most a few thousand years, e.g. 3650d") from None


def _duration(cleaned: str, text: str) -> timedelta:
    if re.fullmatch(r"\d+(\.\d+)?", cleaned):
        return timedelta(seconds=float(cleaned))
    pos, seconds = 0, 0.0
    for match in _DURATION.finditer(cleaned):
        if cleaned[pos : match.start()].strip():
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    else:
        if pos and not cleaned[pos:].strip():
            return timedelta(seconds=seconds)
    raise ValueError(f"bad duration {text!r}: write e.g. 7d, 12h, 30m, 90s or 1h30m")


def format_duration(seconds: float | None) -> str:
    """A short human form: ``"0.4s"``, ``"42s"``, ``"3m05s"``, ``"2h10m"``, ``"3d4h"``."""
    if seconds is None:
        return "-"
    s = max(0.0, seconds)
    if s < 10:
        return f"{s:.1f}s"
    whole = int(s)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600}h"


def ago(when: datetime | None, now: float | None = None) -> str:
    """``3m05s ago`` / ``in 20s`` (relative to ``now``, epoch seconds), or ``-``."""
    if when is None:
        return "-"
    seconds = (time.time() if now is None else now) - when.timestamp()
    if seconds < 0:
        return f"in {format_duration(-seconds)}"
    return f"{format_duration(seconds)} ago"


def class_name(path: str) -> str:
    """``package.module:Outer.Name`` -> ``Outer.Name``."""
    return path.rpartition(":")[2] or path


def decode_arguments(args_json: str | None, kwargs_json: str | None) -> tuple[list[Any], dict[str, Any]]:
    """Parse positional arguments (a JSON array) and keyword arguments (a JSON object).

    Tagged values written by Onward (``{"$t": "datetime", "v": ...}``) come back typed.
    Raises ``ValueError`` with a one-line message naming the bad option.
    """
    args: Any = []
    kwargs: Any = {}
    if args_json is not None and args_json.strip():
        args = _loads(args_json, "--args")
        if not isinstance(args, list):
            raise ValueError(f"--args must be a JSON array, e.g. '[42, \"x\"]', got {type(args).__name__}")
    if kwargs_json is not None and kwargs_json.strip():
        kwargs = _loads(kwargs_json, "--kwargs")
        if not isinstance(kwargs, dict):
            raise ValueError(f"--kwargs must be a JSON object, e.g. '{{\"user_id\": 42}}', got {type(kwargs).__name__}")
    return args, kwargs


def _loads(text: str, what: str) -> Any:
    try:
        return serialization.from_json(text)
    except (ValueError, SerializationError) as exc:
        detail = f"{exc.msg} at character {exc.pos}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise ValueError(f"{what} is not valid JSON: {detail}") from None
    except RecursionError:
        raise ValueError(f"{what} is nested too deeply (Onward stores at most 100 levels)") from None


def to_plain(value: Any) -> Any:
    """``value`` as plain JSON data, for ``--json`` output and web APIs: dataclasses (records,
    steps, trees) become objects without their private fields, datetimes and dates ISO 8601
    strings, UUIDs and Decimals strings, enums their value, tuples lists."""
    if value is None or isinstance(value, (str, int, float, bool)):
        if isinstance(value, Enum):
            return value.value
        return value
    if isinstance(value, Enum):
        return to_plain(value.value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (UUID, Decimal)):
        return str(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value) if not f.name.startswith("_")
        }
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_plain(v) for v in value]
    return str(value)
