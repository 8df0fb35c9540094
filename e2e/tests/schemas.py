"""kubeconform schemas made from the live API server's OpenAPI (no download from GitHub).

For each kind we need, write ``<kind>-<group>-<version>.json`` (kubeconform's naming) with
the definitions it reaches inlined, made strict: an object with properties accepts no
other keys, as the API server's own field validation would (kubeconform -strict).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

INT_OR_STRING = {"oneOf": [{"type": "string"}, {"type": "integer"}]}
QUANTITY = {"oneOf": [{"type": "string"}, {"type": "number"}]}


def _file_name(group: str, version: str, kind: str) -> str:
    suffix = version if not group else f"{group.split('.', maxsplit=1)[0]}-{version}"
    return f"{kind.lower()}-{suffix}.json"


def _fix(node: Any) -> Any:
    if isinstance(node, dict):
        if node.get("format") == "int-or-string" or node.get("x-kubernetes-int-or-string") is True:
            return dict(INT_OR_STRING)
        out = {k: _fix(v) for k, v in node.items()}
        if (
            out.get("type") == "object"
            and "properties" in out
            and "additionalProperties" not in out
            and out.get("x-kubernetes-preserve-unknown-fields") is not True
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_fix(v) for v in node]
    return node


def _reachable(defs: dict[str, Any], root: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    todo = [root]
    while todo:
        name = todo.pop()
        if name in seen or name not in defs:
            continue
        seen[name] = defs[name]
        stack = [defs[name]]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                ref = node.get("$ref")
                if isinstance(ref, str) and ref.startswith("#/definitions/"):
                    todo.append(ref.removeprefix("#/definitions/"))
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
    return seen


def write_schemas(openapi_v2: dict[str, Any], out: Path) -> int:
    defs = copy.deepcopy(openapi_v2["definitions"])
    defs["io.k8s.apimachinery.pkg.api.resource.Quantity"] = dict(QUANTITY)
    defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] = dict(INT_OR_STRING)
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    for name, definition in defs.items():
        for gvk in definition.get("x-kubernetes-group-version-kind", []):
            schema = {
                "$schema": "http://json-schema.org/draft-07/schema#",
                "$ref": f"#/definitions/{name}",
                "definitions": _fix(_reachable(defs, name)),
            }
            path = out / _file_name(gvk.get("group", ""), gvk["version"], gvk["kind"])
            path.write_text(json.dumps(schema))
            count += 1
    return count
