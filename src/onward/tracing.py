"""The trace context a job carries from where it was enqueued to where it runs.

Empty unless a tracing integration is turned on (``onward.contrib.otel.enable()``): it sets
:data:`inject`, which returns the context to store with each job being enqueued (a W3C
``traceparent``, and ``tracestate`` when there is one, as JSON text) and may open a producer
span for it. The execution hands the stored context back in its ``started`` event, so the
integration can continue the trace there. With nothing turned on, enqueueing checks one
module attribute.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["inject"]

#: ``inject(queue, job_class, job_id) -> context text or None``, set by a tracing integration.
inject: Callable[[str, str, str], str | None] | None = None
