"""CEL expressions (trigger ``if``, keys, ``match``), compiled once through the ``cel`` library.

Compiling when a function is registered means a typo is reported at start-up, not when
the first event arrives.
"""

from __future__ import annotations

from typing import Any

import cel

from ferryman.errors import InvalidFunctionError


class Expression:
    """A compiled CEL expression and its source text."""

    __slots__ = ("_program", "source")

    def __init__(self, source: str, *, where: str) -> None:
        if not isinstance(source, str) or not source.strip():
            raise InvalidFunctionError(f"{where}: the expression is empty")
        self.source = source
        try:
            self._program = cel.compile(source)
        except (ValueError, RuntimeError) as exc:
            raise InvalidFunctionError(
                f"{where}: {source!r} is not a valid CEL expression ({exc}); "
                'write it like "event.data.amount > 100"'
            ) from None

    def evaluate(self, variables: dict[str, Any]) -> Any:
        return self._program.execute(variables)

    def matches(self, variables: dict[str, Any]) -> bool:
        """Evaluate as a filter: anything but ``true`` (including an error) is no match."""
        try:
            return self.evaluate(variables) is True
        except (ValueError, TypeError, RuntimeError, KeyError):
            return False

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"
