"""Run the Python blocks of one Markdown document in order, as a reader would.

    python run_doc.py DOCUMENT [OLD=NEW ...]

Run in an empty directory (the current one). The blocks share one namespace, so a block may
use what an earlier one defined. A block whose first line is ``# name.py`` (or
``# package/name.py``) is a file: the files of every document (``$DOCS_ALL``, separated by
``os.pathsep``) are written first, so one page may import a module another page shows.
Functions named ``test_*`` that a block defines are called once it has run, with
``onward_store`` (a fresh SQLite store, the default while the test runs) and ``tmp_path``
for the parameters of those names. ``<!-- docs-test: skip REASON -->`` on the line before a
block leaves it out. ``OLD=NEW`` arguments replace text in every block (placeholder URLs).
The names a reader's application would provide (a mailer, a payments client, an ``Import``
model...) come from ``docs_world``.
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import os
import re
import sys
import tempfile
import traceback
import types
from pathlib import Path
from typing import Any

FENCE = re.compile(r"^```(\w*)")
FILE = re.compile(r"^#\s*([\w/]+\.py)\s*$")
SKIP = re.compile(r"^<!--\s*docs-test:\s*skip\b(.*)-->\s*$")


def blocks(path: Path) -> list[tuple[int, str, bool]]:
    """``(line, code, skipped)`` of each ```python block of ``path``."""
    found = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        language, start = match.group(1), i + 1
        skipped = i > 0 and bool(SKIP.match(lines[i - 1].strip()))
        i += 1
        body = []
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        i += 1
        if language == "python":
            found.append((start + 1, "\n".join(body) + "\n", skipped))
    return found


def write_file(name: str, code: str) -> None:
    target = Path(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    for parent in target.parents:
        if parent != Path(".") and not (parent / "__init__.py").exists():
            (parent / "__init__.py").write_text("")
    target.write_text(code, encoding="utf-8")


def write_files(documents: list[Path]) -> None:
    """Every file block of ``documents``; two pages showing different files of one name fail."""
    written: dict[str, tuple[str, str]] = {}
    for document in documents:
        for line, code, skipped in blocks(document):
            match = FILE.match(code.lstrip().splitlines()[0]) if code.strip() else None
            if skipped or match is None:
                continue
            name = match.group(1)
            if name in written and written[name][1] != code:
                raise SystemExit(f"{document}:{line} shows a different {name} than {written[name][0]}")
            written[name] = (f"{document}:{line}", code)
            write_file(name, code)
    importlib.invalidate_caches()


def call_test(fn: Any) -> None:
    import docs_world

    from onward import stores

    docs_world.reset()
    kwargs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        names = inspect.signature(fn).parameters
        if "tmp_path" in names:
            kwargs["tmp_path"] = Path(tmp)
        if "onward_store" in names:
            with stores.connected(f"sqlite:///{Path(tmp) / 'test.sqlite3'}") as store:
                kwargs["onward_store"] = store
                fn(**kwargs)
                return
        fn(**kwargs)


def main() -> int:
    document = Path(sys.argv[1])
    replacements = [arg.split("=", 1) for arg in sys.argv[2:]]
    sys.path.insert(0, os.getcwd())
    import docs_world

    others = [Path(p) for p in os.environ.get("DOCS_ALL", "").split(os.pathsep) if p]
    write_files([*others, document])

    for name in docs_world.__all__:
        setattr(builtins, name, getattr(docs_world, name))
    session = types.ModuleType("docs_session")  # importable, so jobs defined in blocks can run
    sys.modules[session.__name__] = session
    namespace: dict[str, Any] = session.__dict__
    ran = 0
    for line, code, skipped in blocks(document):
        if skipped:
            continue
        for old, new in replacements:
            code = code.replace(old, new)
        where = f"{document}:{line}"
        first = code.lstrip().splitlines()[0] if code.strip() else ""
        file_match = FILE.match(first)
        try:
            if file_match:
                write_file(file_match.group(1), code)  # again, with this run's replacements
                importlib.invalidate_caches()
            else:
                before = set(namespace)
                exec(compile(code, where, "exec"), namespace)
                for name in [n for n in namespace if n not in before and n.startswith("test_")]:
                    if callable(namespace[name]):
                        call_test(namespace[name])
            ran += 1
        except BaseException:
            print(f"\n{where}: this block failed\n{code}", file=sys.stderr)
            traceback.print_exc()
            return 1
    print(f"{document}: {ran} blocks ran")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
