"""Onward for Django: a backend for Django's Tasks framework, ``manage.py onward_worker``,
and ``Job.perform_later`` that joins ``transaction.atomic()``.

::

    INSTALLED_APPS = [..., "onward.contrib.django"]
    TASKS = {"default": {"BACKEND": "onward.contrib.django.OnwardTaskBackend"}}

The backend works with ``django.tasks`` (Django 6.0 and later) and with the ``django-tasks``
backport (earlier Django versions): ``pip install 'onward[django]'``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from onward.contrib.django.backend import OnwardTaskBackend

__all__ = ["OnwardTaskBackend"]


def __getattr__(name: str) -> Any:
    if name == "OnwardTaskBackend":
        from onward.contrib.django.backend import OnwardTaskBackend

        return OnwardTaskBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
