"""The JSON codec: typed values round-trip with their type, anything else is refused with a path."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onward import OnwardError, SerializationError
from onward.serialization import check, encode_args, from_json, to_json

# -- strategies ----------------------------------------------------------------------------

offsets = st.integers(min_value=-23 * 60, max_value=23 * 60).map(lambda m: timezone(timedelta(minutes=m)))
aware_datetimes = st.datetimes(timezones=st.one_of(st.just(UTC), offsets))
naive_datetimes = st.datetimes()
finite_decimals = st.decimals(allow_nan=False, allow_infinity=False)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
    st.dates(),
    aware_datetimes,
    naive_datetimes,
    st.uuids(),
    finite_decimals,
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)),
    max_leaves=20,
)
# Dict keys that collide with the codec's tag must survive too.
keys = st.one_of(st.text(max_size=5), st.sampled_from(["$t", "v", "$t$"]))
values_with_tag_keys = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)),
    max_leaves=15,
)
unserializable = st.one_of(
    st.sets(st.integers(), max_size=2).map(lambda s: (s, "set")),
    st.frozensets(st.integers(), max_size=2).map(lambda s: (s, "frozenset")),
    st.binary(max_size=3).map(lambda b: (b, "bytes")),
    st.just((object(), "object")),
    st.just((float("nan"), "nan")),
    st.just((float("inf"), "inf")),
    st.just((-float("inf"), "-inf")),
    st.just((Decimal("NaN"), "NaN")),
    st.just((Decimal("Infinity"), "Infinity")),
    st.just((timedelta(seconds=1), "timedelta")),
    st.just((1 + 2j, "complex")),
)


def same(a: Any, b: Any) -> bool:
    """Equal with the same types all the way down (tuples compared as lists)."""
    if isinstance(a, tuple):
        a = list(a)
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, datetime):
        return a == b and a.utcoffset() == b.utcoffset()
    return bool(a == b)


# -- round trips ---------------------------------------------------------------------------


@given(values)
def test_every_supported_value_round_trips_with_its_type(value: Any) -> None:
    assert same(value, from_json(to_json(value)))


@given(values_with_tag_keys)
def test_user_dicts_using_the_tag_key_round_trip_exactly(value: Any) -> None:
    assert same(value, from_json(to_json(value)))


@given(values)
def test_encoded_text_is_plain_json(value: Any) -> None:
    json.loads(to_json(value))  # never anything but JSON: nothing is pickled


@given(st.lists(values, max_size=3).map(tuple))
def test_tuples_come_back_as_lists(value: tuple[Any, ...]) -> None:
    decoded = from_json(to_json(value))
    assert isinstance(decoded, list)
    assert same(list(value), decoded)


@given(aware_datetimes)
def test_aware_datetimes_come_back_aware_with_a_fixed_offset(value: datetime) -> None:
    decoded = from_json(to_json(value))
    assert decoded == value
    assert decoded.utcoffset() == value.utcoffset()


@given(naive_datetimes)
def test_naive_datetimes_stay_naive(value: datetime) -> None:
    decoded = from_json(to_json(value))
    assert decoded == value
    assert decoded.tzinfo is None


def test_named_time_zones_come_back_as_their_offset() -> None:
    value = datetime(2026, 7, 1, 12, 30, tzinfo=ZoneInfo("Europe/Paris"))
    decoded = from_json(to_json(value))
    assert decoded == value
    assert decoded.utcoffset() == timedelta(hours=2)
    assert isinstance(decoded.tzinfo, timezone)


def test_datetime_is_not_confused_with_date() -> None:
    assert type(from_json(to_json(date(2026, 1, 2)))) is date
    assert type(from_json(to_json(datetime(2026, 1, 2)))) is datetime


def test_decimal_keeps_its_precision() -> None:
    value = Decimal("3.14159265358979323846264338327950288")
    assert from_json(to_json(value)) == value
    assert str(from_json(to_json(Decimal("1.10")))) == "1.10"


def test_uuid_comes_back_as_uuid() -> None:
    value = UUID("12345678-1234-5678-1234-567812345678")
    assert from_json(to_json({"id": value})) == {"id": value}


def test_none_text_decodes_to_none() -> None:
    assert from_json(None) is None


# -- refusals --------------------------------------------------------------------------------


@given(unserializable)
def test_unserializable_values_raise_serialization_error(case: tuple[Any, str]) -> None:
    value, _ = case
    with pytest.raises(SerializationError) as info:
        to_json(value, "value")
    assert str(info.value).startswith("value: ")
    assert isinstance(info.value, OnwardError)


# A path into a nested structure, and the text the error should name for it.
segments = st.one_of(
    st.integers(min_value=0, max_value=3).map(lambda i: ("index", i)),
    st.text(min_size=1, max_size=4).map(lambda k: ("key", k)),
)


@given(st.lists(segments, max_size=4), unserializable)
def test_error_names_the_path_of_the_offending_value(path: list[tuple[str, Any]], case: tuple[Any, str]) -> None:
    bad, _ = case
    value: Any = bad
    expected = "kwargs"
    for _kind, part in path:
        expected += f"[{part!r}]"
    for kind, part in reversed(path):
        value = [None] * part + [value] if kind == "index" else {part: value}
    with pytest.raises(SerializationError) as info:
        to_json(value, "kwargs")
    assert str(info.value).startswith(f"{expected}: ")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"when": {1, 2}}, "kwargs['when']: set is not serializable"),
        ({"data": b"x"}, "kwargs['data']: bytes is not serializable"),
        ({"at": [1, {"deep": object()}]}, "kwargs['at'][1]['deep']: object is not serializable"),
        ({"ratio": float("nan")}, "kwargs['ratio']: float nan is not serializable"),
        ({"ratio": float("inf")}, "kwargs['ratio']: float inf is not serializable"),
        ({"amount": Decimal("NaN")}, "kwargs['amount']: Decimal NaN is not serializable"),
    ],
)
def test_error_messages(value: Any, message: str) -> None:
    with pytest.raises(SerializationError) as info:
        to_json(value, "kwargs")
    assert str(info.value).startswith(message)


@given(st.one_of(st.integers(), st.floats(allow_nan=False), st.none(), st.booleans(), st.tuples(st.integers())))
def test_non_str_dict_keys_are_refused_naming_the_key(key: Any) -> None:
    with pytest.raises(SerializationError) as info:
        to_json({"outer": {key: 1}}, "kwargs")
    message = str(info.value)
    assert message.startswith("kwargs['outer']: dict key ")
    assert repr(key) in message


surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)


@given(st.text(max_size=3), surrogates, st.text(max_size=3))
def test_text_with_a_lone_surrogate_is_refused_naming_its_path(before: str, bad: str, after: str) -> None:
    text = before + bad + after
    with pytest.raises(SerializationError) as info:
        to_json({"name": [text]}, "kwargs")
    assert str(info.value).startswith("kwargs['name'][0]: str with a lone surrogate ")
    with pytest.raises(SerializationError, match="lone surrogate"):
        to_json({text: 1}, "kwargs")


@given(st.text(alphabet=st.characters(codec="utf-8")))
def test_any_unicode_text_round_trips(text: str) -> None:
    assert from_json(to_json({text: [text]})) == {text: [text]}


def test_encode_args_names_args_and_kwargs() -> None:
    with pytest.raises(SerializationError, match=r"^args\[1\]: set is not serializable"):
        encode_args((1, {2}), {})
    with pytest.raises(SerializationError, match=r"^kwargs\['when'\]: set is not serializable"):
        encode_args((), {"when": {1}})
    args, kwargs = encode_args((1, (2, 3)), {"at": date(2026, 1, 1)})
    assert from_json(args) == [1, [2, 3]]
    assert from_json(kwargs) == {"at": date(2026, 1, 1)}


def test_check_raises_like_to_json_and_accepts_good_values() -> None:
    check({"a": [1, "b", None, Decimal("1")]})
    with pytest.raises(SerializationError, match=r"^state\['x'\]: set"):
        check({"x": set()}, "state")


def test_serialization_error_is_also_a_type_error() -> None:
    # Code that already catches TypeError from json.dumps keeps working.
    with pytest.raises(TypeError):
        to_json({1, 2})


def test_an_unknown_tag_in_stored_json_is_an_error() -> None:
    with pytest.raises(SerializationError, match="unknown tagged value"):
        from_json('{"$t": "pickle", "v": "x"}')


@pytest.mark.parametrize(
    ("text", "value"),
    [("[1]", [1]), (" [1] \n", [1]), ('{"a": [1, "x"]}', {"a": [1, "x"]}), ("null", None), ("2.5", 2.5)],
)
def test_stored_text_decodes_with_or_without_surrounding_whitespace(text: str, value: Any) -> None:
    assert from_json(text) == value


@pytest.mark.parametrize("text", ["", "[1", "[1] x", "nul", '{"a":}', "[1]]"])
def test_text_that_is_not_one_json_value_is_refused_with_the_decoders_message(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as caught:
        from_json(text)
    assert "line 1 column" in str(caught.value)
