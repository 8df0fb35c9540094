"""Finding the user's functions: import a module and collect its ``Ferryman`` apps."""

from __future__ import annotations

import importlib
import os
import sys
import traceback
import types
from pathlib import Path

import ferryman
from ferryman import Ferryman


class ModuleError(ValueError):
    """The module cannot be imported or defines no app; the message says what to do."""


def load_apps(module: str) -> list[Ferryman]:
    return load_module(module)[1]


def load_module(module: str) -> tuple[types.ModuleType, list[Ferryman]]:
    """Import ``module`` and return it with the Ferryman apps it defines."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module != exc.name and not module.startswith(exc.name + "."):
            raise ModuleError(
                f"importing {module!r} failed: {exc} (at {_where(exc)}); is {exc.name!r} installed?"
            ) from None
        raise ModuleError(
            f"cannot import {module!r} ({exc}); give a dotted module path importable from "
            f"{os.getcwd()}, like 'examples.bookings'"
        ) from None
    except SyntaxError as exc:
        raise ModuleError(
            f"{module!r} has a syntax error: {exc.msg} ({exc.filename}, line {exc.lineno})"
            + (f"\n    {exc.text.strip()}" if exc.text else "")
        ) from None
    except Exception as exc:
        # A mistake in the user's module (an invalid function declaration, a failing
        # top-level call): their message and where, not our import machinery's traceback.
        raise ModuleError(
            f"importing {module!r} failed: {type(exc).__name__}: {exc} (at {_where(exc)})"
        ) from None
    apps = [v for v in vars(mod).values() if isinstance(v, Ferryman)]
    if not apps:
        raise ModuleError(
            f"module {module!r} defines no ferryman.Ferryman app; add "
            '`fm = ferryman.Ferryman(app_id="my-app")` and decorate functions with @fm.function'
        )
    return mod, apps


def _where(exc: BaseException) -> str:
    """``file:line`` of the deepest frame in the user's code (not in Python's import
    machinery, nor in the SDK that raised the error)."""
    sdk = str(Path(ferryman.__file__).parent)
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if "importlib" not in f.filename and not f.filename.startswith(sdk)
    ]
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "import"
