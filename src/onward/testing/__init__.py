"""Helpers for testing code that uses Onward: run jobs in-process and force interruptions."""

from onward.testing.helpers import ANY, drain, interrupt_after_step, interrupt_during_step

__all__ = ["ANY", "drain", "interrupt_after_step", "interrupt_during_step"]
