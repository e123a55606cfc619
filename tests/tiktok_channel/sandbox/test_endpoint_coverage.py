"""The sandbox answers every Infobip endpoint the product's client calls.

The endpoints are read from the client's code (`tiktok_channel/client.py`), not copied here: every module-level
`*_PATH` string constant and the HTTP method of the call it is passed to (`_post(account, MESSAGES_PATH, ...)`,
`session.get(f"{base}{LOGS_PATH}")`, ...). A new call in the client without a sandbox route fails this test.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import re

import requests

from tiktok_channel import client

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


def _method_of(call: ast.Call) -> str | None:
    """`_post(...)`, `session.post(...)`, `_request(account, "PUT", ...)` → the HTTP method."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    name = name.lstrip("_").lower()
    if name in HTTP_METHODS:
        return name.upper()
    if name == "request":
        arguments = [*call.args, *(k.value for k in call.keywords)]
        named = [a.value for a in arguments if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        return next((m.upper() for m in named if m.lower() in HTTP_METHODS), None)
    return None


def _paths_in(argument: ast.AST, paths: dict[str, str]) -> set[str]:
    """The `*_PATH` constants an argument uses; `X_PATH.format(channel="TIKTOK")` with constant values filled in."""
    found, formatted = set(), set()
    for node in ast.walk(argument):  # breadth first: a `.format(...)` call comes before the name it formats
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
            target = node.func.value
            values = {k.arg: k.value.value for k in node.keywords if isinstance(k.value, ast.Constant) and k.arg}
            if isinstance(target, ast.Name) and target.id in paths:
                with contextlib.suppress(KeyError, IndexError):
                    found.add(paths[target.id].format(**values))
                    formatted.add(target)
        if isinstance(node, ast.Name) and node.id in paths and node not in formatted:
            found.add(paths[node.id])
    return found


def client_endpoints(source: str | None = None) -> set[tuple[str, str]]:
    """(method, path) of every call of the client (or of `source`) that names a `*_PATH` constant."""
    tree = ast.parse(source if source is not None else inspect.getsource(client))
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
        for argument in [*call.args, *(k.value for k in call.keywords)]:
            endpoints |= {(method, path) for path in _paths_in(argument, paths)}
    return endpoints


def test_the_derivation_reads_gets_formatted_paths_and_generic_request_helpers():
    source = """
LIST_PATH = "/subscriptions/1/subscription/{channel}"
ONE_PATH = "/subscriptions/1/subscription/{channel}/{id}"
PROFILE_PATH = "/subscriptions/1/profiles"
def _request(account, method, path, body=None):
    return session_for(account).request(method, account.base_url + path, json=body)
def listing(account):
    return session_for(account).get(f"{account.base_url}{LIST_PATH.format(channel='TIKTOK_BM')}")
def remove(account, id):
    return _request(account, "DELETE", ONE_PATH.format(channel="TIKTOK_BM", id=id))
def profile(account, body):
    return _request(account, "POST", PROFILE_PATH, body)
"""
    assert client_endpoints(source) == {
        ("GET", "/subscriptions/1/subscription/TIKTOK_BM"),
        ("DELETE", "/subscriptions/1/subscription/{channel}/{id}"),
        ("POST", "/subscriptions/1/profiles"),
    }


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
