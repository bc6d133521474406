"""Runs test code inside the test project, one request at a time.

A test sends ``{"code": ..., "values": {...}}`` as one JSON line on stdin; the code runs with
Django set up, with the prelude's names and the values as variables, and sets ``out``, which
comes back as one JSON line on the original stdout (anything the code prints goes to
stderr). Starting Django once per test module instead of once per check keeps the Django
tests quick.
"""

import json
import os
import sys
import traceback

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop_project.settings")

import django

django.setup()

PRELUDE = """
import asyncio, json, os, time, uuid
from datetime import UTC, datetime, timedelta
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone
import onward
from onward.contrib.django import store as onward_store
from onward.contrib.django.compat import TaskResultDoesNotExist, task_backends
from onward.stores.base import JobFilter
from shop.jobs import ImportEvents
from shop.models import Event, Order
from shop.tasks import *

default_backend = task_backends["default"]


def describe(result):
    finished = result.status in ("SUCCESSFUL", "FAILED")
    return {
        "id": result.id,
        "status": str(result.status),
        "task": result.task.module_path,
        "priority": result.task.priority,
        "queue_name": result.task.queue_name,
        "run_after": result.task.run_after,
        "backend": result.backend,
        "args": result.args,
        "kwargs": result.kwargs,
        "attempts": result.attempts,
        "worker_ids": result.worker_ids,
        "errors": [(e.exception_class_path, e.traceback) for e in result.errors],
        "exception_classes": [e.exception_class.__name__ for e in result.errors],
        "return_value": result.return_value if result.status == "SUCCESSFUL" else None,
        "enqueued_at": result.enqueued_at,
        "started_at": result.started_at,
        "finished_at": result.finished_at if finished else None,
        "last_attempted_at": result.last_attempted_at,
    }


def wait(ids, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        results = [default_backend.get_result(i) for i in ids]
        if all(r.is_finished for r in results) or time.monotonic() > deadline:
            return [describe(r) for r in results]
        time.sleep(0.05)


def labels(prefix):
    return list(Event.objects.filter(label__startswith=prefix).order_by("id").values_list("label", flat=True))
"""


def main() -> None:
    replies = sys.stdout
    sys.stdout = sys.stderr
    prelude: dict = {}
    exec(PRELUDE, prelude)
    for line in sys.stdin:
        request = json.loads(line)
        namespace = {**prelude, **(request.get("values") or {})}
        try:
            exec(request["code"], namespace)
            reply = {"out": namespace.get("out")}
        except BaseException as exc:
            reply = {"error": "".join(traceback.format_exception(exc))}
        replies.write(json.dumps(reply, default=str) + "\n")
        replies.flush()


if __name__ == "__main__":
    main()
