"""Imported by a benchmark worker (``--import bench.otel_on``): traces every job with the
OpenTelemetry SDK, spans batched to an exporter that drops them, as a production setup
would batch them to a collector."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from onward.contrib import otel


class _Dropped(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(_Dropped()))
otel.enable(provider)
