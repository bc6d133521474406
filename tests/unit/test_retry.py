"""The retry policy: defaults, backoff shapes and validation (pure functions, no store)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onward import Retry
from onward.retry import BASE_SECONDS, CAP_SECONDS, JITTER, default_backoff


def test_defaults_are_three_attempts_default_backoff_on_every_exception() -> None:
    retry = Retry()
    assert retry.attempts == 3
    assert retry.backoff is None
    assert retry.on == (Exception,)
    assert retry.retries(ValueError("x"))
    assert not retry.retries(KeyboardInterrupt())


def test_only_errors_listed_in_on_are_retried() -> None:
    retry = Retry(on=(ConnectionError, TimeoutError))
    assert retry.retries(ConnectionResetError())  # a subclass counts
    assert retry.retries(TimeoutError())
    assert not retry.retries(ValueError())


def test_a_single_exception_class_is_accepted_for_on() -> None:
    assert Retry(on=ConnectionError).on == (ConnectionError,)  # type: ignore[arg-type]


def test_backoff_in_seconds() -> None:
    retry = Retry(backoff=7)
    assert retry.delay(1) == 7.0
    assert retry.delay(10) == 7.0
    assert Retry(backoff=0).delay(1) == 0.0
    assert Retry(backoff=0.25).delay(3) == 0.25


def test_backoff_from_a_callable_gets_the_attempt_number() -> None:
    retry = Retry(backoff=lambda attempt: attempt * 10)
    assert [retry.delay(n) for n in (1, 2, 3)] == [10.0, 20.0, 30.0]


def test_a_callable_returning_a_negative_delay_means_now() -> None:
    assert Retry(backoff=lambda attempt: -5).delay(1) == 0.0


def test_default_backoff_grows_exponentially_without_jitter_at_the_midpoint() -> None:
    retry = Retry(rand=lambda: 0.5)  # jitter factor exactly 1
    assert [retry.delay(n) for n in (1, 2, 3, 4, 5)] == [2.0, 4.0, 8.0, 16.0, 32.0]


def test_default_backoff_is_capped() -> None:
    assert Retry(rand=lambda: 0.5).delay(100) == CAP_SECONDS


@given(st.integers(min_value=1, max_value=200), st.floats(min_value=0.0, max_value=0.999999))
def test_default_backoff_stays_within_the_jitter_band(attempt: int, r: float) -> None:
    base = min(CAP_SECONDS, BASE_SECONDS * 2.0 ** (attempt - 1))
    delay = default_backoff(attempt, lambda: r)
    assert base * (1 - JITTER) <= delay <= base * (1 + JITTER)


def test_default_backoff_uses_randomness_by_default() -> None:
    delays = {Retry().delay(3) for _ in range(20)}
    assert len(delays) > 1
    assert all(8 * (1 - JITTER) <= d <= 8 * (1 + JITTER) for d in delays)


@pytest.mark.parametrize("attempts", [0, -1, 1.5, True, "3"])
def test_attempts_must_be_a_positive_int(attempts: object) -> None:
    with pytest.raises(ValueError, match="attempts"):
        Retry(attempts=attempts)  # type: ignore[arg-type]


@pytest.mark.parametrize("backoff", [-1, "5s", [1]])
def test_backoff_must_be_seconds_a_callable_or_none(backoff: object) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Retry(backoff=backoff)  # type: ignore[arg-type]


@pytest.mark.parametrize("on", [(ValueError, "x"), ("ValueError",), [ValueError], (int,)])
def test_on_must_be_exception_classes(on: object) -> None:
    with pytest.raises(ValueError, match="on"):
        Retry(on=on)  # type: ignore[arg-type]


def test_one_attempt_means_never_retry() -> None:
    assert Retry(attempts=1).attempts == 1


def test_policies_are_frozen_values() -> None:
    assert Retry(attempts=2, backoff=1) == Retry(attempts=2, backoff=1)
    with pytest.raises(AttributeError):
        Retry().attempts = 5  # type: ignore[misc]
