"""Settings of the example shop: Django's Tasks framework with Onward as its backend."""

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "example-only-do-not-deploy"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ROOT_URLCONF = "shop_project.urls"
MIDDLEWARE: list[str] = []

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "onward.contrib.django",
    "shop",
]

TASKS = {
    "default": {
        "BACKEND": "onward.contrib.django.OnwardTaskBackend",
        "QUEUES": ["default", "emails"],  # Django's: the queues tasks may name ([] = any)
        "OPTIONS": {
            "RETRY": {"attempts": 3, "backoff": 5},  # default: tried once
            # "database_url": "postgresql://shop@db.internal:5432/shop",  # default: follow DATABASES["default"]
        },
    },
}

# SQLite: Onward keeps its jobs in db.onward.sqlite3, beside Django's db.sqlite3. The worker
# writes to db.sqlite3 beside the web process: take the write lock at BEGIN, and wait for it.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "db.sqlite3",
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
    }
}

# PostgreSQL: Onward uses the same database, and enqueues inside atomic() join the transaction.
# DATABASES = {
#     "default": {
#         "ENGINE": "django.db.backends.postgresql",
#         "NAME": "shop",
#         "USER": "shop",
#         "HOST": "127.0.0.1",
#         "PORT": "5432",
#     }
# }

EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"  # receipts are printed by the worker
TEST_RUNNER = "onward.contrib.django.testing.DiscoverRunner"
