"""Finding the user's functions: import a module and collect its ``Ferryman`` apps."""

from __future__ import annotations

import importlib
import os
import sys
import types

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
        raise ModuleError(
            f"cannot import {module!r} ({exc}); give a dotted module path importable from "
            f"{os.getcwd()}, like 'examples.bookings'"
        ) from None
    apps = [v for v in vars(mod).values() if isinstance(v, Ferryman)]
    if not apps:
        raise ModuleError(
            f"module {module!r} defines no ferryman.Ferryman app; add "
            '`fm = ferryman.Ferryman(app_id="my-app")` and decorate functions with @fm.function'
        )
    return mod, apps
