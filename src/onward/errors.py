"""The exceptions Onward raises, and the internal interrupt signal.

Every public error derives from :class:`OnwardError`. Their ``__module__`` is set to
``onward`` so a stored traceback names them as users import them
(``onward.JobClassNotFound: ...``).
"""

from __future__ import annotations

import re
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


class StoreFileError(OnwardError):
    """The store's file cannot be used as it is: damaged, full, unwritable, deleted or
    replaced. The message names the file and what to do."""


class StoreFileGone(StoreClosed, StoreFileError):
    """The store's file was deleted or replaced while this process had it open: the store
    is closed, and a worker using it stops."""


StoreClosed.__module__ = "onward"
StoreFileError.__module__ = "onward"
StoreFileGone.__module__ = "onward"


#: The most of an error Onward stores: a traceback past it keeps its head and its tail.
MAX_ERROR_CHARS = 64 * 1024
#: The most of an exception's message the stored error keeps (head and tail).
MAX_MESSAGE_CHARS = 16 * 1024
#: The most of an error a log line or a listing shows (:func:`error_summary`).
MAX_SUMMARY_CHARS = 1000

_EXCEPTION_LINE = re.compile(r"[A-Za-z_][\w.]*(:|$)")


def cut_middle(text: str, limit: int) -> str:
    """``text`` if it is at most ``limit`` characters, else its head and tail around a note
    saying how much was cut."""
    if len(text) <= limit:
        return text
    keep = max(limit - 60, 2) // 2
    return f"{text[:keep]}\n... [{len(text) - 2 * keep:,} characters cut] ...\n{text[-keep:]}"


def message_of(exc: BaseException) -> str:
    """``str(exc)``, or a placeholder naming what went wrong when its ``__str__`` raises."""
    try:
        message = str(exc)
    except Exception as inner:
        return f"<str() of this {type(exc).__name__} raised {type(inner).__name__}>"
    return message if isinstance(message, str) else repr(message)


def describe(exc: BaseException) -> str:
    """``exc``'s message on one line (line breaks and indents become single spaces), capped:
    for log lines, which must stay one line per event."""
    return cut_middle(" ".join(message_of(exc).split()), MAX_SUMMARY_CHARS).replace("\n", " ")


def format_error(exc: BaseException) -> str:
    """The traceback of ``exc``, its last line ``module.Type: message``: never raises (a
    ``__str__`` that raises gives a placeholder) and never longer than ``MAX_ERROR_CHARS``
    (a long traceback or message keeps its head and tail)."""
    cls = type(exc)
    try:
        te = traceback.TracebackException.from_exception(exc)
        text = "".join(te.format())
        only = "".join(te.format_exception_only())
    except Exception:
        text, only = "", ""
    if text.endswith(only):
        text = text[: -len(only)]
    message = cut_middle(message_of(exc), MAX_MESSAGE_CHARS)
    last = f"{cls.__module__}.{cls.__qualname__}" + (f": {message}" if message else "")
    return cut_middle(text, MAX_ERROR_CHARS - len(last)) + last


def error_summary(error: str | None) -> str:
    """One line for a stored error: its ``module.Type: message`` part (the message's line
    breaks shown as ``\\n``), at most ``MAX_SUMMARY_CHARS`` characters. For log lines and
    listings, where one event is one line."""
    if not error:
        return ""
    lines = error.rstrip().splitlines()
    start = _exception_start(lines)
    summary = "\\n".join(line for line in lines[start:] if line.strip())
    return cut_middle(summary, MAX_SUMMARY_CHARS).replace("\n", " ")


def _exception_start(lines: list[str]) -> int:
    """Where the ``module.Type: message`` part of a formatted traceback begins: after the
    last frame (``  File ...`` and its indented source lines), at a line naming a type."""
    frames = [i for i, line in enumerate(lines) if line.startswith('  File "')]
    for frame in reversed(frames):
        i = frame + 1
        while i < len(lines) and lines[i].startswith("    "):
            i += 1
        if i < len(lines) and _EXCEPTION_LINE.match(lines[i]):
            return i
    for i, line in enumerate(lines):
        if _EXCEPTION_LINE.match(line) and not line.startswith("Traceback"):
            return i
    return max(len(lines) - 1, 0)


class Interrupt(BaseException):
    """Ends an execution so that the job resumes later from its saved progress.

    A ``BaseException`` so that user ``except Exception`` blocks cannot swallow it. It is
    never a failure: it uses no retry attempt and runs no continuation.
    """

    @staticmethod
    def found_in(exc: BaseException) -> Interrupt | None:
        """The Interrupt carried by ``exc``, unwrapping exception groups (asyncio.TaskGroup)."""
        if isinstance(exc, Interrupt):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                found = Interrupt.found_in(inner)
                if found is not None:
                    return found
        return None

    def __init__(self, reason: str, where: str = "") -> None:
        super().__init__(reason, where)
        self.reason = reason
        self.where = where
