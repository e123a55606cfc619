"""TikTok's own OpenAPI files for the Marketing endpoints they cover (`openapi/`, copied from TikTok's SDK, §12).

The sandbox checks requests against them (required fields, enum values under `x-open-enum`) before its own rules,
so a request the vendored spec refuses is refused here too. The files' 200 schema is only the generic envelope
(`data: {}`); the real answer fields are named by `x-open-rules.response_rule`, which `response_fields` exposes for
the tests that check the sandbox's answers. The spec declares `Access-Token` as a query parameter; it is sent as a
header (§1), so that parameter is not checked here.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml

SPEC_DIR = Path(__file__).resolve().parent / "openapi"
API_PREFIX = "/open_api/v1.3"
IGNORED_PARAMETERS = {"Access-Token"}


@cache
def operations() -> dict[tuple[str, str], dict]:
    """(METHOD, full path) → the operation object, for every vendored file."""
    found = {}
    for spec_file in sorted(SPEC_DIR.glob("*.yml")):
        spec = yaml.safe_load(spec_file.read_text())
        for path, methods in spec["paths"].items():
            for method, operation in methods.items():
                found[(method.upper(), API_PREFIX + path)] = operation
    return found


def covers(method: str, path: str) -> bool:
    return (method, path) in operations()


def _enum(schema: dict) -> list[str]:
    return [e["key"] for e in (schema.get("x-open-enum") or {}).get("enums", []) if e.get("is_valid", True)]


def _fields(operation: dict) -> dict[str, tuple[bool, dict]]:
    """name → (required, schema) of the operation's query parameters and body properties."""
    fields = {}
    for parameter in operation.get("parameters", []):
        if parameter["name"] not in IGNORED_PARAMETERS:
            fields[parameter["name"]] = (bool(parameter.get("required")), parameter.get("schema") or {})
    for content in (operation.get("requestBody") or {}).get("content", {}).values():
        schema = content.get("schema") or {}
        required = set(schema.get("required") or [])
        for name, prop in (schema.get("properties") or {}).items():
            fields[name] = (name in required, prop)
    return fields


def request_problems(method: str, path: str, values: dict[str, Any]) -> list[str]:
    """What the vendored spec refuses in a request (empty if the spec does not cover the path)."""
    operation = operations().get((method, path))
    if operation is None:
        return []
    problems = []
    for name, (required, schema) in _fields(operation).items():
        value = values.get(name)
        if value is None or value == "" or value == b"" or value == []:
            if required:
                problems.append(f"{name} is required")
            continue
        allowed = _enum(schema)
        if allowed and isinstance(value, str | bytes):
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
            if text not in allowed:
                problems.append(f"{name} must be one of {', '.join(allowed)}")
    return problems


def enum_values(method: str, path: str, name: str) -> list[str]:
    operation = operations()[(method, path)]
    return _enum(_fields(operation)[name][1])


def envelope_schema(method: str, path: str) -> dict:
    """The operation's HTTP 200 JSON schema (the generic envelope) as JSON Schema."""
    schema = operations()[(method, path)]["responses"]["200"]["content"]["application/json"]["schema"]
    return _json_schema(schema)


def _json_schema(schema: Any) -> Any:
    if isinstance(schema, dict):
        out = {k: _json_schema(v) for k, v in schema.items() if not k.startswith("x-") and k != "nullable"}
        if schema.get("nullable") and "type" in out:
            out["type"] = [out["type"], "null"]
        return out
    if isinstance(schema, list):
        return [_json_schema(v) for v in schema]
    return schema


def response_fields(method: str, path: str) -> dict:
    """`x-open-rules.response_rule` with the JSONPath sources replaced by None and `[]` dropped from the names:
    a tree of the answer's field names, e.g. {"list": {"audience_details": {"audience_id": None, ...}, ...}}."""
    rule = operations()[(method, path)]["x-open-rules"]["response_rule"] or {}
    return _names(rule)


def _names(rule: Any) -> Any:
    if isinstance(rule, list):
        merged: dict = {}
        for item in rule:
            merged.update(_names(item) or {})
        return merged
    if isinstance(rule, dict):
        return {re.sub(r"(\[\])+$", "", k): _names(v) for k, v in rule.items()}
    return None
