"""Integrations, each imported only by those who use it: Django (``onward.contrib.django``),
Prometheus (``onward.contrib.prometheus``), OpenTelemetry (``onward.contrib.otel``), and the
``step.each`` sources over SQLAlchemy connections (``onward.contrib.sqlalchemy_rows``) and
Django QuerySets (``onward.contrib.django_queryset``)."""
