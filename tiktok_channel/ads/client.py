"""The Marketing API over HTTP (../shared/tiktok/README.md §2.2, §7): one error path for every call.

Every answer is the envelope `{code, message, request_id, data}`; most refusals are HTTP 200 with `code` != 0
(§8.1). A refusal, an HTTP error or a network failure raises `MarketingError` carrying TikTok's code and message;
`retryable` says whether a later try may work (40100 throttling, 5xx, timeouts), which the Celery tasks honour
with backoff. The advertiser token travels in the `Access-Token` header, never in a URL or a log line.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

import requests
from django.conf import settings

logger = logging.getLogger(__name__)

THROTTLED_CODES = {40100, 40132, 61000}
RETRYABLE_CODES = THROTTLED_CODES | {40201, 40202, 40902, 40913, 50000, 50002, 60001}
DUPLICATE_CODES = {40050}


@dataclass
class MarketingError(Exception):
    """TikTok refused the call (code != 0) or it did not reach TikTok (code None, HTTP status in `status`)."""

    code: int | None
    message: str
    status: int | None = None

    def __str__(self) -> str:
        if self.code is not None:
            return f"TikTok refused ({self.code}): {self.message}"
        return f"TikTok could not be reached: {self.message}"

    @property
    def throttled(self) -> bool:
        return self.code in THROTTLED_CODES

    @property
    def retryable(self) -> bool:
        if self.code is not None:
            return self.code in RETRYABLE_CODES or 51000 <= self.code < 53000
        return self.status is None or self.status >= 500 or self.status == 429


def _field(data: dict, name: str) -> str:
    value = data.get(name)
    if value in (None, ""):
        raise MarketingError(None, f"TikTok answered without {name}")
    return str(value)


def api_url(path: str) -> str:
    return f"{settings.TIKTOK_MARKETING_API_BASE.rstrip('/')}/{path.strip('/')}/"


def _timeout() -> tuple[float, float]:
    return (settings.TIKTOK_MARKETING_CONNECT_TIMEOUT, settings.TIKTOK_MARKETING_READ_TIMEOUT)


def _query(params: dict) -> dict:
    """Lists and objects in a GET query are JSON strings (§1)."""
    return {key: json.dumps(value) if isinstance(value, (list, dict)) else value for key, value in params.items()}


def call(method: str, path: str, *, token: str = "", params=None, json_body=None, data=None, files=None) -> dict:
    """One Marketing API call; returns `data` of a `code == 0` answer, raises MarketingError otherwise."""
    headers = {"Access-Token": token} if token else {}
    try:
        response = requests.request(
            method,
            api_url(path),
            headers=headers,
            params=_query(params or {}),
            json=json_body,
            data=data,
            files=files,
            timeout=_timeout(),
        )
    except requests.RequestException as exc:
        raise MarketingError(None, f"{type(exc).__name__} calling {path}") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or "code" not in body:
        raise MarketingError(None, f"HTTP {response.status_code} from {path}", status=response.status_code)
    code = body.get("code")
    if not isinstance(code, int) or isinstance(code, bool):
        raise MarketingError(None, f"no numeric code in the answer of {path}", status=response.status_code)
    if code in DUPLICATE_CODES:
        return body.get("data") or {}
    if code != 0 and code != 20001:
        message = str(body.get("message") or "")[:500]
        logger.info("TikTok Marketing API %s refused: %s %s", path, code, message)
        raise MarketingError(code, message, status=response.status_code)
    if response.status_code >= 400:
        raise MarketingError(None, f"HTTP {response.status_code} from {path}", status=response.status_code)
    data = body.get("data")
    return data if isinstance(data, dict) else {}


# --- Authorization (§2.2) ------------------------------------------------------------------------------------------


def access_token(auth_code: str) -> dict:
    return call(
        "POST",
        "oauth2/access_token",
        json_body={
            "app_id": settings.TIKTOK_MARKETING_APP_ID,
            "secret": settings.TIKTOK_MARKETING_APP_SECRET,
            "auth_code": auth_code,
        },
    )


def advertisers(token: str) -> list[dict]:
    data = call(
        "GET",
        "oauth2/advertiser/get",
        token=token,
        params={"app_id": settings.TIKTOK_MARKETING_APP_ID, "secret": settings.TIKTOK_MARKETING_APP_SECRET},
    )
    return [row for row in data.get("list") or [] if isinstance(row, dict)]


def advertiser_info(token: str, advertiser_ids: list[str]) -> list[dict]:
    data = call(
        "GET",
        "advertiser/info",
        token=token,
        params={"advertiser_ids": advertiser_ids, "fields": ["advertiser_id", "name", "currency", "timezone"]},
    )
    return [row for row in data.get("list") or [] if isinstance(row, dict)]


# --- Campaign, ad group, ad (§7.1–7.3) -----------------------------------------------------------------------------


def campaign_create(token: str, body: dict) -> str:
    return _field(call("POST", "campaign/create", token=token, json_body=body), "campaign_id")


def adgroup_create(token: str, body: dict) -> str:
    return _field(call("POST", "adgroup/create", token=token, json_body=body), "adgroup_id")


def ad_create(token: str, body: dict) -> str:
    data = call("POST", "ad/create", token=token, json_body=body)
    ids = data.get("ad_ids") or []
    if not ids:
        raise MarketingError(None, "TikTok answered without ad_ids")
    return str(ids[0])


STATUS_PATHS = {"campaign": "campaign/status/update", "adgroup": "adgroup/status/update", "ad": "ad/status/update"}


def status_update(token: str, *, advertiser_id: str, level: str, ids: list[str], operation_status: str) -> dict:
    return call(
        "POST",
        STATUS_PATHS[level],
        token=token,
        json_body={"advertiser_id": advertiser_id, f"{level}_ids": ids, "operation_status": operation_status},
    )


def image_upload(token: str, *, advertiser_id: str, content: bytes, file_name: str) -> dict:
    """UPLOAD_BY_FILE with `image_signature` = MD5 hex of the bytes (§7.4)."""
    return call(
        "POST",
        "file/image/ad/upload",
        token=token,
        data={
            "advertiser_id": advertiser_id,
            "upload_type": "UPLOAD_BY_FILE",
            "image_signature": hashlib.md5(content).hexdigest(),  # noqa: S324 - TikTok's file signature
            "file_name": file_name,
        },
        files={"image_file": (file_name, content)},
    )


def ad_subscribe(token: str, *, advertiser_id: str, ad_id: str, callback_url: str) -> dict:
    """Review webhooks are per ad (§7.7)."""
    return call(
        "POST",
        "subscription/subscribe",
        json_body={
            "app_id": settings.TIKTOK_MARKETING_APP_ID,
            "secret": settings.TIKTOK_MARKETING_APP_SECRET,
            "subscribe_entity": "AD",
            "callback_url": callback_url,
            "subscription_detail": {"access_token": token, "advertiser_id": advertiser_id, "ad_id": ad_id},
        },
    )


# --- Reports (§7.5) --------------------------------------------------------------------------------------------------

REPORT_METRICS = ["spend", "impressions", "clicks", "conversion"]


def ad_report(token: str, *, advertiser_id: str, start_date: str, end_date: str) -> list[dict]:
    """Every page of the per-ad, per-day BASIC report."""
    rows: list[dict] = []
    page = 1
    while True:
        data = call(
            "GET",
            "report/integrated/get",
            token=token,
            params={
                "advertiser_id": advertiser_id,
                "report_type": "BASIC",
                "data_level": "AUCTION_AD",
                "dimensions": ["ad_id", "stat_time_day"],
                "metrics": REPORT_METRICS,
                "start_date": start_date,
                "end_date": end_date,
                "page": page,
                "page_size": 1000,
            },
        )
        rows.extend(row for row in data.get("list") or [] if isinstance(row, dict))
        total_page = (data.get("page_info") or {}).get("total_page") or 1
        if page >= total_page:
            return rows
        page += 1


# --- Custom audiences (§7.6) -----------------------------------------------------------------------------------------


def audience_file_upload(token: str, *, advertiser_id: str, content: bytes, calculate_type: str) -> str:
    data = call(
        "POST",
        "dmp/custom_audience/file/upload",
        token=token,
        data={
            "advertiser_id": advertiser_id,
            "file_signature": hashlib.md5(content).hexdigest(),  # noqa: S324 - TikTok's file signature
            "calculate_type": calculate_type,
        },
        files={"file": ("audience.csv", content, "text/csv")},
    )
    return _field(data, "file_path")


def audience_create(token: str, *, advertiser_id: str, name: str, file_path: str, calculate_type: str) -> str:
    data = call(
        "POST",
        "dmp/custom_audience/create",
        token=token,
        json_body={
            "advertiser_id": advertiser_id,
            "custom_audience_name": name,
            "file_paths": [file_path],
            "calculate_type": calculate_type,
            "retention_in_days": settings.TIKTOK_ADS_AUDIENCE_RETENTION_DAYS,
        },
    )
    return _field(data, "custom_audience_id")


def audience_append(token: str, *, advertiser_id: str, audience_id: str, file_path: str) -> dict:
    """APPEND, never the default REPLACE (§7.6)."""
    return call(
        "POST",
        "dmp/custom_audience/update",
        token=token,
        json_body={
            "advertiser_id": advertiser_id,
            "custom_audience_id": audience_id,
            "file_paths": [file_path],
            "action": "APPEND",
        },
    )
