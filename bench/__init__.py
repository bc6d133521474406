"""Onward's benchmarks: ``python -m bench`` (or ``./dev bench``) runs the suite; see
``docs/benchmarks.md`` for the figures and ``bench/peers/`` for the comparison with other
job queues."""
