"""Settings of the test project: a shop whose database comes from ``SHOP_DATABASE_URL``
(``sqlite:////abs/path/db.sqlite3`` or ``postgresql://user@host:port/name``)."""

import os
from urllib.parse import unquote, urlsplit

SECRET_KEY = "only-for-tests"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost"]
USE_TZ = True
TIME_ZONE = "Europe/Paris"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ROOT_URLCONF = "shop_project.urls"
MIDDLEWARE: list[str] = []

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "onward.contrib.django",
    "shop",
]


def _database(url: str) -> dict[str, object]:
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        # Workers write beside the web process: take the write lock at BEGIN, and wait for it.
        options = {"transaction_mode": "IMMEDIATE", "timeout": 20}
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": parts.path[1:], "OPTIONS": options}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "CONN_MAX_AGE": int(os.environ.get("SHOP_CONN_MAX_AGE", "0")),
        "CONN_HEALTH_CHECKS": True,
    }


DATABASES = {"default": _database(os.environ["SHOP_DATABASE_URL"])}

TASKS = {
    "default": {
        "BACKEND": "onward.contrib.django.OnwardTaskBackend",
        "QUEUES": [],  # any queue
    },
    "retrying": {
        "BACKEND": "onward.contrib.django.OnwardTaskBackend",
        "QUEUES": [],
        "OPTIONS": {"RETRY": {"attempts": 3, "backoff": 0}},
    },
    "checked": {
        "BACKEND": "onward.contrib.django.OnwardTaskBackend",
        "QUEUES": ["default", "emails"],
    },
}

TEST_RUNNER = "onward.contrib.django.testing.DiscoverRunner"
