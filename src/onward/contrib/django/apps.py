"""The Django app ``onward.contrib.django``."""

from __future__ import annotations

from django.apps import AppConfig


class OnwardConfig(AppConfig):
    """Makes the project's store Onward's default and lets ``perform_later`` join
    ``transaction.atomic()`` (see :func:`onward.contrib.django.store.install`)."""

    name = "onward.contrib.django"
    label = "onward"
    verbose_name = "Onward"

    def ready(self) -> None:
        from onward.contrib.django import store

        store.install()
