"""Retry policy and backoff: pure functions, with the randomness injectable."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from numbers import Real

#: Default backoff: ``BASE * 2 ** (attempt - 1)`` seconds, capped, times a jitter in
#: ``[1 - JITTER, 1 + JITTER]``. Attempt 1 waits about 2 s, attempt 5 about 32 s.
BASE_SECONDS = 2.0
CAP_SECONDS = 3600.0
JITTER = 0.25

Backoff = float | int | Callable[[int], float] | None


def backoff(
    failures: int, base: float, cap: float, jitter: float = 0.0, rand: Callable[[], float] = random.random
) -> float:
    """Seconds to wait after ``failures`` failures in a row: ``base * 2 ** (failures - 1)``,
    at most ``cap``, times a random factor in ``[1 - jitter, 1 + jitter]``. Every waiting loop
    in Onward uses it: job retries, store reconnects, worker and supervisor restarts."""
    wait = min(cap, base * 2.0 ** max(0, failures - 1))
    return wait * (1.0 - jitter + 2.0 * jitter * rand()) if jitter else wait


def default_backoff(attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Exponential backoff with jitter for the retry after try number ``attempt``."""
    return backoff(attempt, BASE_SECONDS, CAP_SECONDS, JITTER, rand)


@dataclass(frozen=True)
class Retry:
    """How often a failing job is tried, how long to wait between tries, and on what errors.

    ``attempts`` counts tries in all (1 means never retry). ``backoff`` is seconds, a callable
    ``attempt -> seconds``, or ``None`` for exponential backoff with jitter. Only exceptions
    that are instances of ``on`` are retried; any other fails the job at once.
    """

    attempts: int = 3
    backoff: Backoff = None
    on: tuple[type[BaseException], ...] = (Exception,)
    rand: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int) or self.attempts < 1:
            raise ValueError(f"Retry(attempts=...) must be an int >= 1, got {self.attempts!r}")
        on = self.on
        if isinstance(on, type):
            object.__setattr__(self, "on", (on,))
        elif not isinstance(on, tuple) or not all(isinstance(t, type) and issubclass(t, BaseException) for t in on):
            raise ValueError(f"Retry(on=...) must be a tuple of exception classes, got {on!r}")
        backoff = self.backoff
        if isinstance(backoff, Real) and not isinstance(backoff, bool):
            if backoff < 0:
                raise ValueError(f"Retry(backoff=...) must be >= 0 seconds, got {backoff!r}")
        elif backoff is not None and not callable(backoff):
            raise ValueError(f"Retry(backoff=...) must be seconds, a callable or None, got {backoff!r}")

    def retries(self, exc: BaseException) -> bool:
        """Whether ``exc`` is one this policy retries."""
        return isinstance(exc, self.on)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before the try after try number ``attempt``."""
        backoff = self.backoff
        if backoff is None:
            return default_backoff(attempt, self.rand)
        if callable(backoff):
            return max(0.0, float(backoff(attempt)))
        return float(backoff)
