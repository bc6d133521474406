"""Integrations, each imported only by those who use it: Django (``onward.contrib.django``,
whose ``queryset`` module is the ``step.each`` source over QuerySets), Prometheus
(``onward.contrib.prometheus``), OpenTelemetry (``onward.contrib.otel``), and the ``step.each``
source over SQLAlchemy connections (``onward.contrib.sqlalchemy_rows``)."""
