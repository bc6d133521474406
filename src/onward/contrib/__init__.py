"""Integrations, each imported only by those who use it: Django (``onward.contrib.django``),
Prometheus (``onward.contrib.prometheus``) and OpenTelemetry (``onward.contrib.otel``)."""
