"""The JSON codec for arguments, results, cursors and job state.

Values are JSON values, or ``datetime``, ``date``, ``UUID`` and ``Decimal``, which are
stored as tagged objects (``{"$t": "datetime", "v": "..."}``) and come back with their type.
Tuples come back as lists. Anything else raises :class:`SerializationError` naming the
path of the offending value, e.g. ``kwargs['when']: set is not serializable``; so do values
past the limits every store shares: nesting deeper than :data:`MAX_DEPTH`, an int longer than
:data:`MAX_INT_DIGITS` digits, a text longer than :data:`MAX_SIZE` characters once encoded.
A user dict that happens to contain the tag key is itself wrapped, so decoding is exact.
Nothing is ever pickled.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

from onward.errors import SerializationError

TAG = "$t"

#: Lists and dicts nested deeper than this are refused.
MAX_DEPTH = 100
#: Ints longer than this many digits are refused (Python's own limit for int <-> str).
MAX_INT_DIGITS = 4300
#: An encoded value longer than this many characters (64 MiB) is refused.
MAX_SIZE = 64 * 1024 * 1024

_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"), ensure_ascii=False)
# The C encoder behind ``_ENCODER``, built once: ``JSONEncoder.encode`` builds one per call.
# :func:`tag` has already refused what it would (cycles nest past MAX_DEPTH, NaN and
# infinities are refused there), so it runs without its own cycle check.
_MAKE_ENCODER = getattr(json.encoder, "c_make_encoder", None)
_C_ENCODE = (
    _MAKE_ENCODER(None, None, json.encoder.encode_basestring, None, ":", ",", False, False, False)
    if _MAKE_ENCODER is not None
    else None
)
_SCALARS = (str, bool, type(None))
_PLAIN = frozenset((bool, type(None)))
_BIG = 10**MAX_INT_DIGITS


def to_json(value: Any, path: str = "value", depth: int = 1) -> str:
    """Encode ``value`` as JSON text, or raise :class:`SerializationError` naming ``path``.
    ``depth`` is the nesting level of ``value`` itself (0 for a wrapper such as the list of
    a job's positional arguments)."""
    if value is None:
        return "null"
    plain = tag(value, path, depth)
    text = "".join(_C_ENCODE(plain, 0)) if _C_ENCODE is not None else _ENCODER.encode(plain)
    if len(text) > MAX_SIZE:
        raise SerializationError(
            f"{path}: {len(text):,} characters once encoded, more than the {MAX_SIZE:,} Onward stores; "
            "store large data elsewhere and pass its key"
        )
    return text


def from_json(text: str | None) -> Any:
    """Decode JSON text written by :func:`to_json` (``None`` stays ``None``)."""
    if text is None:
        return None
    if len(text) == 2:  # the most common texts by far: no arguments, no state
        if text == "[]":
            return []
        if text == "{}":
            return {}
    try:  # the decoder's scanner alone: what ``decode`` adds is two regex matches for whitespace
        value, end = _SCAN(text, 0)
    except StopIteration:  # no value at the start: ``decode`` names what is wrong
        return _DECODER.decode(text)
    if end != len(text):  # something after the value: ``decode`` allows whitespace, or says why not
        return _DECODER.decode(text)
    return value


def check(value: Any, path: str = "value") -> None:
    """Raise :class:`SerializationError` if ``value`` could not be stored."""
    tag(value, path)


def tag(value: Any, path: str, depth: int = 1) -> Any:
    """Return a plain-JSON form of ``value``; typed values become tagged objects."""
    if isinstance(value, _SCALARS):
        if isinstance(value, str) and not value.isascii():
            _check_text(value, path)
        return value
    if isinstance(value, int):
        if -_BIG < value < _BIG:
            return value
        raise SerializationError(
            f"{path}: int of about {int(value.bit_length() * 0.30103):,} digits is not serializable "
            f"(at most {MAX_INT_DIGITS:,} digits)"
        )
    if isinstance(value, (list, tuple, dict)) and depth > MAX_DEPTH:
        shown = path if len(path) <= 80 else f"{path[:48]}...{path[-24:]}"
        raise SerializationError(f"{shown}: nested deeper than {MAX_DEPTH} levels (a list or dict at level {depth})")
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        raise SerializationError(f"{path}: float {value!r} is not serializable (NaN and infinities are not JSON)")
    if isinstance(value, (list, tuple)):
        # Plain scalars are kept as they are, without a call (the common case, e.g. ids).
        return [
            item
            if type(item) in _PLAIN
            or (type(item) is str and item.isascii())
            or (type(item) is int and -_BIG < item < _BIG)
            else tag(item, f"{path}[{i}]", depth + 1)
            for i, item in enumerate(value)
        ]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise SerializationError(
                    f"{path}: dict key {key!r} ({type(key).__name__}) is not serializable; keys must be str"
                )
            if not key.isascii():
                _check_text(key, f"{path}[{key!r}]")
            out[key] = tag(item, f"{path}[{key!r}]", depth + 1)
        if TAG in out:
            # Pairs, not a dict, so the decoder cannot mistake the user's dict for a tag.
            return {TAG: "dict", "v": [[k, v] for k, v in out.items()]}
        return out
    if isinstance(value, datetime):
        return {TAG: "datetime", "v": value.isoformat()}
    if isinstance(value, date):
        return {TAG: "date", "v": value.isoformat()}
    if isinstance(value, UUID):
        return {TAG: "uuid", "v": str(value)}
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise SerializationError(f"{path}: Decimal {value} is not serializable (NaN and infinities are not JSON)")
        return {TAG: "decimal", "v": str(value)}
    raise SerializationError(f"{path}: {type(value).__name__} is not serializable")


def _check_text(text: str, path: str) -> None:
    """A str holding a lone surrogate has no UTF-8 form, so it cannot be stored as JSON text."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SerializationError(
            f"{path}: str with a lone surrogate {text[exc.start]!r} at index {exc.start} is not serializable"
        ) from None


def _untag(obj: dict[str, Any]) -> Any:
    kind = obj.get(TAG)
    if kind is None:
        return obj
    raw = obj["v"]
    if kind == "datetime":
        return _parse_datetime(raw)
    if kind == "date":
        return date.fromisoformat(raw)
    if kind == "uuid":
        return UUID(raw)
    if kind == "decimal":
        return Decimal(raw)
    if kind == "dict":
        return dict(raw)
    raise SerializationError(f"unknown tagged value {kind!r} in stored JSON")


def _parse_datetime(raw: str) -> datetime:
    parsed = datetime.fromisoformat(raw)
    offset = parsed.utcoffset()
    if offset is None:
        return parsed
    # Named zones cannot be stored in JSON; they come back as a fixed offset.
    return parsed.replace(tzinfo=UTC if offset == timedelta(0) else timezone(offset))


def encode_args(args: Sequence[Any], kwargs: dict[str, Any]) -> tuple[str, str]:
    """Encode a job's arguments, naming ``args[i]`` / ``kwargs['k']`` on error."""
    # ``tag`` turns a tuple of positional arguments into the list it encodes.
    positional = args if type(args) is tuple or type(args) is list else list(args)
    return to_json(positional, "args", 0), to_json(kwargs, "kwargs", 0) if kwargs else "{}"


_DECODER = json.JSONDecoder(object_hook=_untag)
_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]
