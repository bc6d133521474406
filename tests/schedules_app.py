"""Schedules declared by worker processes in the tests: ``$ONWARD_TEST_SCHEDULES`` holds a
JSON list of ``{"key", "job", "every" | "cron", ...}`` objects (the other keys are passed
to ``onward.schedule``). Imported with ``--import schedules_app``; never by the test process."""

from __future__ import annotations

import json
import os

import jobs_schedules
import onward

for spec in json.loads(os.environ.get("ONWARD_TEST_SCHEDULES", "[]")):
    options = dict(spec)
    key = options.pop("key")
    job = getattr(jobs_schedules, options.pop("job"))
    if "args" in options:
        options["args"] = tuple(options["args"])
    onward.schedule(key, job, **options)
