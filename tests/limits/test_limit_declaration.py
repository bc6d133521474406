"""Declaring limits: bad numbers are refused when the class is defined, a bad key when the
job is enqueued (nothing stored); the key is computed at enqueue and stored with the job."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from onward import Job, Throttle
from onward.stores.base import JobFilter, Store


class Keyed(Job):
    concurrency = 3

    def limit_key(self, account: Any) -> Any:
        return account

    def perform(self, account: Any) -> None:
        return None


class Default(Job):
    throttle = Throttle(5, per=2)

    def perform(self) -> None:
        return None


class Unlimited(Job):
    def perform(self) -> None:
        return None


@pytest.mark.parametrize("value", [0, -1, 1.5, "2", True])
def test_concurrency_must_be_a_positive_int(value: Any) -> None:
    with pytest.raises((TypeError, ValueError), match=r"Bad\.concurrency"):

        class Bad(Job):
            concurrency = value


def test_throttle_must_be_a_throttle() -> None:
    with pytest.raises(TypeError, match=r"Bad\.throttle"):

        class Bad(Job):
            throttle = (10, 1)  # type: ignore[assignment]


@pytest.mark.parametrize(
    ("limit", "per", "error"),
    [(0, 1, ValueError), (-2, 1, ValueError), (1.5, 1, TypeError), (True, 1, TypeError), (3, 0, ValueError),
     (3, -1, ValueError), (3, timedelta(0), ValueError), (3, "1s", TypeError), (3, float("nan"), ValueError)],
)  # fmt: skip
def test_throttle_refuses_non_positive_limits_and_windows(limit: Any, per: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="Throttle"):
        Throttle(limit, per=per)


def test_throttle_takes_a_timedelta_or_seconds() -> None:
    assert Throttle(10, per=timedelta(minutes=1)).per == 60.0
    assert Throttle(2, per=0.5) == Throttle(2, per=timedelta(milliseconds=500))


@pytest.mark.parametrize("key", [None, 7, ["k"], "", "a\nb", "x" * 201])
def test_a_bad_limit_key_is_refused_at_enqueue_and_nothing_is_stored(store: Store, key: Any) -> None:
    with pytest.raises((TypeError, ValueError), match=r"Keyed\.limit_key"):
        Keyed.perform_later(key)
    with pytest.raises((TypeError, ValueError), match=r"Keyed\.limit_key"):
        Keyed.perform_all_later([("ok",), (key,)])
    assert store.list_jobs(JobFilter()) == []


def test_the_key_is_computed_at_enqueue_and_stored(store: Store) -> None:
    keyed = Keyed.perform_later("account:7").refresh()
    default = Default.perform_later().refresh()
    unlimited = Unlimited.perform_later().refresh()
    assert keyed.limit_key == "account:7"
    assert default.limit_key == default.job_class  # the class path
    assert unlimited.limit_key is None  # no limits: the claim's usual path
