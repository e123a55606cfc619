"""Marketing API shapes (`/work/shared/tiktok/README.md` §7, §8.1): the codes the ads sandbox answers with, the
envelope, the review webhook body. The TikTok sandbox's envelope, ids and signature are reused as they are."""

from __future__ import annotations

import secrets
import time
from typing import Any

from tiktok_channel.direct.sandbox import payloads as direct
from tiktok_channel.direct.sandbox.payloads import numeric_id, request_id, signature_header, sniff_image  # noqa: F401

OK = 0
PERMISSION_ERROR = direct.PERMISSION_ERROR  # 40001: wrong app secret, an advertiser the token does not cover
PARAM_ERROR = direct.PARAM_ERROR  # 40002
NOT_EXIST = direct.NOT_EXIST  # 40007
PII_NOT_HASHED = 40062
TOO_FREQUENT = direct.TOO_FREQUENT  # 40100
ACCESS_TOKEN_EMPTY = direct.ACCESS_TOKEN_EMPTY  # 40104
ACCESS_TOKEN_INVALID = direct.ACCESS_TOKEN_INVALID  # 40105
AUTH_CODE_ERROR = direct.AUTH_CODE_ERROR  # 40110
ADVERTISER_NOT_EXIST = 40300
ROUTE_NOT_FOUND = direct.ROUTE_NOT_FOUND  # 40400
AD_NUMBER_LIMIT = 40502
FILE_SIGNATURE_ERROR = 40900
FILE_NOT_EXIST = 40905
FILE_EMPTY = 40906
FILE_TOO_LARGE = direct.FILE_TOO_LARGE  # 40907
FILE_TYPE_UNSUPPORTED = direct.FILE_TYPE_UNSUPPORTED  # 40908
CALCULATE_TYPE_ERROR = 40909
DUPLICATED_MATERIAL_NAME = 40911
URL_FETCH_ERROR = 40914

MESSAGES = {
    **direct.MESSAGES,
    PII_NOT_HASHED: "PII not hashed",
    ADVERTISER_NOT_EXIST: "Advertiser does not exist",
    AD_NUMBER_LIMIT: "Ad number limit",
    FILE_SIGNATURE_ERROR: "File signature error",
    FILE_NOT_EXIST: "File does not exist",
    FILE_EMPTY: "File is empty",
    CALCULATE_TYPE_ERROR: "Calculate type error",
    DUPLICATED_MATERIAL_NAME: "Duplicated material name",
    URL_FETCH_ERROR: "URL fetch error",
}

# §2.2: the advertiser token's `scope`, a list of numeric permission ids (which ones is TikTok's business).
ADVERTISER_SCOPE = [4, 5, 6]

# §7.7: the review webhook's `object`.
OBJECT_ADGROUP_REVIEW = 2
OBJECT_AD_REVIEW = 3


def envelope(data: dict | None = None, *, code: int = OK, message: str = "") -> dict:
    """`{"code", "message", "request_id", "data"}`; a refusal's message is "<meaning>: <reason>"."""
    text = MESSAGES.get(code, "Error") if not message else f"{MESSAGES.get(code, 'Error')}: {message}"
    return {"code": code, "message": text, "request_id": request_id(), "data": data if data is not None else {}}


def token() -> str:
    return secrets.token_hex(20)


def review_webhook(*, object_kind: int, entries: list[dict[str, Any]]) -> dict:
    """The Subscription API delivery (§7.7): `adv_id` a JSON number, every other id a string; `time` is now."""
    return {"request_id": request_id(), "object": object_kind, "time": int(time.time()), "entry": entries}
