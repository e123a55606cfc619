"""`POST /saas/tiktok-ads/1/conversions` in the sandbox: the body checked against the shape of Infobip's guide.

The vendored OpenAPI spec has no conversions endpoint, so the schema is written here from the guide
(`../shared/infobip/README.md`, "Direct Messaging Ads conversions"):
`{"sourceId": <business account>, "conversions": [{"event", "event_time": <unix seconds>,
"user": {"tiktok_unique_identifier"}, "properties": {"quantity", "price", "currency", "value"}}]}`.
The answer is not documented; the sandbox answers 200 with one result per conversion.
"""

from __future__ import annotations

from functools import cache

from jsonschema import Draft202012Validator

PATH = "/saas/tiktok-ads/1/conversions"
MAX_CONVERSIONS = 1000

SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["sourceId", "conversions"],
    "properties": {
        "sourceId": {"type": "string", "minLength": 1},
        "conversions": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_CONVERSIONS,
            "items": {
                "type": "object",
                "required": ["event", "event_time", "user"],
                "properties": {
                    # TikTok's standard names "include" those of the guide: any name is taken, none is empty.
                    "event": {"type": "string", "minLength": 1, "maxLength": 100},
                    "event_time": {"type": "integer", "minimum": 0},
                    "user": {
                        "type": "object",
                        "required": ["tiktok_unique_identifier"],
                        "properties": {"tiktok_unique_identifier": {"type": "string", "minLength": 1}},
                    },
                    "properties": {
                        "type": "object",
                        "properties": {
                            "quantity": {"type": "integer", "minimum": 1},
                            "price": {"type": "number", "minimum": 0},
                            "value": {"type": "number", "minimum": 0},
                            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                        },
                        # A value means nothing without its currency.
                        "dependentRequired": {"value": ["currency"], "price": ["currency"]},
                    },
                },
            },
        },
    },
}


@cache
def validator() -> Draft202012Validator:
    return Draft202012Validator(SCHEMA)
