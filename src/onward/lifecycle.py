"""The decisions of a job's life, made once, without I/O.

What happens after an error, after a lost lease or a graceful stop, what a unique key does
to an enqueue, and which operator actions a state allows: the execution, both stores, the
operators' API and the dashboard ask here. A store may restate a decision in SQL for speed
(PostgreSQL takes back expired leases in one statement); a test runs one table of cases
against these functions and against both stores, so the restatement cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from onward.records import State

__all__ = [
    "ACTIONS",
    "LEASE_EXPIRED_ERROR",
    "PROCESS_DIED_ERROR",
    "STOPPED_ERROR",
    "Action",
    "CancelEffect",
    "Decision",
    "KeyUse",
    "Outcome",
    "Verdict",
    "actions_for",
    "after_error",
    "after_lost_lease",
    "after_release",
    "allows",
    "cancel_effect",
    "joined",
    "states_allowing",
    "resume_limit_error",
    "unique_key_use",
]


class Outcome(StrEnum):
    """How an execution of a job ended (what a worker counts)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DISCARDED = "discarded"
    RETRYING = "retrying"
    RESUMING = "resuming"
    INTERRUPTED = "interrupted"
    CANCELLED = "cancelled"
    LOST = "lost"


class Verdict(StrEnum):
    """What becomes of a job whose execution ended without success."""

    RESUME = "resume"  # back to the queue, continuing from its checkpoint: a resumption
    RETRY = "retry"  # back to the queue as a new attempt
    FAIL = "fail"  # failed for good
    DISCARD = "discard"  # discarded for good (``discard_on``)
    CANCEL = "cancel"  # cancelled for good: a cancellation was requested


@dataclass(frozen=True, slots=True)
class Decision:
    """A verdict, and the error to record when the decision replaces the job's own
    (``resume_limit``: the job failed because it resumed too often)."""

    verdict: Verdict
    resume_limit: bool = False


#: Recorded on a job taken back after its worker's lease expired, when it is failed for good.
LEASE_EXPIRED_ERROR = "onward.LeaseLost: worker lost: lease expired"
#: Recorded on a job that was running when its worker's process died (taken over at once).
PROCESS_DIED_ERROR = "onward.LeaseLost: worker lost: its process died"
#: Recorded on a job a stopping worker gave back, when that used its last attempt.
STOPPED_ERROR = "onward.LeaseLost: worker stopped before the job finished"


def resume_limit_error(limit: int) -> str:
    """The error of a job taken back after progress once more than ``max_resumptions``."""
    return (
        "onward.ResumeLimitExceeded: worker lost after saving progress;"
        f" resumed more than max_resumptions={limit} times"
    )


def _over_limit(resumptions: int, max_resumptions: int | None) -> bool:
    return max_resumptions is not None and resumptions + 1 > max_resumptions


def after_error(
    *,
    fatal: bool,
    discard: bool,
    retryable: bool,
    progressed: bool,
    resume_after_progress: bool,
    attempts: int,
    max_attempts: int,
    resumptions: int,
    max_resumptions: int | None,
) -> Decision:
    """After ``perform`` raised (API §4, "Errors, in this order").

    ``fatal``: an error no retry can help (``InvalidStep``...), or a class that cannot be
    imported; ``discard``: in ``discard_on``; ``retryable``: in ``retry.on`` (and retrying is
    allowed at all: ``perform_now`` never retries). ``progressed``: this execution saved
    progress; ``attempts`` counts this try.
    """
    if fatal:
        return Decision(Verdict.FAIL)
    if discard:
        return Decision(Verdict.DISCARD)
    if not retryable:
        return Decision(Verdict.FAIL)
    if progressed and resume_after_progress:
        if _over_limit(resumptions, max_resumptions):
            return Decision(Verdict.FAIL, resume_limit=True)
        return Decision(Verdict.RESUME)
    if attempts < max_attempts:
        return Decision(Verdict.RETRY)
    return Decision(Verdict.FAIL)


