"""The sandbox answers every Infobip endpoint the product's client calls.

The endpoints are read from the client's code (`tiktok_channel/client.py`), not copied here: every module-level
`*_PATH` string constant and the HTTP method of the call it is passed to (`_post(account, MESSAGES_PATH, ...)`,
`session.get(f"{base}{LOGS_PATH}")`, ...). A new call in the client without a sandbox route fails this test.
"""

from __future__ import annotations

import ast
import inspect
import re

import requests

from tiktok_channel import client

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


def _method_of(call: ast.Call) -> str | None:
    """`_post(...)`, `session.post(...)`, `request("PUT", ...)` → the HTTP method."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    name = name.lstrip("_").lower()
    if name in HTTP_METHODS:
        return name.upper()
    if name == "request" and call.args and isinstance(call.args[0], ast.Constant):
        return str(call.args[0].value).upper()
    return None


def client_endpoints() -> set[tuple[str, str]]:
    """(method, path) of every call of the client that names a `*_PATH` constant."""
    tree = ast.parse(inspect.getsource(client))
    paths = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name) and target.id.endswith("_PATH")
    }
    # Which method each helper (`def _post(account, path, ...)`) uses for its `path` argument.
    helpers: dict[str, str] = {}
    for function in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        for call in (n for n in ast.walk(function) if isinstance(n, ast.Call)):
            method = _method_of(call)
            if method and "path" in {a.arg for a in function.args.args}:
                helpers[function.name] = method
    endpoints = set()
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        func = call.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        method = helpers.get(name) or _method_of(call)
        if not method:
            continue
        arguments = [*call.args, *(k.value for k in call.keywords)]
        named = {n.id for arg in arguments for n in ast.walk(arg) if isinstance(n, ast.Name)} & set(paths)
        endpoints |= {(method, paths[constant]) for constant in named}
    return endpoints


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "sandbox-probe", path)


def test_the_endpoints_are_read_from_the_client():
    found = client_endpoints()
    # The derivation itself must see the calls that exist (else an empty set would pass the next test).
    assert {("POST", client.MESSAGES_PATH), ("POST", client.EVENTS_PATH), ("POST", client.CONVERSIONS_PATH)} <= found


def test_the_sandbox_has_a_route_for_every_endpoint_the_client_calls(running):
    """Unauthenticated, every API route of the sandbox answers 401 (it asks for the key): an unknown one 404/405."""
    missing = {}
    for method, path in sorted(client_endpoints()):
        response = requests.request(method, f"{running.url}{_concrete(path)}", json={}, timeout=5)
        if response.status_code != 401:
            missing[f"{method} {path}"] = f"{response.status_code} {response.text[:200]}"
    assert not missing, f"the sandbox lacks endpoints the client calls: {missing}"


def test_a_path_the_sandbox_lacks_is_reported(running):
    """The check above can fail: a route the sandbox does not have answers 404, not 401."""
    response = requests.post(f"{running.url}/saas/tiktok-ads/1/not-a-route", json={}, timeout=5)
    assert response.status_code == 404 and response.json()["errorCode"] == "E404"
