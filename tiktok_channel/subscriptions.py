"""Infobip's Subscriptions Management API (`tiktok_channel/spec/subscriptions-openapi.json`), outbound: security
settings, notification profiles, subscriptions per channel, the webhook connection test — and the key check that
precedes them. Every call has timeouts; every failure becomes a `SubscriptionsError` with a stable code and a
sentence an admin can act on.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

import requests
from django.conf import settings

from tiktok_channel.client import session_for
from tiktok_channel.models import InfobipAccount

logger = logging.getLogger(__name__)

SECURITY_PATH = "/subscriptions/1/security"
PROFILES_PATH = "/subscriptions/1/profiles"
SUBSCRIPTION_PATH = "/subscriptions/1/subscription/{channel}"
CONNECTION_TEST_PATH = "/subscriptions/1/certificates/test/webhook"
# The harmless calls of the key check: read-only, one row each.
TIKTOK_PROBE_PATH = "/tiktok/1/logs"
PAGE_SIZE = 100
MAX_PAGES = 20


class SubscriptionsError(Exception):
    """A call failed. `code`: wrong_key, missing_scope, wrong_base_url, refused (4xx with a reason), not_found,
    unavailable (5xx, timeout, network: worth another run)."""

    def __init__(self, code: str, message: str, *, status: int | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.code, self.message, self.status, self.detail = code, message, status, detail

    def as_dict(self) -> dict:
        return {"name": self.code, "description": self.message, "http_status": self.status}


def _detail(response: requests.Response) -> str:
    """Infobip's reason from either error shape (ApiException's serviceException, or ApiError)."""
    try:
        data = response.json()
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    service = (data.get("requestError") or {}).get("serviceException") or {}
    parts = [service.get("text") or data.get("description") or ""]
    for field, problems in (service.get("validationErrors") or {}).items():
        parts.append(f"{field}: {'; '.join(map(str, problems))}")
    for violation in data.get("violations") or []:
        if isinstance(violation, dict):
            parts.append(f"{violation.get('property')}: {violation.get('violation')}")
    return " — ".join(p for p in parts if p)


class SubscriptionsClient:
    def __init__(self, account: InfobipAccount) -> None:
        self.account = account
        self.base_url = account.base_url.rstrip("/")

    def _call(self, method: str, path: str, *, body: dict | None = None, params: dict | None = None) -> dict:
        url = f"{self.base_url}{path}"
        try:
            response = session_for(self.account).request(
                method,
                url,
                json=body,
                params=params,
                headers={"Authorization": f"App {self.account.api_key}", "Accept": "application/json"},
                timeout=(settings.INFOBIP_CONNECT_TIMEOUT, settings.INFOBIP_READ_TIMEOUT),
            )
        except requests.Timeout:
            raise SubscriptionsError("unavailable", f"Infobip did not answer in time ({method} {path})") from None
        except requests.ConnectionError as exc:
            raise SubscriptionsError(
                "wrong_base_url",
                f"cannot reach {self.base_url}: check the base URL (https://<xxxxx>.api.infobip.com). "
                f"{type(exc).__name__}",
            ) from None
        except requests.RequestException as exc:
            raise SubscriptionsError("wrong_base_url", f"bad base URL {self.base_url}: {exc}") from None
        status = response.status_code
        if 200 <= status < 300:
            try:
                data = response.json() if response.content else {}
            except ValueError:
                raise SubscriptionsError(
                    "wrong_base_url",
                    f"{self.base_url} answered {method} {path} with something that is not Infobip's JSON: "
                    "check the base URL",
                    status=status,
                ) from None
            return data if isinstance(data, dict) else {}
        detail = _detail(response)
        if status == 401:
            raise SubscriptionsError("wrong_key", "Infobip refused the API key (401): check it", status=status)
        if status == 403:
            raise SubscriptionsError(
                "missing_scope", f"the API key may not call {path} (403): add the scope", status=status, detail=detail
            )
        if status == 404:
            raise SubscriptionsError("not_found", detail or f"{path} not found", status=status, detail=detail)
        if status == 429 or status >= 500:
            raise SubscriptionsError(
                "unavailable", f"Infobip answered {status} to {method} {path}; try again", status=status, detail=detail
            )
        raise SubscriptionsError(
            "refused", f"Infobip refused {method} {path} ({status}): {detail or response.reason}", status=status
        )

    # --- the key check --------------------------------------------------------------------------------------

    def check_key(self) -> None:
        """A read-only call to each API the setup and the product use. Raises with what to fix."""
        try:
            self._call("GET", TIKTOK_PROBE_PATH, params={"limit": 1})
        except SubscriptionsError as exc:
            if exc.code == "missing_scope":
                raise SubscriptionsError(
                    "missing_scope", "the API key lacks the scope tiktok:manage (403 on the TikTok API)", status=403
                ) from None
            if exc.code == "not_found":
                raise SubscriptionsError(
                    "wrong_base_url",
                    f"{self.base_url} has no TikTok API (404): check the base URL (https://<xxxxx>.api.infobip.com)",
                    status=404,
                ) from None
            raise
        try:
            self._call("GET", SECURITY_PATH, params={"page": 0, "size": 1})
        except SubscriptionsError as exc:
            if exc.code == "missing_scope":
                raise SubscriptionsError(
                    "missing_scope",
                    "the API key may not manage subscriptions (403 on Subscriptions Management): give it the "
                    "subscriptions scope, or set the webhook up by hand (README)",
                    status=403,
                ) from None
            raise

    # --- resources ------------------------------------------------------------------------------------------

    def list(self, path: str) -> list[dict]:
        found: list[dict] = []
        for page in range(MAX_PAGES):
            data = self._call("GET", path, params={"page": page, "size": PAGE_SIZE})
            results = data.get("results") if isinstance(data.get("results"), list) else []
            found.extend(r for r in results if isinstance(r, dict))
            total_pages = (data.get("paging") or {}).get("totalPages") or 0
            if page + 1 >= total_pages or not results:
                break
        return found

    def get(self, path: str, ident: str) -> dict | None:
        try:
            return self._call("GET", f"{path}/{quote(ident, safe='')}")
        except SubscriptionsError as exc:
            if exc.code == "not_found":
                return None
            raise

    def create(self, path: str, body: dict) -> dict:
        return self._call("POST", path, body=body)

    def update(self, path: str, ident: str, body: dict) -> dict:
        return self._call("PUT", f"{path}/{quote(ident, safe='')}", body=body)

    def delete(self, path: str, ident: str) -> bool:
        """True if deleted, False if it was already gone."""
        try:
            self._call("DELETE", f"{path}/{quote(ident, safe='')}")
        except SubscriptionsError as exc:
            if exc.code == "not_found":
                return False
            raise
        return True

    def connection_test(self, *, certificate_id: str, webhook_url: str) -> dict:
        return self._call(
            "POST", CONNECTION_TEST_PATH, body={"certificateId": certificate_id, "webhookUrl": webhook_url}
        )


def subscription_path(channel: str) -> str:
    return SUBSCRIPTION_PATH.format(channel=quote(channel, safe=""))
