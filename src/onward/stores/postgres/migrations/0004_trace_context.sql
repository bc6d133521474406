-- Onward 4: the trace context of where a job was enqueued (W3C traceparent, as JSON text),
-- so that its execution continues that trace (onward.contrib.otel).
ALTER TABLE onward_jobs ADD COLUMN trace_context text;
