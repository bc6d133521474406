"""Onward: durable background jobs with continuations and checkpointed steps."""

from onward import iterate, log_events
from onward.batches import Batch, batch, get_batch
from onward.connecting import cancel, connect, get_job
from onward.errors import (
    ConfigurationError,
    InvalidStep,
    JobCancelled,
    JobClassNotFound,
    JobTimeout,
    LeaseLost,
    OnwardError,
    ResumeLimitExceeded,
    SerializationError,
    StoreClosed,
    UnadvanceableCursor,
)
from onward.job import Args, Job, JobHandle
from onward.limits import Throttle
from onward.records import BatchRecord, JobRecord, State, StepRecord
from onward.retry import Retry
from onward.schedules import Schedule, schedule
from onward.steps import Step
from onward.stores.base import Store
from onward.transaction import transaction
from onward.worker import Worker

__version__ = "0.1.0"

log_events.enable()  # one log line per job event (onward.log_events.disable() turns it off)

__all__ = [
    # connecting
    "connect",
    "Store",
    # defining and enqueuing jobs
    "Job",
    "Args",
    "transaction",
    "JobHandle",
    "Retry",
    "Throttle",
    "Step",
    "iterate",
    # fan-in
    "batch",
    "Batch",
    "get_batch",
    "BatchRecord",
    # periodic jobs
    "schedule",
    "Schedule",
    # inspecting
    "get_job",
    "cancel",
    "JobRecord",
    "StepRecord",
    "State",
    # running
    "Worker",
    # errors
    "OnwardError",
    "ConfigurationError",
    "SerializationError",
    "JobClassNotFound",
    "InvalidStep",
    "UnadvanceableCursor",
    "ResumeLimitExceeded",
    "JobCancelled",
    "JobTimeout",
    "LeaseLost",
    "StoreClosed",
]
