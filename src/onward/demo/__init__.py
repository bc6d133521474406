"""``onward demo``: the seed document's workflows, run end to end on the embedded store.

:mod:`onward.demo.jobs` defines the jobs (a welcome-email chain, a bulk email job, an
import), :mod:`onward.demo.app` the application database they write to, and
:mod:`onward.demo.runner` starts real worker processes, stops one gracefully and kills
another mid-job, then checks from the application's own records that every item was
processed, and how many twice.
"""
