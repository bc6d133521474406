"""examples/django runs as its README says: migrate, an order placed through its view, a
burst of ``onward_worker``, its tests, and its ASGI application with the dashboard."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "django"
SRC = Path(__file__).resolve().parents[2] / "src"


def test_the_example_shop(tmp_path: Path) -> None:
    pytest.importorskip("starlette")
    shop = tmp_path / "shop"
    shutil.copytree(EXAMPLE, shop, ignore=shutil.ignore_patterns("db.*", "__pycache__"))
    env = {k: v for k, v in os.environ.items() if k not in ("ONWARD_DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])

    def manage(*args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=shop, env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, f"manage.py {args[0]}:\n{proc.stdout}\n{proc.stderr}"
        return proc

    def shell(code: str) -> dict[str, object]:
        out = manage("shell", "-v", "0", "-c", code).stdout
        return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]

    manage("migrate", "-v", "0")
    placed = shell(
        """
import json
from django.test import Client
from shop.jobs import ImportOrders
placed = Client().post("/orders/", {"email": "ada@example.com"}).json()
placed["import"] = ImportOrders.perform_later([f"user{i}@example.com" for i in range(2500)]).id
print(json.dumps(placed))
"""
    )
    worker = manage("onward_worker", "--burst")
    assert "Order 1 is on its way." in worker.stdout  # the console email backend
    checked = shell(
        f"""
import json, onward
from django.test import Client
from starlette.testclient import TestClient
from shop.models import Order
from shop_project.asgi import application
web = TestClient(application, base_url="http://127.0.0.1")
job = onward.get_job({placed["import"]!r})
print(json.dumps({{
    "task": Client().get("/tasks/{placed["task"]}/").json(),
    "orders": Order.objects.count(),
    "import": [job.state, [j.job_class for j in map(onward.get_job, job.children)]],
    "dashboard": [web.get("/onward/").status_code, "Onward" in web.get("/onward/").text],
    "django": web.post("/orders/", data={{"email": "grace@example.com"}}).status_code,
}}))
"""
    )
    assert checked["task"] == {"status": "SUCCESSFUL", "attempts": 1, "return_value": 1, "errors": []}
    assert checked["orders"] == 2501
    assert checked["import"] == [
        "succeeded",
        ["onward.contrib.django.jobs:RunTaskWith3AttemptsEvery5s", "shop.jobs:FollowUp"],
    ]
    assert checked["dashboard"] == [200, True]
    assert checked["django"] == 200
    assert (shop / "db.onward.sqlite3").exists()
    assert "OK" in manage("test", "shop").stderr
