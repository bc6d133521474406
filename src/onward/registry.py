"""Job classes and their import paths: a job is stored as ``package.module:ClassName`` and a
worker imports the class from that path.

A class must be importable by that path in another process: one defined inside a function
(``<locals>``), or in code run by ``python -c`` or from standard input, is refused when
enqueued, with the reason.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from typing import Any

from onward.errors import JobClassNotFound, SerializationError

__all__ = ["job_path", "load_job_class"]

_paths: dict[type, str] = {}
_classes: dict[str, type] = {}
_classes_lock = threading.Lock()

#: Set on ``onward.Job`` and so on every job class; what :func:`load_job_class` checks.
MARKER = "__onward_job__"


def job_path(cls: type) -> str:
    """``module:QualName`` for ``cls``, or ``SerializationError`` if a worker could not import it."""
    try:
        return _paths[cls]
    except KeyError:
        pass
    module = cls.__module__
    if module == "__main__":
        module = _main_module(cls)
    if "<locals>" in cls.__qualname__:
        raise SerializationError(
            f"{cls.__qualname__}: a job class defined inside a function cannot be imported by a worker; "
            "define it at module level"
        )
    path = f"{module}:{cls.__qualname__}"
    _paths[cls] = path
    return path


def _main_module(cls: type) -> str:
    """The name a worker imports the script running as ``__main__`` by, or
    ``SerializationError`` when there is none (``python -c``, standard input, a REPL)."""
    main = sys.modules["__main__"]
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:
        return str(spec.name).removesuffix(".__main__")
    file = getattr(main, "__file__", None)
    if not file or file.startswith("<"):
        source = "python -c" if sys.argv[:1] == ["-c"] else "standard input or an interactive session"
        raise SerializationError(
            f"__main__:{cls.__qualname__}: a job class defined in code run from {source} has no module a"
            " worker could import; define it in a module (a .py file on the worker's import path)"
        )
    return os.path.splitext(os.path.basename(str(file)))[0]


def load_job_class(path: str) -> Any:
    """Import the job class stored as ``module:QualName``; ``JobClassNotFound`` if impossible
    or if it is not an ``onward.Job`` subclass."""
    try:
        return _classes[path]
    except KeyError:
        pass
    module_name, _, qualname = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except Exception as exc:
        raise JobClassNotFound(f"cannot import job class {path}: {type(exc).__name__}: {exc}") from exc
    if not (isinstance(obj, type) and getattr(obj, MARKER, False)):
        raise JobClassNotFound(f"{path} is not an onward.Job subclass")
    with _classes_lock:
        _classes[path] = obj
    return obj
