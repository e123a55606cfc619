"""Infobip's vendored TikTok OpenAPI spec as JSON Schema: request validators and webhook payload schemas.

Two things a plain JSON Schema validator gets wrong about this spec, handled here:

- Message contents are chosen by an OpenAPI `discriminator` on `type`, and every variant includes its base
  through `allOf`. JSON Schema ignores discriminators (a TEXT without `text` would pass), so each discriminated
  schema is rewritten into "type is one of the mapping's keys" plus one `if type == KEY then VARIANT` per entry.
  Inside a variant's own `allOf` the base stays plain, which also keeps the inlining free of cycles.
- `$ref`s point into `components/schemas`; they are inlined, so every schema returned is self-contained.

Annotations (descriptions, examples, titles, `readOnly`) are dropped; they do not validate anything and only
slow hypothesis-jsonschema down. Formats are kept as the spec has them: jsonschema does not assert them by
default (so Infobip's `2019-11-09T16:00:00.000+0000`, which is not RFC 3339, validates) and hypothesis-jsonschema
generates RFC 3339 date-times for `date-time`, which our receiver parses too.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SPEC_PATH = Path(__file__).resolve().parent / "spec" / "tiktok-openapi.json"
SCHEMA_REF = "#/components/schemas/"
ANNOTATIONS = {"description", "example", "examples", "title", "readOnly", "externalDocs", "discriminator"}

# The spec's webhooks, by the kind our receiver tells apart.
WEBHOOK_OPERATIONS = {
    "inbound": "receive-inbound-tiktok-messages",
    "delivery": "receive-outbound-tiktok-message-delivery-reports",
    "seen": "receive-tiktok-seen-reports",
}


@cache
def load_spec() -> dict:
    return json.loads(SPEC_PATH.read_text())


def _schema_name(ref: str) -> str:
    if not ref.startswith(SCHEMA_REF):
        raise ValueError(f"unsupported $ref {ref!r}")
    return ref.removeprefix(SCHEMA_REF)


class _Inliner:
    """Inlines `$ref`s into component schemas, turning discriminators into if/then dispatch."""

    def __init__(self, components: dict[str, dict], *, dispatch_style: str) -> None:
        self.components = components
        self.dispatch_style = dispatch_style

    def schema(self, node: Any, stack: tuple[str, ...] = ()) -> Any:
        if isinstance(node, list):
            return [self.schema(item, stack) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return self.component(_schema_name(node["$ref"]), stack)
        out = {}
        for key, value in node.items():
            if key in ANNOTATIONS:
                continue
            if key == "properties":
                # Property names are data, not keywords: a property called "description" must survive.
                out[key] = {name: self.schema(sub, stack) for name, sub in value.items()}
            else:
                out[key] = self.schema(value, stack)
        return out

    def component(self, name: str, stack: tuple[str, ...], *, dispatch: bool = True) -> dict:
        raw = self.components[name]
        # The plain base inside its own variant is not a cycle; the same schema reached twice the same way is.
        key = name if dispatch or "discriminator" not in raw else f"{name} (plain)"
        if key in stack:
            raise ValueError(f"recursive schema {' -> '.join((*stack, key))}")
        stack = (*stack, key)
        if dispatch and "discriminator" in raw:
            return self._dispatch(name, raw, stack)
        if "discriminator" in raw or not self._is_variant(raw):
            return self.schema(raw, stack)
        # A variant: its allOf names the discriminated base, which must stay plain here.
        out = self.schema({key: value for key, value in raw.items() if key != "allOf"}, stack)
        out["allOf"] = [
            self.component(_schema_name(part["$ref"]), stack, dispatch=False)
            if "$ref" in part and "discriminator" in self.components[_schema_name(part["$ref"])]
            else self.schema(part, stack)
            for part in raw["allOf"]
        ]
        return out

    def _is_variant(self, raw: dict) -> bool:
        return any(
            "$ref" in part and "discriminator" in self.components.get(_schema_name(part["$ref"]), {})
            for part in raw.get("allOf", [])
        )

    def _dispatch(self, name: str, raw: dict, stack: tuple[str, ...]) -> dict:
        discriminator = raw["discriminator"]
        field, mapping = discriminator["propertyName"], discriminator["mapping"]
        if self.dispatch_style == "any_of":
            return {
                "anyOf": [
                    {
                        "allOf": [
                            {"properties": {field: {"const": value}}, "required": [field]},
                            self.component(_schema_name(ref), stack),
                        ]
                    }
                    for value, ref in mapping.items()
                ]
            }
        parts: list[dict] = [
            self.component(name, stack[:-1], dispatch=False),
            {"required": [field], "properties": {field: {"enum": list(mapping)}}},
        ]
        for value, ref in mapping.items():
            parts.append(
                {
                    "if": {"properties": {field: {"const": value}}, "required": [field]},
                    "then": self.component(_schema_name(ref), stack),
                }
            )
        return {"allOf": parts}


@cache
def _inliner(dispatch_style: str = "if_then") -> _Inliner:
    return _Inliner(load_spec()["components"]["schemas"], dispatch_style=dispatch_style)


def _body_schema(operation: dict) -> dict:
    return operation["requestBody"]["content"]["application/json"]["schema"]


@cache
def _request_schema(path: str) -> dict:
    return _inliner().schema(_body_schema(load_spec()["paths"][path]["post"]))


def request_schema(path: str) -> dict:
    """The self-contained JSON schema of a POST operation's request body, e.g. "/tiktok/1/messages"."""
    return copy.deepcopy(_request_schema(path))


