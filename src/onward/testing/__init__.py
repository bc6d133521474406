"""Helpers for testing code that uses Onward: run jobs in-process, force interruptions, and
walk schedules through time."""

from onward.testing.helpers import ANY, drain, interrupt_after_step, interrupt_during_step
from onward.testing.schedules import run_schedules

__all__ = ["ANY", "drain", "interrupt_after_step", "interrupt_during_step", "run_schedules"]
