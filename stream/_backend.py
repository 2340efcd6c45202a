"""One switch chooses the compiled core or its pure-Python twin, for every kernel.

CUSTOMS_STREAM_PUREPYTHON=1 selects the twins (as msgpack's MSGPACK_PUREPYTHON does). Otherwise the
compiled module is used when it was built; when it is missing the twin is used and
``BACKENDS[name]`` says so, which the guard test in tests/ turns into a failure.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType

PURE_PYTHON = os.environ.get("CUSTOMS_STREAM_PUREPYTHON", "") not in ("", "0")

BACKENDS: dict[str, str] = {}


def backend(name: str) -> str:
    """Which backend kernel ``name`` ("assess", "classify") runs on: "compiled" or "python"."""
    return BACKENDS[name]


def backend_of(module: ModuleType) -> str:
    """"python" for a twin (its module name ends in ``_py``), else "compiled"."""
    return "python" if module.__name__.endswith("_py") else "compiled"


def load_kernel(name: str, compiled: str, twin: str) -> ModuleType:
    """Import the compiled module ``compiled`` unless pure-Python mode is on; else ``twin``."""
    if not PURE_PYTHON:
        try:
            module = importlib.import_module(compiled)
        except ImportError:
            pass
        else:
            BACKENDS[name] = "compiled"
            return module
    BACKENDS[name] = "python"
    return importlib.import_module(twin)