@cache
def request_validator(path: str) -> Draft202012Validator:
    """A Draft 2020-12 validator for a POST operation's JSON body (the spec is OpenAPI 3.1)."""
    return Draft202012Validator(_request_schema(path))


@cache
def _webhook_schema(kind: str, dispatch_style: str) -> dict:
    if kind not in WEBHOOK_OPERATIONS:
        raise ValueError(f"unknown webhook kind {kind!r}; expected one of {sorted(WEBHOOK_OPERATIONS)}")
    operation = load_spec()["webhooks"][WEBHOOK_OPERATIONS[kind]]["post"]
    return _inliner(dispatch_style).schema(_body_schema(operation))


def webhook_schema(kind: str) -> dict:
    """The self-contained JSON schema of a webhook body Infobip sends: "inbound", "delivery" or "seen".

    Discriminated contents appear as `anyOf` (one branch per type: `type` const plus the variant), which
    hypothesis-jsonschema generates from quickly; if/then, which it can only do by filtering, took minutes.
    A fresh copy each call, so callers may adapt it without touching the cache.
    """
    return copy.deepcopy(_webhook_schema(kind, "any_of"))


@cache
def webhook_validator(kind: str) -> Draft202012Validator:
    """Validates a webhook body; same rules as `webhook_schema`, in the if/then form for precise messages."""
    return Draft202012Validator(_webhook_schema(kind, "if_then"))


def violations(validator: Draft202012Validator, instance: Any) -> list[dict[str, str]]:
    """Infobip-style violations (`property` as a dotted path, `violation` a message), deepest first."""
    found = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: (list(map(str, e.absolute_path)), e.message)):
        for leaf in _leaves(error):
            found.append({"property": _dotted(leaf.absolute_path), "violation": leaf.message})
    unique = {(v["property"], v["violation"]): v for v in found}
    return list(unique.values())


def _leaves(error) -> list:
    # if/then and allOf failures wrap the useful message ("'text' is a required property") in their context.
    if not error.context:
        return [error]
    return [leaf for sub in error.context for leaf in _leaves(sub)]


def _dotted(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# --- Infobip's Subscriptions Management spec (webhook security settings, notification profiles, subscriptions)

SUBSCRIPTIONS_SPEC_PATH = Path(__file__).resolve().parent / "spec" / "subscriptions-openapi.json"
# The spec (3.210.0) has no TIKTOK channel, though Infobip's portal offers TikTok subscriptions. A TIKTOK request is
# checked against the shape every messaging channel shares (Viber's, whose events include the three we use).
SUBSCRIPTION_CHANNEL_SCHEMAS = {"TIKTOK": "ViberSubscriptionRequest"}
TIKTOK_EVENTS = ["DELIVERY", "INBOUND_MESSAGE", "SEEN"]


@cache
def load_subscriptions_spec() -> dict:
    return json.loads(SUBSCRIPTIONS_SPEC_PATH.read_text())


@cache
def _subscriptions_components() -> dict[str, dict]:
    """The spec's component schemas, under their short names (the spec prefixes each with a hash)."""
    components = load_subscriptions_spec()["components"]["schemas"]
    return {name.rpartition(".")[2]: name for name in components}


@cache
def _subscriptions_schema(name: str, channel: str = "") -> dict:
    spec = load_subscriptions_spec()
    schema = _Inliner(spec["components"]["schemas"], dispatch_style="if_then").schema(
        {"$ref": SCHEMA_REF + _subscriptions_components()[name]}
    )
    if channel == "TIKTOK" and "events" in schema.get("properties", {}):
        schema["properties"]["events"]["items"] = {"type": "string", "enum": TIKTOK_EVENTS}
    return schema


def subscription_channels() -> list[str]:
    """The channels the spec lists (SubscriptionChannel), plus TIKTOK."""
    components = load_subscriptions_spec()["components"]["schemas"]
    return [*components[_subscriptions_components()["SubscriptionChannel"]]["enum"], "TIKTOK"]


@cache
def subscriptions_validator(name: str, channel: str = "") -> Draft202012Validator:
    """A validator for one of the Subscriptions spec's schemas by its short name (e.g. "SecurityRequest").

    For a subscription request give `channel`: the channel's own request schema is used (the spec's
    `SubscriptionRequest` is a `oneOf` every channel, so one body matches several and fails it)."""
    if channel and name in ("SubscriptionRequest", "NoIdSubscriptionRequest"):
        prefix = SUBSCRIPTION_CHANNEL_SCHEMAS.get(channel, "").removesuffix("SubscriptionRequest") or "".join(
            part.capitalize() for part in channel.split("_")
        )
        name = f"{prefix}{name}"
    return Draft202012Validator(_subscriptions_schema(name, channel))
