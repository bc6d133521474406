"""Every Python block of the README and of docs/ runs, in order, as a reader would run it
(see run_doc.py): no example can rot unnoticed. Placeholder PostgreSQL URLs point at a fresh
test schema."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import pg

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ALL_DOCUMENTS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "examples").rglob("*.md")])
PLACEHOLDER_URL = re.compile(r"postgres(?:ql)?://[^\s\"')]*db\.internal[^\s\"')]*")

sys.path.insert(0, str(HERE))
from run_doc import blocks  # noqa: E402


def python_of(document: Path) -> str:
    return "".join(code for _, code, skipped in blocks(document) if not skipped)


DOCUMENTS = [d for d in ALL_DOCUMENTS if python_of(d)]


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from pg.fresh_database(request)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_python_block_runs(document: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    code = python_of(document)
    env = {k: v for k, v in os.environ.items() if k != "ONWARD_DATABASE_URL"}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ROOT / "src"), env.get("PYTHONPATH", "")])
    env["DOCS_ALL"] = os.pathsep.join(str(d) for d in ALL_DOCUMENTS)
    args = [sys.executable, str(HERE / "run_doc.py"), str(document)]
    if "postgres" in code or "DATABASE_URL" in code:
        url = request.getfixturevalue("pg_url")
        env["DOCS_DATABASE_URL"] = url
        args += [f"{placeholder}={url}" for placeholder in sorted(set(PLACEHOLDER_URL.findall(code)))]
    result = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
