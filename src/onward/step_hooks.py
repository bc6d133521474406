"""Points where a test asks a job to be interrupted (``onward.testing`` interrupt helpers).

The step runner consults :data:`active` at every checkpoint and step boundary; it is empty
outside tests, so the check costs one truth test of a list.
"""

from __future__ import annotations

import threading
from typing import Any

#: Matches any cursor in ``interrupt_during_step``.
ANY: Any = object()


class Hook:
    """Interrupt the first matching execution of ``job_class`` (or a subclass) once: during
    step ``step`` at a checkpoint whose cursor equals ``cursor``, or after it (``after``)."""

    def __init__(self, job_class: type, step: str, after: bool, cursor: Any) -> None:
        self.job_class = job_class
        self.step = step
        self.after = after
        self.cursor = cursor
        self.fired = False

    def matches(self, job: object, step: str) -> bool:
        return not self.fired and self.step == step and isinstance(job, self.job_class)


#: The hooks in force, in the order they were added.
active: list[Hook] = []
_lock = threading.Lock()


def add(hook: Hook) -> None:
    with _lock:
        active.append(hook)


def remove(hook: Hook) -> None:
    with _lock:
        if hook in active:
            active.remove(hook)


def fire_during(job: object, step: str, cursor: Any) -> bool:
    """Whether an ``interrupt_during_step`` hook fires at this checkpoint (marking it fired)."""
    with _lock:
        for hook in active:
            if hook.after or not hook.matches(job, step):
                continue
            if hook.cursor is not ANY and cursor != hook.cursor:
                continue
            hook.fired = True
            return True
    return False


def after_step(job: object, step: str) -> Hook | None:
    """The ``interrupt_after_step`` hook waiting for the boundary after ``step``.

    It is marked fired only at that boundary (see :func:`claim`): after a job's last step no
    boundary follows, so the hook stays unfired and its context manager reports it.
    """
    with _lock:
        for hook in active:
            if hook.after and hook.matches(job, step):
                return hook
    return None


def claim(hook: Hook) -> bool:
    """Mark ``hook`` fired at its boundary; false if another execution fired it first."""
    with _lock:
        if hook.fired:
            return False
        hook.fired = True
        return True
