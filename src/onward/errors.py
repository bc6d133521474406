"""The exceptions Onward raises, and the internal interrupt signal.

Every public error derives from :class:`OnwardError`. Their ``__module__`` is set to
``onward`` so a stored traceback names them as users import them
(``onward.JobClassNotFound: ...``).
"""

from __future__ import annotations

import traceback


class OnwardError(Exception):
    """Base class of every error Onward raises."""


class ConfigurationError(OnwardError):
    """A store URL or setting is wrong, or the store cannot be reached."""


class SerializationError(OnwardError, TypeError):
    """A value cannot be stored as JSON; the message names the offending path."""


class JobClassNotFound(OnwardError):
    """A stored job names a class that cannot be imported."""


class InvalidStep(OnwardError):
    """A step was declared or reached in a way the step rules forbid."""


class UnadvanceableCursor(OnwardError):
    """``Step.advance`` was called on a cursor that has no successor (not an int)."""


class ResumeLimitExceeded(OnwardError):
    """A job was interrupted or resumed more than its ``max_resumptions``."""


class JobCancelled(OnwardError):
    """Raised by ``perform_now`` when its job was cancelled while it ran (the record is
    ``cancelled``, its progress kept)."""


class JobTimeout(OnwardError):
    """An execution ran longer than its job's ``timeout`` and was abandoned."""


class LeaseLost(OnwardError):
    """This execution no longer owns its job: the lease expired and was taken back.

    Raised by a store when a guarded write finds that the job is no longer running under
    this execution's lease token. The execution stops without writing anything more.
    """


for _cls in (
    OnwardError,
    ConfigurationError,
    SerializationError,
    JobClassNotFound,
    InvalidStep,
    UnadvanceableCursor,
    ResumeLimitExceeded,
    JobCancelled,
    JobTimeout,
    LeaseLost,
):
    _cls.__module__ = "onward"

#: Errors that fail a job at once: neither retrying nor resuming can help.
FATAL_ERRORS: tuple[type[BaseException], ...] = (
    InvalidStep,
    UnadvanceableCursor,
    ResumeLimitExceeded,
    SerializationError,
    JobClassNotFound,
)


class StoreClosed(OnwardError):
    """The store was closed; nothing more can be done with it."""


StoreClosed.__module__ = "onward"


def format_error(exc: BaseException) -> str:
    """The traceback of ``exc``, its last line ``module.Type: message``."""
    te = traceback.TracebackException.from_exception(exc)
    text = "".join(te.format())
    only = "".join(te.format_exception_only())
    if text.endswith(only):
        text = text[: -len(only)]
    cls = type(exc)
    message = str(exc)
    last = f"{cls.__module__}.{cls.__qualname__}" + (f": {message}" if message else "")
    return text + last


class Interrupt(BaseException):
    """Ends an execution so that the job resumes later from its saved progress.

    A ``BaseException`` so that user ``except Exception`` blocks cannot swallow it. It is
    never a failure: it uses no retry attempt and runs no continuation.
    """

    def __init__(self, reason: str, where: str = "") -> None:
        super().__init__(reason, where)
        self.reason = reason
        self.where = where
