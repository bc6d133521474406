"""The Django app ``onward.contrib.django``."""

from __future__ import annotations

from django.apps import AppConfig


class OnwardConfig(AppConfig):
    """Makes ``perform_later`` join ``transaction.atomic()`` (see
    :func:`onward.contrib.django.store.join_atomic`), and the project's store Onward's
    default store unless one was connected before Django started."""

    name = "onward.contrib.django"
    label = "onward"
    verbose_name = "Onward"

    def ready(self) -> None:
        from onward import collecting, connecting
        from onward.contrib.django.backend import project_store
        from onward.contrib.django.store import join_atomic

        collecting.add_joiner(join_atomic)
        if connecting.current() is None:
            connecting.set_default(project_store().as_store())
