"""The shop's Django tasks."""

import os

try:
    from django.tasks import task
except ImportError:  # Django before 6.0: the django-tasks backport
    from django_tasks import task

from django.db import connection

from shop.models import Event, Order


@task
def add(a, b):
    return a + b


@task
def record(label):
    """Record ``label`` through the ORM, from the worker."""
    Event.objects.create(label=label)
    return label


@task
def record_pid(label):
    Event.objects.create(label=f"{label}:{os.getpid()}")


@task
def fail(message):
    raise ValueError(message)


@task
def unserializable():
    return {1, 2}


@task
async def arecord(label):
    await Event.objects.acreate(label=label)
    return await Event.objects.filter(label=label).acount()


@task
async def afail(message):
    raise KeyError(message)


@task(takes_context=True)
def whoami(context, label):
    result = context.task_result
    return {
        "label": label,
        "id": result.id,
        "attempt": context.attempt,
        "status": str(result.status),
        "worker_ids": result.worker_ids,
    }


@task(takes_context=True)
def flaky(context, label):
    """Fails until its third try (run it on the backend that retries)."""
    Event.objects.create(label=f"{label}:{context.attempt}")
    if context.attempt < 3:
        raise ConnectionError(f"{label}: try {context.attempt} failed")
    return context.attempt


@task
def send_receipt(order_id):
    Order.objects.filter(pk=order_id).update(receipt_sent=True)
    return order_id


@task
def on_fresh_connection(label):
    """Whether this try started without a database connection (the worker closed the last one)."""
    fresh = connection.connection is None
    Event.objects.create(label=label)
    return fresh
