"""The code in ``docs/sdk.md`` runs: its blocks are executed in order, then its tests."""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parents[2] / "docs" / "sdk.md"


def load_doc_module() -> dict[str, Any]:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert len(blocks) >= 8, "docs/sdk.md lost its examples"
    module = types.ModuleType("docs_sdk")  # a real module, so decorators see __name__
    exec(compile("\n".join(blocks), str(DOC), "exec"), module.__dict__)
    return module.__dict__


async def test_every_test_in_the_sdk_guide_passes() -> None:
    namespace = load_doc_module()
    tests = [fn for name, fn in namespace.items() if name.startswith("test_")]

    assert len(tests) == 5
    for test in tests:
        await test()