def after_lost_lease(
    *,
    progressed: bool,
    attempts: int,
    max_attempts: int,
    resumptions: int,
    max_resumptions: int | None,
    cancel_requested: bool = False,
) -> Decision:
    """A running job whose worker died (its lease expired) or stopped before it finished:
    it resumes if that execution saved progress, else the try counts as an attempt, failing
    the job once its attempts are used up. A job with a pending cancellation request is
    cancelled instead: it never runs again by itself."""
    if cancel_requested:
        return Decision(Verdict.CANCEL)
    if progressed:
        if _over_limit(resumptions, max_resumptions):
            return Decision(Verdict.FAIL, resume_limit=True)
        return Decision(Verdict.RESUME)
    if attempts >= max_attempts:
        return Decision(Verdict.FAIL)
    return Decision(Verdict.RETRY)


#: A graceful stop that gives back a running job decides as a lost lease does.
after_release = after_lost_lease


class KeyUse(StrEnum):
    """What an enqueue does with the latest job of its unique key."""

    NEW = "new"  # insert a new job
    EXISTING = "existing"  # that job is live: return it, insert nothing
    TAKE = "take"  # perform_now of a key whose job is enqueued: run that job now
    RERUN = "rerun"  # that job failed: run it again (same id, its own arguments), attempts from zero
    REFUSE = "refuse"  # perform_now of a key whose job is running


#: States in which a job holds its unique key.
LIVE_STATES = frozenset({State.ENQUEUED, State.RUNNING})


def unique_key_use(latest: str | None, *, fresh: bool, now: bool = False) -> KeyUse:
    """``latest``: the state of the newest job with the key (``None``: there is none);
    ``fresh``: ``set(fresh=True)``; ``now``: for ``perform_now`` (which runs an enqueued job
    itself and cannot join a running one)."""
    if latest is None:
        return KeyUse.NEW
    if latest == State.RUNNING:
        return KeyUse.REFUSE if now else KeyUse.EXISTING
    if latest == State.ENQUEUED:
        return KeyUse.TAKE if now else KeyUse.EXISTING
    if latest == State.FAILED and not fresh:
        return KeyUse.RERUN
    return KeyUse.NEW


class Action(StrEnum):
    """What an operator can do to a job (``onward.admin``, the CLI, the dashboard)."""

    RETRY = "retry"
    DISCARD = "discard"
    CANCEL = "cancel"


#: The actions each state allows.
ACTIONS: dict[State, frozenset[Action]] = {
    State.ENQUEUED: frozenset({Action.DISCARD, Action.CANCEL}),
    State.RUNNING: frozenset({Action.CANCEL}),
    State.SUCCEEDED: frozenset(),
    State.FAILED: frozenset({Action.RETRY, Action.DISCARD}),
    State.DISCARDED: frozenset({Action.RETRY}),
    State.CANCELLED: frozenset({Action.RETRY}),
}


class CancelEffect(StrEnum):
    """What a cancellation does to a job, by its state."""

    CANCEL = "cancel"  # enqueued (waiting, scheduled, to retry or resume): cancelled at once
    REQUEST = "request"  # running: the request is recorded; the execution ends at its next safe point
    NONE = "none"  # finished: nothing changes


def cancel_effect(state: str) -> CancelEffect:
    """What cancelling a job in ``state`` does."""
    if state == State.ENQUEUED:
        return CancelEffect.CANCEL
    if state == State.RUNNING:
        return CancelEffect.REQUEST
    return CancelEffect.NONE


def actions_for(state: str) -> frozenset[Action]:
    """The actions a job in ``state`` allows."""
    return ACTIONS.get(State(state), frozenset())


def allows(state: str, action: Action | str) -> bool:
    """Whether a job in ``state`` allows ``action``."""
    return Action(action) in actions_for(state)


def joined(words: tuple[str, ...]) -> str:
    """``("a", "b", "c")`` as ``"a, b or c"``."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def states_allowing(action: Action | str) -> tuple[str, ...]:
    """The states in which ``action`` is allowed (for guarded statements and messages)."""
    wanted = Action(action)
    return tuple(s.value for s, allowed in ACTIONS.items() if wanted in allowed)
