"""The JSON API under /api/, on each store: the same data the pages show, and the actions."""

from __future__ import annotations

from datetime import datetime

import dashboard_jobs as dj
from dashboard_helpers import TestClient, running_worker, start_stepped

import onward
from onward.testing import drain


def test_overview_counts_throughput_and_running_steps(store: onward.Store, client: TestClient) -> None:
    dj.Quick.perform_later(1)
    dj.Boom.perform_later("x")
    drain(queues=["default"])
    with running_worker(store, ["steps"]):
        job_id = start_stepped(store, n=4, saved=1)
        data = client.get("/api/overview").json()

    assert data["totals"] == {"enqueued": 0, "running": 1, "succeeded": 1, "failed": 1, "discarded": 0, "cancelled": 0}
    queues = {q["queue"]: q for q in data["queues"]}
    assert queues["default"]["counts"]["succeeded"] == 1
    assert queues["default"]["total"] == 2
    assert queues["steps"]["counts"]["running"] == 1
    assert len(data["per_minute"]) == 60
    last = data["per_minute"][-1]
    assert (last["succeeded"], last["failed"], last["discarded"], last["total"]) == (1, 1, 0, 2)
    datetime.fromisoformat(last["start"])
    [running] = data["running"]
    assert running["job"]["id"] == job_id
    assert running["job"]["state"] == "running"
    step = running["step"]
    assert (step["name"], step["status"], step["cursor"]) == ("process", "running", 1)
    assert (step["advanced"], step["total"]) == (1, 4)
    assert step["fraction"] == 0.25
    assert step["rate"] > 0
    assert step["eta"] is not None
    assert client.get("/api/overview?minutes=5").json()["per_minute"].__len__() == 5


def test_jobs_filters_and_keyset_paging(store: onward.Store, client: TestClient) -> None:
    later = [dj.Later.set(wait=3600).perform_later().id for _ in range(5)]
    quick = dj.Quick.perform_later().id
    drain(queues=["default"])

    page = client.get("/api/jobs", params={"queue": "later", "limit": 2}).json()
    assert [j["id"] for j in page["jobs"]] == [later[4], later[3]]
    page2 = client.get("/api/jobs", params={"queue": "later", "limit": 2, "before": page["next"]}).json()
    assert [j["id"] for j in page2["jobs"]] == [later[2], later[1]]
    page3 = client.get("/api/jobs", params={"queue": "later", "limit": 2, "before": page2["next"]}).json()
    assert [j["id"] for j in page3["jobs"]] == [later[0]]
    assert page3["next"] is None

    assert [j["id"] for j in client.get("/api/jobs?state=succeeded").json()["jobs"]] == [quick]
    assert [j["id"] for j in client.get("/api/jobs?class=dashboard_jobs:Quick").json()["jobs"]] == [quick]
    assert [j["id"] for j in client.get(f"/api/jobs?search={later[2]}").json()["jobs"]] == [later[2]]
    record = client.get(f"/api/jobs?search={quick}").json()["jobs"][0]
    assert record["job_class"] == "dashboard_jobs:Quick"
    assert record["state"] == "succeeded"
    datetime.fromisoformat(record["finished_at"])

    for bad in ("state=bogus", "limit=0", "limit=x", "limit=100000"):
        response = client.get(f"/api/jobs?{bad}")
        assert response.status_code == 400, bad
        assert response.json()["error"]


def test_job_detail_has_record_steps_and_tree(store: onward.Store, client: TestClient) -> None:
    dj.THROTTLE.open()
    parent = dj.Parent.perform_later().id
    stepped = dj.Stepped.perform_later(3).id
    drain()

    data = client.get(f"/api/jobs/{stepped}").json()
    assert data["job"]["id"] == stepped
    assert data["job"]["args"] == [3]
    assert data["job"]["result"] == {"processed": 3}
    assert [s["name"] for s in data["steps"]] == ["prepare", "process", "finish"]
    process = data["steps"][1]
    assert (process["status"], process["advanced"], process["total"], process["fraction"]) == ("completed", 3, 3, 1.0)
    assert process["eta"] is None  # finished

    child = store.get(parent).children[0]
    tree = client.get(f"/api/jobs/{child}").json()["tree"]
    assert tree["id"] == parent
    assert [c["job_class"] for c in tree["children"]] == ["dashboard_jobs:Child", "dashboard_jobs:Child"]
    assert tree["children"][0]["children"][0]["job_class"] == "dashboard_jobs:Grandchild"

    missing = client.get("/api/jobs/not-a-job")
    assert missing.status_code == 404
    assert "no job with id" in missing.json()["error"]


def test_actions_need_the_csrf_token_then_retry_and_discard(store: onward.Store, client: TestClient) -> None:
    failed = dj.Boom.perform_later("x").id
    drain()

    refused = client.post(f"/api/jobs/{failed}/retry")
    assert refused.status_code == 403
    assert "X-CSRF-Token" in refused.json()["error"]
    assert store.get(failed).state == "failed"

    token = client.get("/api/csrf").json()["csrf_token"]  # and the cookie, kept by the client
    headers = {"X-CSRF-Token": token}
    retried = client.post(f"/api/jobs/{failed}/retry", headers=headers)
    assert retried.status_code == 200
    assert retried.json()["job"]["state"] == "enqueued"
    assert store.get(failed).state == "enqueued"

    again = client.post(f"/api/jobs/{failed}/retry", headers=headers)
    assert again.status_code == 409
    assert "only failed, discarded or cancelled jobs can be retried" in again.json()["error"]

    discarded = client.post(f"/api/jobs/{failed}/discard", headers=headers)
    assert discarded.status_code == 200
    assert discarded.json()["job"]["state"] == "discarded"
    assert client.post(f"/api/jobs/{failed}/discard", headers=headers).status_code == 409
    assert client.post("/api/jobs/not-a-job/discard", headers=headers).status_code == 404
    assert client.get(f"/api/jobs/{failed}/retry").status_code == 405
