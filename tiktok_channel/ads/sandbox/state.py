"""What the ads sandbox knows and does, independent of HTTP: apps, advertisers, advertiser tokens, campaigns, ad
groups, ads, images, customer files and custom audiences, review subscriptions and the signed webhooks it posts,
and the reports it computes (`/work/shared/tiktok/README.md` §2.2, §7, §8.1, §9, §10)."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests

from tiktok_channel.ads.sandbox import payloads
from tiktok_channel.ads.sandbox.behaviour import AdsBehaviour
from tiktok_channel.direct.sandbox.state import ApiError as _DirectApiError
from tiktok_channel.sandbox.switches import SandboxState, is_url, redirect_uris

logger = logging.getLogger(__name__)

KEPT_REQUESTS = 2000
MAX_IDS_PER_STATUS_UPDATE = 20  # §7.1, §7.3
MAX_ADS_PER_CALL = 20  # §7.3
MAX_ADS_PER_ADGROUP = 20  # §7.3
MAX_PAGE_SIZE = 1000
MAX_IMAGE_PIXELS = 3_686_400  # §7.4
MAX_REPORT_DAYS = 30  # §7.5, with stat_time_day
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

OBJECTIVES = (
    "APP_PROMOTION",
    "WEB_CONVERSIONS",
    "REACH",
    "TRAFFIC",
    "VIDEO_VIEWS",
    "PRODUCT_SALES",
    "ENGAGEMENT",
    "LEAD_GENERATION",
    "RF_REACH",
)
BUDGET_MODES = ("BUDGET_MODE_INFINITE", "BUDGET_MODE_TOTAL", "BUDGET_MODE_DAY", "BUDGET_MODE_DYNAMIC_DAILY_BUDGET")
OPERATION_STATUSES = ("ENABLE", "DISABLE")
STATUS_ACTIONS = ("ENABLE", "DISABLE", "DELETE")
PACINGS = ("PACING_MODE_SMOOTH", "PACING_MODE_FAST")
SCHEDULE_TYPES = ("SCHEDULE_FROM_NOW", "SCHEDULE_START_END")
PLACEMENT_TYPES = ("PLACEMENT_TYPE_AUTOMATIC", "PLACEMENT_TYPE_NORMAL")
AGE_GROUPS = ("AGE_13_17", "AGE_18_24", "AGE_25_34", "AGE_35_44", "AGE_45_54", "AGE_55_100")
GENDERS = ("GENDER_UNLIMITED", "GENDER_MALE", "GENDER_FEMALE")
IDENTITY_TYPES = ("CUSTOMIZED_USER", "AUTH_CODE", "TT_USER", "BC_AUTH_TT")
AD_FORMATS = ("SINGLE_IMAGE", "SINGLE_VIDEO", "CAROUSEL_ADS", "CATALOG_CAROUSEL", "LIVE_CONTENT")
UPLOAD_TYPES = ("UPLOAD_BY_FILE", "UPLOAD_BY_URL", "UPLOAD_BY_FILE_ID")
AUDIENCE_ACTIONS = ("REPLACE", "APPEND", "REMOVE")

# §7.5: the metrics the sandbox computes, and the attributes it can add to a row.
SUM_METRICS = ("spend", "impressions", "clicks", "conversion", "reach")
RATIO_METRICS = ("ctr", "cpc", "cpm", "cost_per_conversion", "conversion_rate")
ATTRIBUTE_METRICS = ("campaign_name", "campaign_id", "adgroup_name", "adgroup_id", "ad_name", "objective_type")
KNOWN_METRICS = SUM_METRICS + RATIO_METRICS + ATTRIBUTE_METRICS
DEFAULT_METRICS = ["spend", "impressions"]
LEVEL_DIMENSION = {
    "AUCTION_AD": "ad_id",
    "AUCTION_ADGROUP": "adgroup_id",
    "AUCTION_CAMPAIGN": "campaign_id",
    "AUCTION_ADVERTISER": "advertiser_id",
}
REPORT_ORIGIN = date(2024, 1, 1)  # figures grow by the day from here

EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\ufe0f]")
HEX = {"SHA256": re.compile(r"[0-9a-f]{64}"), "MD5": re.compile(r"[0-9a-f]{32}")}  # lowercase hex (§7.6)
HEADER_ROW = re.compile(r"[A-Za-z][A-Za-z0-9_ ]*")


class ApiError(_DirectApiError):
    """The TikTok sandbox's refusal (HTTP 200 unless `status`), with the Marketing API's messages."""

    def body(self) -> dict:
        return payloads.envelope(code=self.code, message=self.reason)


@dataclass
class App:
    app_id: str
    secret: str
    name: str = "Sandbox ads app"
    redirect_uris: list[str] = field(default_factory=list)  # empty: any http(s) URL is accepted
    review_webhook_url: str = ""  # where every review is posted, subscribed or not (the "configured URL")

    def __repr__(self) -> str:  # never show the secret
        return f"App({self.app_id!r}, {self.name!r})"

    def public(self) -> dict:
        return {
            "app_id": self.app_id,
            "name": self.name,
            "redirect_uris": list(self.redirect_uris),
            "review_webhook_url": self.review_webhook_url,
        }


@dataclass
class Advertiser:
    advertiser_id: str
    advertiser_name: str
    currency: str = "USD"
    timezone: str = "UTC"

    def public(self) -> dict:
        return {
            "advertiser_id": self.advertiser_id,
            "advertiser_name": self.advertiser_name,
            "currency": self.currency,
            "timezone": self.timezone,
        }


@dataclass
class AuthCode:
    app_id: str
    advertiser_ids: list[str]
    redirect_uri: str
    expires_at: float
    used: bool = False


@dataclass
class Token:
    value: str
    app_id: str
    advertiser_ids: list[str]
    issued_at: float
    revoked: bool = False


@dataclass
class AudienceFile:
    file_path: str
    advertiser_id: str
    calculate_type: str
    name: str
    md5: str
    size: int
    header: str
    rows: list[str]
    not_hashed: int
    accepted: bool
    received_at: float

    def public(self, *, with_rows: bool = True) -> dict:
        out = {
            "file_path": self.file_path,
            "advertiser_id": self.advertiser_id,
            "calculate_type": self.calculate_type,
            "name": self.name,
            "md5": self.md5,
            "size": self.size,
            "header": self.header,
            "row_count": len(self.rows),
            "not_hashed": self.not_hashed,
            "accepted": self.accepted,
            "received_at": self.received_at,
        }
        if with_rows:
            out["rows"] = list(self.rows)
        return out


@dataclass
class Audience:
    custom_audience_id: str
    advertiser_id: str
    name: str
    calculate_type: str
    audience_sub_type: str
    retention_in_days: int
    created_at: float
    built_at: float
    members: set[str] = field(default_factory=set)
    file_paths: list[str] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)


@dataclass
class Subscription:
    subscription_id: str
    app_id: str
    entity: str  # AD | AD_GROUP
    object_id: str  # the ad id or the ad group id
    advertiser_id: str
    access_token: str
    callback_url: str


def _now_text(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime(TIME_FORMAT)


class AdsSandbox(SandboxState):
    """The sandbox's state and behaviour. One lock guards all of it; webhooks are posted outside it."""

    behaviour: AdsBehaviour

    def __init__(self, behaviour: AdsBehaviour | None = None) -> None:
        super().__init__(behaviour or AdsBehaviour())
        self.apps: dict[str, App] = {}
        self.advertisers: dict[str, Advertiser] = {}
        self.codes: dict[str, AuthCode] = {}
        self.tokens: dict[str, Token] = {}
        self.campaigns: dict[str, dict] = {}
        self.adgroups: dict[str, dict] = {}
        self.ads: dict[str, dict] = {}
        self.images: dict[str, dict] = {}
        self.image_bytes: dict[str, bytes] = {}
        self.files: dict[str, AudienceFile] = {}
        self.audiences: dict[str, Audience] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self.idempotency: dict[tuple[str, str, str], dict] = {}  # (advertiser, kind, request_id) -> the answer
        self.requests: deque[dict] = deque(maxlen=KEPT_REQUESTS)
        self.second: tuple[int, int] = (0, 0)  # (unix second, calls in it) for `rate_limit_qps`

    # --- setup -----------------------------------------------------------------------------------------------

    def add_app(self, spec: Any) -> App:
        """Register (or replace) an app from `{"app_id", "secret", "name"?, "redirect_uri(s)"?,
        "review_webhook_url"?}`; raises ValueError."""
        if not isinstance(spec, dict):
            raise ValueError("an app must be a JSON object")
        app_id, secret = spec.get("app_id"), spec.get("secret")
        if not isinstance(app_id, str) or not app_id or not isinstance(secret, str) or not secret:
            raise ValueError("app_id and secret are required strings")
        uris = redirect_uris(spec)
        hook = spec.get("review_webhook_url", "")
        if hook and (not isinstance(hook, str) or not is_url(hook)):
            raise ValueError("review_webhook_url must be an absolute http(s) URL")
        name = spec.get("name") or "Sandbox ads app"
        if not isinstance(name, str):
            raise ValueError("name must be a string")
        app = App(app_id=app_id, secret=secret, name=name, redirect_uris=uris, review_webhook_url=hook or "")
        with self.lock:
            self.apps[app_id] = app
        return app

    def add_advertiser(self, spec: Any) -> Advertiser:
        """Register (or rename) an ad account from `{"advertiser_id", "advertiser_name", "currency"?,
        "timezone"?}`; raises ValueError."""
        if not isinstance(spec, dict):
            raise ValueError("an advertiser must be a JSON object")
        advertiser_id, name = spec.get("advertiser_id"), spec.get("advertiser_name")
        if not isinstance(advertiser_id, str) or not advertiser_id.isdigit():
            raise ValueError("advertiser_id is a required string of digits (a 64-bit id)")
        if not isinstance(name, str) or not name:
            raise ValueError("advertiser_name is a required string")
        currency, zone = spec.get("currency", "USD"), spec.get("timezone", "UTC")
        if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
            raise ValueError("currency must be a 3-letter ISO code")
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ValueError("timezone must be an IANA time zone name") from None
        advertiser = Advertiser(advertiser_id, name, currency, zone)
        with self.lock:
            self.advertisers[advertiser_id] = advertiser
        return advertiser

    # --- OAuth (§2.2) ----------------------------------------------------------------------------------------

    def app_for_authorize(self, app_id: str, redirect_uri: str) -> App:
        app = self.apps.get(app_id)
        if app is None:
            raise ValueError(f"unknown app_id {app_id!r}")
        if not is_url(redirect_uri):
            raise ValueError("redirect_uri must be an absolute http(s) URL")
        if app.redirect_uris and redirect_uri not in app.redirect_uris:
            raise ValueError("redirect_uri is not registered for this app")
        return app

    def issue_code(self, *, app: App, advertiser_ids: list[str], redirect_uri: str) -> str:
        code = payloads.token()
        with self.lock:
            self.codes[code] = AuthCode(
                app.app_id, advertiser_ids, redirect_uri, self.now() + self.behaviour.auth_code_ttl_s
            )
        self.count("oauth_codes_issued")
        return code

    def _app(self, app_id: Any, secret: Any) -> App:
        if not isinstance(app_id, str) or not app_id or not isinstance(secret, str) or not secret:
            raise ApiError(payloads.PARAM_ERROR, "app_id and secret are required")
        app = self.apps.get(app_id)
        if app is None or not secrets.compare_digest(app.secret.encode(), secret.encode()):
            raise ApiError(payloads.PERMISSION_ERROR, "app_id or secret is wrong")
        return app

    def exchange_code(self, body: dict) -> dict:
        """`POST /oauth2/access_token/ {"app_id", "secret", "auth_code"}` → a long-term advertiser token."""
        if not body.get("auth_code"):
            raise ApiError(payloads.PARAM_ERROR, "auth_code is required")
        app = self._app(body.get("app_id"), body.get("secret"))
        with self.lock:
            code = self.codes.get(str(body["auth_code"]))
            if code is None or code.used or code.app_id != app.app_id or self.now() >= code.expires_at:
                self.count("oauth_code_rejected")
                raise ApiError(payloads.AUTH_CODE_ERROR, "the auth_code is unknown, used or expired")
            code.used = True
            token = Token(payloads.token(), app.app_id, list(code.advertiser_ids), self.now())
            self.tokens[token.value] = token
        self.count("tokens_issued")
        return {
            "access_token": token.value,
            "advertiser_ids": list(token.advertiser_ids),
            "scope": payloads.ADVERTISER_SCOPE,
        }

    def revoke(self, body: dict) -> dict:
        app = self._app(body.get("app_id"), body.get("secret"))
        with self.lock:
            token = self.tokens.get(str(body.get("access_token") or ""))
            if token is None or token.app_id != app.app_id or token.revoked:
                raise ApiError(payloads.ACCESS_TOKEN_INVALID, "the access_token is unknown or revoked")
            token.revoked = True
        self.count("tokens_revoked")
        return {"app_id": app.app_id, "advertiser_ids": list(token.advertiser_ids)}

    def token(self, value: str) -> Token:
        """The live token of an `Access-Token` header (40104 empty, 40105 unknown or revoked)."""
        with self.lock:
            if self.behaviour.take("invalid_token_next"):
                self.count("fault_invalid_token")
                raise ApiError(payloads.ACCESS_TOKEN_INVALID, "sandbox fault")
            if not value:
                raise ApiError(payloads.ACCESS_TOKEN_EMPTY, "send the token in the Access-Token header")
            token = self.tokens.get(value)
            if token is None or token.revoked:
                raise ApiError(payloads.ACCESS_TOKEN_INVALID, "the access token is unknown or revoked")
            return token

    def authenticate(self, value: str, advertiser_id: Any) -> Advertiser:
        """The advertiser a call is for, after the token: 40300 unknown advertiser, 40001 not granted to it."""
        token = self.token(value)
        if not isinstance(advertiser_id, str | int) or isinstance(advertiser_id, bool) or not str(advertiser_id):
            raise ApiError(payloads.PARAM_ERROR, "advertiser_id is required")
        advertiser = self.advertisers.get(str(advertiser_id))
        if advertiser is None:
            raise ApiError(payloads.ADVERTISER_NOT_EXIST, f"advertiser {advertiser_id} does not exist")
        if advertiser.advertiser_id not in token.advertiser_ids:
            raise ApiError(payloads.PERMISSION_ERROR, f"the token has no access to advertiser {advertiser_id}")
        return advertiser

    def authorized_advertisers(self, value: str, app_id: Any, secret: Any) -> dict:
        token = self.token(value)
        app = self._app(app_id, secret)
        if token.app_id != app.app_id:
            raise ApiError(payloads.PERMISSION_ERROR, "the token belongs to another app")
        items = [self.advertisers[a] for a in token.advertiser_ids if a in self.advertisers]
        return {"list": [{"advertiser_id": a.advertiser_id, "advertiser_name": a.advertiser_name} for a in items]}

    def advertiser_info(self, value: str, advertiser_ids: list[str], fields: list[str]) -> dict:
        token = self.token(value)
        found = []
        for advertiser_id in advertiser_ids:
            if advertiser_id not in token.advertiser_ids or advertiser_id not in self.advertisers:
                raise ApiError(payloads.PERMISSION_ERROR, f"the token has no access to advertiser {advertiser_id}")
            a = self.advertisers[advertiser_id]
            info = {
                "advertiser_id": a.advertiser_id,
                "name": a.advertiser_name,
                "currency": a.currency,
                "timezone": a.timezone,
                "display_timezone": a.timezone,
                "status": "STATUS_ENABLE",
                "role": "ROLE_ADVERTISER",
            }
            found.append({k: v for k, v in info.items() if not fields or k in fields or k == "advertiser_id"})
        return {"list": found}

    # --- creates: common --------------------------------------------------------------------------------------

    def _refusal(self) -> None:
        with self.lock:
            refuse = self.behaviour.take("refuse_next_creates")
            code, message = self.behaviour.refuse_code, self.behaviour.refuse_message
        if refuse:
            self.count("fault_refused")
            raise ApiError(code, message)

    def _replayed(self, advertiser: Advertiser, kind: str, body: dict) -> dict | None:
        """§7.1: a create retried with the same `request_id` answers what the first one did."""
        key = body.get("request_id")
        if key is None:
            return None
        if not isinstance(key, str) or not key.isdigit():
            raise ApiError(payloads.PARAM_ERROR, "request_id must be a 64-bit integer as a string")
        answer = self.idempotency.get((advertiser.advertiser_id, kind, key))
        if answer is not None:
            self.count("idempotent_replays")
        return answer

    def _remember(self, advertiser: Advertiser, kind: str, body: dict, answer: dict) -> None:
        if isinstance(body.get("request_id"), str):
            self.idempotency[(advertiser.advertiser_id, kind, body["request_id"])] = answer

    # --- campaigns (§7.1) -------------------------------------------------------------------------------------

    def campaign_create(self, token: str, body: dict) -> dict:
        advertiser = self.authenticate(token, body.get("advertiser_id"))
        with self.lock:
            replay = self._replayed(advertiser, "campaign", body)
            if replay is not None:
                return replay
            self._refusal()
            name = _text(body, "campaign_name", 512, required=True)
            if EMOJI.search(name):
                raise ApiError(payloads.PARAM_ERROR, "campaign_name must not contain emoji")
            objective = _choice(body, "objective_type", OBJECTIVES, required=True)
            budget_mode = _choice(body, "budget_mode", BUDGET_MODES, required=objective != "RF_REACH")
            budget = _budget(body, budget_mode)
            status = _choice(body, "operation_status", OPERATION_STATUSES) or "ENABLE"
            now = self.now()
            campaign = {
                "advertiser_id": advertiser.advertiser_id,
                "campaign_id": payloads.numeric_id(),
                "campaign_name": name,
                "objective_type": objective,
                "budget_mode": budget_mode or "BUDGET_MODE_INFINITE",
                "budget": budget,
                "operation_status": status,
                "secondary_status": f"CAMPAIGN_STATUS_{status}",
                "create_time": _now_text(now),
                "modify_time": _now_text(now),
            }
            self.campaigns[campaign["campaign_id"]] = campaign
            answer = dict(campaign)
            self._remember(advertiser, "campaign", body, answer)
        self.count("campaigns_created")
        return answer

    def _owned(self, table: dict[str, dict], kind: str, advertiser: Advertiser, object_id: Any) -> dict:
        item = table.get(str(object_id)) if isinstance(object_id, str | int) else None
        if item is None or item["advertiser_id"] != advertiser.advertiser_id:
            raise ApiError(payloads.NOT_EXIST, f"{kind} {object_id} does not exist")
        return item

    def campaign_update(self, token: str, body: dict) -> dict:
        advertiser = self.authenticate(token, body.get("advertiser_id"))
        with self.lock:
            campaign = self._owned(self.campaigns, "campaign", advertiser, body.get("campaign_id"))
            if campaign["operation_status"] == "DELETE":
                raise ApiError(payloads.PARAM_ERROR, f"campaign {campaign['campaign_id']} is deleted")
            if "campaign_name" in body:
                campaign["campaign_name"] = _text(body, "campaign_name", 512, required=True)
            if "budget" in body:
                campaign["budget"] = _budget(body, campaign["budget_mode"])
            campaign["modify_time"] = _now_text(self.now())
            return dict(campaign)

    def _status_update(self, token: str, body: dict, table: dict[str, dict], kind: str, ids_field: str) -> dict:
        """`/<kind>/status/update/`: 1-20 ids, ENABLE | DISABLE | DELETE; a deleted object cannot change again;
        deleting cascades to the children (their `operation_status` becomes DELETE too)."""
        advertiser = self.authenticate(token, body.get("advertiser_id"))
        ids = body.get(ids_field)
        if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_IDS_PER_STATUS_UPDATE:
            raise ApiError(payloads.PARAM_ERROR, f"{ids_field} must be a list of 1-{MAX_IDS_PER_STATUS_UPDATE} ids")
        action = _choice(body, "operation_status", STATUS_ACTIONS, required=True)
        with self.lock:
            items = [self._owned(table, kind, advertiser, i) for i in ids]
            for item in items:
                if item["operation_status"] == "DELETE":
                    raise ApiError(payloads.PARAM_ERROR, f"{kind} {item[kind + '_id']} is deleted")
            now = _now_text(self.now())
            for item in items:
                self._set_status(kind, item, action, now)
        self.count(f"{kind}_status_{action.lower()}", len(items))
        return {ids_field: [str(i) for i in ids], "status": action}

    def _set_status(self, kind: str, item: dict, action: str, now: str) -> None:
        item["operation_status"] = action
        item["modify_time"] = now
        if kind == "ad":
            if action == "DELETE" or item["secondary_status"] not in ("AD_STATUS_AUDIT", "AD_STATUS_AUDIT_DENY"):
                item["secondary_status"] = {"ENABLE": "AD_STATUS_DELIVERY_OK", "DISABLE": "AD_STATUS_DISABLE"}.get(
                    action, "AD_STATUS_DELETE"
                )
        else:
            item["secondary_status"] = f"{kind.upper()}_STATUS_{action}"
        if action != "DELETE":
            return
        if kind == "campaign":
            for adgroup in self.adgroups.values():
                if adgroup["campaign_id"] == item["campaign_id"] and adgroup["operation_status"] != "DELETE":
                    self._set_status("adgroup", adgroup, action, now)
        if kind == "adgroup":
            for ad in self.ads.values():
                if ad["adgroup_id"] == item["adgroup_id"] and ad["operation_status"] != "DELETE":
                    self._set_status("ad", ad, action, now)

    def campaign_status(self, token: str, body: dict) -> dict:
        return self._status_update(token, body, self.campaigns, "campaign", "campaign_ids")

    def campaign_get(self, token: str, query: dict[str, str]) -> dict:
        advertiser = self.authenticate(token, query.get("advertiser_id"))
        filtering = _json_object(query, "filtering")
        return self._list(self.campaigns, advertiser, query, filtering, "campaign")

    # --- ad groups (§7.2) -------------------------------------------------------------------------------------

    def adgroup_create(self, token: str, body: dict) -> dict:
        advertiser = self.authenticate(token, body.get("advertiser_id"))
        with self.lock:
            replay = self._replayed(advertiser, "adgroup", body)
            if replay is not None:
                return replay
            self._refusal()
            campaign = self._owned(self.campaigns, "campaign", advertiser, body.get("campaign_id"))
            if campaign["operation_status"] == "DELETE":
                raise ApiError(payloads.PARAM_ERROR, f"campaign {campaign['campaign_id']} is deleted")
            adgroup = {
                "advertiser_id": advertiser.advertiser_id,
                "campaign_id": campaign["campaign_id"],
                "adgroup_id": payloads.numeric_id(),
                "adgroup_name": _text(body, "adgroup_name", 512, required=True),
                "budget_mode": _choice(body, "budget_mode", BUDGET_MODES, required=True),
                "billing_event": _text(body, "billing_event", 64, required=True),
                "optimization_goal": _text(body, "optimization_goal", 64, required=True),
                "pacing": _choice(body, "pacing", PACINGS, required=True),
                "schedule_type": _choice(body, "schedule_type", SCHEDULE_TYPES, required=True),
                "placement_type": _choice(body, "placement_type", PLACEMENT_TYPES) or "PLACEMENT_TYPE_AUTOMATIC",
                "placements": _strings(body, "placements"),
                "location_ids": _strings(body, "location_ids"),
                "age_groups": _strings(body, "age_groups", AGE_GROUPS),
                "gender": _choice(body, "gender", GENDERS) or "GENDER_UNLIMITED",
                "languages": _strings(body, "languages"),
                "interest_category_ids": _strings(body, "interest_category_ids"),
                "audience_ids": self._audience_ids(advertiser, body, "audience_ids"),
                "excluded_audience_ids": self._audience_ids(advertiser, body, "excluded_audience_ids"),
            }
            adgroup["budget"] = _budget(body, adgroup["budget_mode"], required=True)
            start = _time(body, "schedule_start_time", required=True)
            end = _time(body, "schedule_end_time", required=adgroup["schedule_type"] == "SCHEDULE_START_END")
            if end is not None and end <= start:
                raise ApiError(payloads.PARAM_ERROR, "schedule_end_time must be after schedule_start_time")
            adgroup["schedule_start_time"] = start.strftime(TIME_FORMAT)
            adgroup["schedule_end_time"] = end.strftime(TIME_FORMAT) if end else None
            dayparting = body.get("dayparting")
            if dayparting is not None and (
                not isinstance(dayparting, str) or not re.fullmatch(r"[01]{336}", dayparting)
            ):
                raise ApiError(payloads.PARAM_ERROR, "dayparting must be a string of 336 characters 0 or 1")
            adgroup["dayparting"] = dayparting
            status = _choice(body, "operation_status", OPERATION_STATUSES) or "ENABLE"
            now = _now_text(self.now())
            adgroup.update(
                operation_status=status,
                secondary_status=f"ADGROUP_STATUS_{status}",
                create_time=now,
                modify_time=now,
            )
            self.adgroups[adgroup["adgroup_id"]] = adgroup
            answer = dict(adgroup)
            self._remember(advertiser, "adgroup", body, answer)
        self.count("adgroups_created")
        return answer

    def _audience_ids(self, advertiser: Advertiser, body: dict, name: str) -> list[str]:
        ids = _strings(body, name)
        for audience_id in ids:
            audience = self.audiences.get(audience_id)
            if audience is None or audience.advertiser_id != advertiser.advertiser_id:
                raise ApiError(payloads.NOT_EXIST, f"{name}: audience {audience_id} does not exist")
        return ids

    def adgroup_status(self, token: str, body: dict) -> dict:
        return self._status_update(token, body, self.adgroups, "adgroup", "adgroup_ids")

    def adgroup_get(self, token: str, query: dict[str, str]) -> dict:
        advertiser = self.authenticate(token, query.get("advertiser_id"))
        return self._list(self.adgroups, advertiser, query, _json_object(query, "filtering"), "adgroup")

    # --- ads (§7.3) ---------------------------------------------------------------------------------------------

    def ad_create(self, token: str, body: dict) -> dict:
        advertiser = self.authenticate(token, body.get("advertiser_id"))
        with self.lock:
            replay = self._replayed(advertiser, "ad", body)
            if replay is not None:
                return replay
            self._refusal()
            adgroup = self._owned(self.adgroups, "adgroup", advertiser, body.get("adgroup_id"))
            if adgroup["operation_status"] == "DELETE":
                raise ApiError(payloads.PARAM_ERROR, f"adgroup {adgroup['adgroup_id']} is deleted")
            creatives = body.get("creatives")
            if not isinstance(creatives, list) or not creatives or not all(isinstance(c, dict) for c in creatives):
                raise ApiError(payloads.PARAM_ERROR, "creatives is a required, non-empty list of objects")
            if len(creatives) > MAX_ADS_PER_CALL:
                raise ApiError(payloads.PARAM_ERROR, f"at most {MAX_ADS_PER_CALL} creatives per call")
            existing = sum(
                1
                for a in self.ads.values()
                if a["adgroup_id"] == adgroup["adgroup_id"] and a["operation_status"] != "DELETE"
            )
            if existing + len(creatives) > MAX_ADS_PER_ADGROUP:
                raise ApiError(payloads.AD_NUMBER_LIMIT, f"an ad group holds at most {MAX_ADS_PER_ADGROUP} ads")
            built = [self._creative(advertiser, adgroup, c, n) for n, c in enumerate(creatives)]
            for ad in built:
                self.ads[ad["ad_id"]] = ad
            answer = {"ad_ids": [a["ad_id"] for a in built], "creatives": [dict(a) for a in built]}
            self._remember(advertiser, "ad", body, answer)
        self.count("ads_created", len(built))
        return answer

    def _creative(self, advertiser: Advertiser, adgroup: dict, creative: dict, n: int) -> dict:
        def where(reason: str) -> ApiError:
            return ApiError(payloads.PARAM_ERROR, f"creatives[{n}].{reason}")

        try:
            ad_name = _text(creative, "ad_name", 512, required=True)
            ad_format = _choice(creative, "ad_format", AD_FORMATS, required=True)
            identity_type = _choice(creative, "identity_type", IDENTITY_TYPES)
            ad_text = _text(creative, "ad_text", 100)
            image_ids = _strings(creative, "image_ids")
            url = creative.get("landing_page_url")
        except ApiError as error:
            raise where(error.reason) from None
        if url is not None and (not isinstance(url, str) or not is_url(url)):
            raise where("landing_page_url must be an absolute http(s) URL")
        for image_id in image_ids:
            image = self.images.get(image_id)
            if image is None or image["advertiser_id"] != advertiser.advertiser_id:
                raise ApiError(payloads.NOT_EXIST, f"creatives[{n}].image_ids: image {image_id} does not exist")
        if ad_format in ("SINGLE_IMAGE", "CAROUSEL_ADS") and not image_ids:
            raise where(f"image_ids is required for {ad_format}")
        if ad_format == "SINGLE_VIDEO" and not (creative.get("video_id") or creative.get("tiktok_item_id")):
            raise where("video_id (or tiktok_item_id for Spark Ads) is required for SINGLE_VIDEO")
        now = _now_text(self.now())
        status = _choice(creative, "operation_status", OPERATION_STATUSES) or "ENABLE"
        return {
            "advertiser_id": advertiser.advertiser_id,
            "campaign_id": adgroup["campaign_id"],
            "adgroup_id": adgroup["adgroup_id"],
            "ad_id": payloads.numeric_id(),
            "ad_name": ad_name,
            "ad_format": ad_format,
            "ad_text": ad_text,
            "identity_type": identity_type,
            "identity_id": creative.get("identity_id"),
            "video_id": creative.get("video_id"),
            "tiktok_item_id": creative.get("tiktok_item_id"),
            "image_ids": image_ids,
            "call_to_action": creative.get("call_to_action"),
            "landing_page_url": url,
            "operation_status": status,
            "secondary_status": "AD_STATUS_AUDIT",  # under review until /sandbox/review decides
            "reject_reason": "",
            "create_time": now,
            "modify_time": now,
        }

    def ad_status(self, token: str, body: dict) -> dict:
        return self._status_update(token, body, self.ads, "ad", "ad_ids")

    def ad_get(self, token: str, query: dict[str, str]) -> dict:
        advertiser = self.authenticate(token, query.get("advertiser_id"))
        return self._list(self.ads, advertiser, query, _json_object(query, "filtering"), "ad")

    # --- get with filtering and paging ------------------------------------------------------------------------

    def _list(self, table: dict[str, dict], advertiser: Advertiser, query: dict, filtering: dict, kind: str) -> dict:
        """Filtering: `<kind>_ids` and the parents' ids (lists), `<kind>_name` (substring), `objective_type`,
        `primary_status` (default STATUS_NOT_DELETE; STATUS_ALL, STATUS_DELETE, STATUS_DELIVERY_OK = enabled,
        STATUS_DISABLE), `secondary_status`, `creation_filter_start_time` / `_end_time`. `fields` picks keys."""
        fields = _json_list(query, "fields")
        page, page_size = _paging(query)
        with self.lock:
            items = [dict(i) for i in table.values() if i["advertiser_id"] == advertiser.advertiser_id]
        for id_name in ("campaign_ids", "adgroup_ids", "ad_ids"):
            if id_name in filtering:
                wanted = filtering[id_name]
                if not isinstance(wanted, list) or len(wanted) > 100:
                    raise ApiError(payloads.PARAM_ERROR, f"filtering.{id_name} must be a list of at most 100 ids")
                key = id_name[:-1]
                items = [i for i in items if key in i and i[key] in {str(w) for w in wanted}]
        name = filtering.get(f"{kind}_name")
        if name is not None:
            items = [i for i in items if str(name).lower() in i[f"{kind}_name"].lower()]
        if "objective_type" in filtering and kind == "campaign":
            items = [i for i in items if i["objective_type"] == filtering["objective_type"]]
        primary = filtering.get("primary_status", "STATUS_NOT_DELETE")
        keep = {
            "STATUS_NOT_DELETE": lambda i: i["operation_status"] != "DELETE",
            "STATUS_ALL": lambda i: True,
            "STATUS_DELETE": lambda i: i["operation_status"] == "DELETE",
            "STATUS_DELIVERY_OK": lambda i: i["operation_status"] == "ENABLE",
            "STATUS_DISABLE": lambda i: i["operation_status"] == "DISABLE",
        }.get(primary)
        if keep is None:
            raise ApiError(payloads.PARAM_ERROR, "filtering.primary_status is not a known status")
        items = [i for i in items if keep(i)]
        if "secondary_status" in filtering:
            items = [i for i in items if i["secondary_status"] == filtering["secondary_status"]]
        for bound, test in (("creation_filter_start_time", "__ge__"), ("creation_filter_end_time", "__le__")):
            if bound in filtering:
                limit = _time(filtering, bound, required=True).strftime(TIME_FORMAT)
                items = [i for i in items if getattr(i["create_time"], test)(limit)]
        items.reverse()  # newest first (the tables keep creation order)
        total = len(items)
        chunk = items[(page - 1) * page_size : page * page_size]
        if fields:
            chunk = [{k: v for k, v in i.items() if k in fields} for i in chunk]
        return {"list": chunk, "page_info": _page_info(page, page_size, total)}

    # --- images (§7.4) ----------------------------------------------------------------------------------------

    def image_upload(self, token: str, form: dict[str, bytes], base_url: str) -> dict:
        advertiser = self.authenticate(token, form.get("advertiser_id", b"").decode("utf-8", "replace"))
        self._refusal()
        upload_type = form.get("upload_type", b"UPLOAD_BY_FILE").decode("utf-8", "replace") or "UPLOAD_BY_FILE"
        if upload_type not in UPLOAD_TYPES:
            raise ApiError(payloads.PARAM_ERROR, f"upload_type must be one of {', '.join(UPLOAD_TYPES)}")
        if upload_type == "UPLOAD_BY_FILE":
            data = form.get("image_file", b"")
            if not data:
                raise ApiError(payloads.FILE_EMPTY, "image_file is required and must not be empty")
            signature = form.get("image_signature", b"").decode("utf-8", "replace").lower()
            if signature != hashlib.md5(data).hexdigest():  # noqa: S324 - TikTok's signature is MD5
                raise ApiError(payloads.FILE_SIGNATURE_ERROR, "image_signature must be the MD5 hex of image_file")
        elif upload_type == "UPLOAD_BY_URL":
            data = _fetch(form.get("image_url", b"").decode("utf-8", "replace"))
        else:
            raise ApiError(payloads.PARAM_ERROR, "the sandbox takes UPLOAD_BY_FILE and UPLOAD_BY_URL only")
        kind = payloads.sniff_image(data)
        if kind not in ("image/jpeg", "image/png"):
            raise ApiError(payloads.FILE_TYPE_UNSUPPORTED, "the image must be JPG, JPEG or PNG")
        width, height = _image_size(data)
        if width * height > MAX_IMAGE_PIXELS:
            raise ApiError(payloads.PARAM_ERROR, f"the image has {width}x{height} pixels, over {MAX_IMAGE_PIXELS}")
        md5 = hashlib.md5(data).hexdigest()  # noqa: S324
        file_name = form.get("file_name", b"").decode("utf-8", "replace") or f"{md5}.{kind.split('/')[1]}"
        if not 1 <= len(file_name) <= 100:
            raise ApiError(payloads.PARAM_ERROR, "file_name must be 1-100 characters")
        with self.lock:
            taken = {i["file_name"] for i in self.images.values() if i["advertiser_id"] == advertiser.advertiser_id}
            if file_name in taken:
                raise ApiError(payloads.DUPLICATED_MATERIAL_NAME, f"file_name {file_name!r} is already used")
            image_id = f"ad-site-i18n-sg/{secrets.token_hex(12)}"
            image = {
                "advertiser_id": advertiser.advertiser_id,
                "image_id": image_id,
                "material_id": payloads.numeric_id(),
                "width": width,
                "height": height,
                "format": "png" if kind == "image/png" else "jpeg",
                "image_url": f"{base_url}/sandbox/images/{image_id}",
                "signature": md5,
                "size": len(data),
                "file_name": file_name,
            }
            self.images[image_id] = image
            self.image_bytes[image_id] = data
        self.count("images_uploaded")
        return {k: v for k, v in image.items() if k != "advertiser_id"}

    # --- custom audiences (§7.6) --------------------------------------------------------------------------------

    def audience_file_upload(self, token: str, form: dict[str, bytes]) -> dict:
        """Every file is recorded (with its rows) before it is judged, so that a test can see what was sent."""
        advertiser = self.authenticate(token, form.get("advertiser_id", b"").decode("utf-8", "replace"))
        self._refusal()
        data = form.get("file", b"")
        calculate_type = form.get("calculate_type", b"").decode("utf-8", "replace")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ApiError(payloads.FILE_TYPE_UNSUPPORTED, "the file must be UTF-8 text (.csv or .txt)") from None
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        header = lines.pop(0) if lines and _is_header(lines[0]) else ""
        rows = [cell.strip() for line in lines for cell in line.split(",") if cell.strip()]
        pattern = HEX.get(calculate_type.rsplit("_", 1)[-1]) if calculate_type != "MULTIPLE_TYPES" else HEX["SHA256"]
        not_hashed = sum(1 for r in rows if pattern is None or not pattern.fullmatch(r))
        md5 = hashlib.md5(data).hexdigest()  # noqa: S324 - TikTok's file_signature is MD5
        name = form.get("name", b"").decode("utf-8", "replace")
        received = AudienceFile(
            file_path=f"dmp/{advertiser.advertiser_id}/{secrets.token_hex(12)}.csv",
            advertiser_id=advertiser.advertiser_id,
            calculate_type=calculate_type,
            name=name,
            md5=md5,
            size=len(data),
            header=header,
            rows=rows,
            not_hashed=not_hashed,
            accepted=False,
            received_at=self.now(),
        )
        with self.lock:
            self.files[received.file_path] = received
        self.count("audience_files_received")
        if not data:
            raise ApiError(payloads.FILE_EMPTY, "file is required and must not be empty")
        if form.get("file_signature", b"").decode("utf-8", "replace").lower() != md5:
            raise ApiError(payloads.FILE_SIGNATURE_ERROR, "file_signature must be the MD5 hex of the file")
        if not_hashed:
            self.count("audience_rows_not_hashed", not_hashed)
            raise ApiError(
                payloads.PII_NOT_HASHED,
                f"{not_hashed} of {len(rows)} entries are not {calculate_type} hashes (lowercase hex expected)",
            )
        minimum = self.behaviour.audience_min_rows
        if len(rows) < minimum:
            raise ApiError(payloads.PARAM_ERROR, f"the file has {len(rows)} entries; at least {minimum} are needed")
        with self.lock:
            received.accepted = True
        self.count("audience_files_accepted")
        return {"file_path": received.file_path}

    def _usable_files(self, advertiser: Advertiser, body: dict, calculate_type: str | None) -> list[AudienceFile]:
        paths = body.get("file_paths")
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
            raise ApiError(payloads.PARAM_ERROR, "file_paths must be a non-empty list of file paths")
        found = []
        for path in paths:
            received = self.files.get(path)
            if received is None or not received.accepted or received.advertiser_id != advertiser.advertiser_id:
                raise ApiError(payloads.FILE_NOT_EXIST, f"file_path {path} does not exist for this advertiser")
            if calculate_type and received.calculate_type != calculate_type:
                raise ApiError(
                    payloads.CALCULATE_TYPE_ERROR,
                    f"{path} was uploaded as {received.calculate_type}, not {calculate_type}",
                )
            found.append(received)
        return found

    def audience_create(self, token: str, body: dict) -> dict:
        advertiser = self.authenticate(token, body.get("advertiser_id"))
        self._refusal()
        name = _text(body, "custom_audience_name", 128, required=True)
        calculate_type = _text(body, "calculate_type", 32, required=True)
        retention = body.get("retention_in_days", 365)
        if isinstance(retention, bool) or not isinstance(retention, int) or not 1 <= retention <= 365:
            raise ApiError(payloads.PARAM_ERROR, "retention_in_days must be an integer 1-365")
        sub_type = _choice(body, "audience_sub_type", ("NORMAL", "REACH_FREQUENCY")) or "NORMAL"
        with self.lock:
            files = self._usable_files(advertiser, body, calculate_type)
            members = {r.lower() for f in files for r in f.rows}
            self._check_size(len(members))
            now = self.now()
            audience = Audience(
                custom_audience_id=payloads.numeric_id(),
                advertiser_id=advertiser.advertiser_id,
                name=name,
                calculate_type=calculate_type,
                audience_sub_type=sub_type,
                retention_in_days=retention,
                created_at=now,
                built_at=now + self.behaviour.audience_build_s,
                members=members,
                file_paths=[f.file_path for f in files],
            )
            audience.history.append(_history("CREATE", f"{len(members)} entries from {len(files)} file(s)", now))
            self.audiences[audience.custom_audience_id] = audience
        self.count("audiences_created")
        return {"custom_audience_id": audience.custom_audience_id}

    def _check_size(self, size: int) -> None:
        minimum = self.behaviour.audience_min_rows
        if size < minimum:
            raise ApiError(payloads.PARAM_ERROR, f"the audience would have {size} entries; at least {minimum}")

    def audience_update(self, token: str, body: dict) -> dict:
        """`action` defaults to REPLACE (§7.6); APPEND adds, REMOVE subtracts; never below the minimum."""
        advertiser = self.authenticate(token, body.get("advertiser_id"))
        with self.lock:
            audience = self.audiences.get(str(body.get("custom_audience_id") or ""))
            if audience is None or audience.advertiser_id != advertiser.advertiser_id:
                raise ApiError(payloads.NOT_EXIST, f"custom audience {body.get('custom_audience_id')} does not exist")
            action = _choice(body, "action", AUDIENCE_ACTIONS) or "REPLACE"
            if "custom_audience_name" in body:
                audience.name = _text(body, "custom_audience_name", 128, required=True)
            if "file_paths" in body:
                files = self._usable_files(advertiser, body, audience.calculate_type)
                rows = {r.lower() for f in files for r in f.rows}
                members = {
                    "REPLACE": rows,
                    "APPEND": audience.members | rows,
                    "REMOVE": audience.members - rows,
                }[action]
                self._check_size(len(members))
                audience.members = members
                audience.file_paths += [f.file_path for f in files]
                audience.history.append(_history(action, f"{len(rows)} entries from {len(files)} file(s)", self.now()))
        self.count(f"audiences_{action.lower()}")
        return {}

    def audience_get(self, token: str, query: dict[str, str]) -> dict:
        advertiser = self.authenticate(token, query.get("advertiser_id"))
        ids = _json_list(query, "custom_audience_ids")
        if not ids:
            raise ApiError(payloads.PARAM_ERROR, "custom_audience_ids is required")
        history_size = query.get("history_size") or "5"
        if not history_size.isdigit():
            raise ApiError(payloads.PARAM_ERROR, "history_size must be a number")
        now = self.now()
        found = []
        with self.lock:
            for audience_id in ids:
                audience = self.audiences.get(audience_id)
                if audience is None or audience.advertiser_id != advertiser.advertiser_id:
                    raise ApiError(payloads.NOT_EXIST, f"custom audience {audience_id} does not exist")
                valid = now >= audience.built_at
                details = {
                    "audience_id": audience.custom_audience_id,
                    "name": audience.name,
                    "type": "Customer File",
                    "calculate_type": audience.calculate_type,
                    "audience_sub_type": audience.audience_sub_type,
                    "cover_num": len(audience.members),
                    "create_time": _now_text(audience.created_at),
                    "expired_time": _now_text(audience.created_at + audience.retention_in_days * 86_400),
                    "is_valid": valid,
                    "is_expiring": False,
                    "is_creator": True,
                    "is_auto_refresh": False,
                    "shared": False,
                    "owner_id": advertiser.advertiser_id,
                    "msg": "" if valid else "Audience is being built",
                    "error_msg": "",
                }
                history = audience.history[-int(history_size) :] if int(history_size) else []
                found.append({"audience_details": details, "audience_history": list(reversed(history))})
        return {"list": found}

    # --- reports (§7.5) -----------------------------------------------------------------------------------------

    def report(self, token: str, query: dict[str, str]) -> dict:
        """The synchronous integrated report, BASIC only: a row per object (per day with `stat_time_day`),
        metrics as strings. Every ad has figures every day up to today (the advertiser's time zone), whatever its
        status: deterministic by ad id and date, growing day by day; higher levels sum their ads."""
        if query.get("report_type") != "BASIC":
            raise ApiError(payloads.PARAM_ERROR, "the sandbox serves report_type BASIC only")
        if query.get("advertiser_ids") or query.get("bc_id"):
            raise ApiError(payloads.PARAM_ERROR, "the sandbox takes advertiser_id (one advertiser) only")
        advertiser = self.authenticate(token, query.get("advertiser_id"))
        level = query.get("data_level") or ""
        if level not in LEVEL_DIMENSION:
            raise ApiError(payloads.PARAM_ERROR, f"data_level must be one of {', '.join(LEVEL_DIMENSION)}")
        dimensions = _json_list(query, "dimensions")
        id_dimension = LEVEL_DIMENSION[level]
        if not dimensions or set(dimensions) - {id_dimension, "stat_time_day"} or id_dimension not in dimensions:
            raise ApiError(
                payloads.PARAM_ERROR, f'dimensions must be ["{id_dimension}"] or ["{id_dimension}","stat_time_day"]'
            )
        metrics = _json_list(query, "metrics") or list(DEFAULT_METRICS)
        unknown = set(metrics) - set(KNOWN_METRICS)
        if unknown:
            raise ApiError(payloads.PARAM_ERROR, f"unknown metrics: {', '.join(sorted(unknown))}")
        today = datetime.now(ZoneInfo(advertiser.timezone)).date()
        if query.get("query_lifetime") == "true":
            if "stat_time_day" in dimensions:
                raise ApiError(payloads.PARAM_ERROR, "query_lifetime cannot be combined with stat_time_day")
            start, end = REPORT_ORIGIN, today
        else:
            start, end = _date(query, "start_date"), _date(query, "end_date")
            if end < start:
                raise ApiError(payloads.PARAM_ERROR, "end_date must not be before start_date")
            if "stat_time_day" in dimensions and (end - start).days + 1 > MAX_REPORT_DAYS:
                raise ApiError(payloads.PARAM_ERROR, f"at most {MAX_REPORT_DAYS} days with stat_time_day")
        page, page_size = _paging(query)
        wanted = _report_filter(query)
        with self.lock:
            ads = [dict(a) for a in self.ads.values() if a["advertiser_id"] == advertiser.advertiser_id]
            campaigns = {k: dict(v) for k, v in self.campaigns.items()}
            adgroups = {k: dict(v) for k, v in self.adgroups.items()}
        ads = [a for a in ads if all(a[key] in ids for key, ids in wanted.items())]
        days = [start + timedelta(n) for n in range((min(end, today) - start).days + 1)] if start <= today else []
        groups: dict[tuple, dict] = {}
        for ad in ads:  # in creation order
            owner = ad["advertiser_id"] if id_dimension == "advertiser_id" else ad[id_dimension]
            for day in days:
                key = (owner, day) if "stat_time_day" in dimensions else (owner,)
                sums = groups.setdefault(key, {"ad": ad, **dict.fromkeys(SUM_METRICS, Decimal(0))})
                for name, value in _figures(ad["ad_id"], day).items():
                    sums[name] += value
        rows = []
        for key, sums in groups.items():
            dims = {id_dimension: key[0]}
            if "stat_time_day" in dimensions:
                dims["stat_time_day"] = f"{key[1].isoformat()} 00:00:00"
            rows.append({"dimensions": dims, "metrics": _metric_strings(sums, metrics, campaigns, adgroups, level)})
        order_field = query.get("order_field")
        if order_field:
            if order_field not in SUM_METRICS + RATIO_METRICS:
                raise ApiError(payloads.PARAM_ERROR, "order_field must be a numeric metric")
            if order_field not in metrics:
                raise ApiError(payloads.PARAM_ERROR, "order_field must be one of the metrics asked")
            reverse = (query.get("order_type") or "DESC") == "DESC"
            rows.sort(key=lambda r: Decimal(r["metrics"][order_field]), reverse=reverse)
        total = len(rows)
        answer: dict[str, Any] = {
            "list": rows[(page - 1) * page_size : page * page_size],
            "page_info": _page_info(page, page_size, total),
        }
        if query.get("enable_total_metrics") == "true":
            total_sums = {name: sum((g[name] for g in groups.values()), Decimal(0)) for name in SUM_METRICS}
            numeric = [m for m in metrics if m in SUM_METRICS + RATIO_METRICS]
            answer["total_metrics"] = _metric_strings(total_sums, numeric, campaigns, adgroups, level)
        self.count("reports_served")
        return answer

    # --- review subscriptions and webhooks (§7.7) -------------------------------------------------------------

    def subscribe(self, body: dict) -> dict:
        app = self._app(body.get("app_id"), body.get("secret"))
        entity = _choice(body, "subscribe_entity", ("AD", "AD_GROUP"), required=True)
        url = body.get("callback_url")
        if not isinstance(url, str) or not is_url(url):
            raise ApiError(payloads.PARAM_ERROR, "callback_url must be an absolute http(s) URL")
        detail = body.get("subscription_detail")
        if not isinstance(detail, dict):
            raise ApiError(payloads.PARAM_ERROR, "subscription_detail is a required object")
        token_value = str(detail.get("access_token") or "")
        advertiser = self.authenticate(token_value, detail.get("advertiser_id"))
        if self.tokens[token_value].app_id != app.app_id:
            raise ApiError(payloads.PERMISSION_ERROR, "the access_token belongs to another app")
        table, kind, id_field = (
            (self.ads, "ad", "ad_id") if entity == "AD" else (self.adgroups, "adgroup", "adgroup_id")
        )
        with self.lock:
            item = self._owned(table, kind, advertiser, detail.get(id_field))
            subscription = Subscription(
                subscription_id=payloads.numeric_id(),
                app_id=app.app_id,
                entity=entity,
                object_id=item[id_field],
                advertiser_id=advertiser.advertiser_id,
                access_token=token_value,
                callback_url=url,
            )
            self.subscriptions[subscription.subscription_id] = subscription
        self.count("subscriptions_created")
        return {"subscription_id": subscription.subscription_id}

    def unsubscribe(self, body: dict) -> dict:
        app = self._app(body.get("app_id"), body.get("secret"))
        with self.lock:
            subscription = self.subscriptions.get(str(body.get("subscription_id") or ""))
            if subscription is None or subscription.app_id != app.app_id:
                raise ApiError(payloads.NOT_EXIST, f"subscription {body.get('subscription_id')} does not exist")
            del self.subscriptions[subscription.subscription_id]
        return {"subscription_id": subscription.subscription_id}

    def review(self, options: Any) -> dict:
        """Control: `{"ad_id", "decision": "approve"|"reject", "reject_reason"?}` decides the ad's review and posts
        the signed webhook to every live subscription of the ad (object 3) or its ad group (object 2), and to every
        app's `review_webhook_url`. Approval: `secondary_status` AD_STATUS_DELIVERY_OK (AD_STATUS_DISABLE when
        paused) and `reject_reason` ""; rejection: AD_STATUS_AUDIT_DENY and the reason."""
        if not isinstance(options, dict):
            raise ValueError("the body must be a JSON object")
        decision = options.get("decision")
        if decision not in ("approve", "reject"):
            raise ValueError("decision must be approve or reject")
        reason = options.get("reject_reason") or (
            "Ad content does not meet the ad policies" if decision == "reject" else ""
        )
        if not isinstance(reason, str):
            raise ValueError("reject_reason must be a string")
        with self.lock:
            ad = self.ads.get(str(options.get("ad_id") or ""))
            if ad is None:
                raise ValueError(f"unknown ad_id {options.get('ad_id')!r}")
            if ad["operation_status"] == "DELETE":
                raise ValueError(f"ad {ad['ad_id']} is deleted")
            if decision == "approve":
                ad["secondary_status"] = (
                    "AD_STATUS_DELIVERY_OK" if ad["operation_status"] == "ENABLE" else "AD_STATUS_DISABLE"
                )
                ad["reject_reason"] = ""
            else:
                ad["secondary_status"] = "AD_STATUS_AUDIT_DENY"
                ad["reject_reason"] = reason
            ad["modify_time"] = _now_text(self.now())
            campaign, adgroup = self.campaigns[ad["campaign_id"]], self.adgroups[ad["adgroup_id"]]
            entry = {
                "log_id": secrets.token_hex(16),
                "adv_id": int(ad["advertiser_id"]),  # a JSON number, as TikTok sends it
                "campaign_id": ad["campaign_id"],
                "campaign_name": campaign["campaign_name"],
                "adgroup_id": ad["adgroup_id"],
                "adgroup_name": adgroup["adgroup_name"],
                "ad_id": ad["ad_id"],
                "ad_name": ad["ad_name"],
                "reject_reason": ad["reject_reason"],
            }
            targets: list[tuple[App, str, int]] = []
            for s in self.subscriptions.values():
                token = self.tokens.get(s.access_token)
                if token is None or token.revoked or s.app_id not in self.apps:
                    continue  # §7.7: a revoked token ends its subscriptions
                if (s.entity, s.object_id) in (("AD", ad["ad_id"]), ("AD_GROUP", ad["adgroup_id"])):
                    kind = payloads.OBJECT_AD_REVIEW if s.entity == "AD" else payloads.OBJECT_ADGROUP_REVIEW
                    targets.append((self.apps[s.app_id], s.callback_url, kind))
            targets += [
                (a, a.review_webhook_url, payloads.OBJECT_AD_REVIEW) for a in self.apps.values() if a.review_webhook_url
            ]
            unique = list({(app.app_id, url, kind): (app, url, kind) for app, url, kind in targets}.values())
            public = dict(ad)
        self.count(f"reviews_{decision}d")
        deliveries = []
        for app, url, kind in unique:
            body = json.dumps(payloads.review_webhook(object_kind=kind, entries=[entry])).encode()
            deliveries.append(self._attempt(app, url, body, 1))
        return {"ad": public, "deliveries": deliveries}

    def _attempt(self, app: App, url: str, body: bytes, attempt: int) -> dict:
        """POST one review webhook; a non-200 answer is tried again after `webhook_retry_ms × 2^(n-1)`."""
        with self.lock:
            signed = self.behaviour.sign_review_webhooks
        headers = {"Content-Type": "application/json", "User-Agent": "tiktok-ads-sandbox"}
        if signed:
            headers["TikTok-Signature"] = payloads.signature_header(app.secret, body, int(time.time()))
        return self.post_webhook(
            url,
            body,
            headers,
            attempt,
            record={"body": body.decode()},
            counter="review_webhooks",
            what="ads sandbox: review",
            again=lambda: self._attempt(app, url, body, attempt + 1),
        )

    # --- rate limit, request log, control ----------------------------------------------------------------------

    def admit(self) -> bool:
        """`rate_limit_qps`: False when this call is over the per-second limit (§9)."""
        with self.lock:
            limit = self.behaviour.rate_limit_qps
            if not limit:
                return True
            second = int(time.time())
            calls = self.second[1] + 1 if self.second[0] == second else 1
            self.second = (second, calls)
            return calls <= limit

    def record(self, entry: dict) -> None:
        with self.lock:
            self.requests.append(entry)
        self.count("requests_received")

    def control(self, body: Any) -> dict:
        """`{"reset": true}`, `{"set": {...}}`, `{"revoke_token": <token>|"*"}`."""
        with self.lock:
            self.control_switches(body, {"revoke_token"})
            if "revoke_token" in body:
                target = body["revoke_token"]
                if target != "*" and target not in self.tokens:
                    raise ValueError('revoke_token takes a token or "*"')
                for token in self.tokens.values():
                    if target in ("*", token.value):
                        token.revoked = True
        return self.state()

    def state(self) -> dict:
        with self.lock:
            return {
                "behaviour": self.behaviour.as_dict(),
                "counters": dict(self.counters),
                "apps": [a.public() for a in self.apps.values()],
                "advertisers": [a.public() for a in self.advertisers.values()],
                # Sandbox tokens, not anyone's secrets: listed so that tests can follow them.
                "tokens": [
                    {"token": t.value, "app_id": t.app_id, "advertiser_ids": t.advertiser_ids, "revoked": t.revoked}
                    for t in self.tokens.values()
                ],
                "campaigns": list(self.campaigns.values()),
                "adgroups": list(self.adgroups.values()),
                "ads": list(self.ads.values()),
                "images": list(self.images.values()),
                "audiences": [
                    {
                        "custom_audience_id": a.custom_audience_id,
                        "advertiser_id": a.advertiser_id,
                        "name": a.name,
                        "calculate_type": a.calculate_type,
                        "size": len(a.members),
                        "file_paths": list(a.file_paths),
                    }
                    for a in self.audiences.values()
                ],
                "audience_files": [f.public(with_rows=False) for f in self.files.values()],
                "subscriptions": [
                    {
                        "subscription_id": s.subscription_id,
                        "entity": s.entity,
                        "object_id": s.object_id,
                        "url": s.callback_url,
                    }
                    for s in self.subscriptions.values()
                ],
                "webhooks": [{k: v for k, v in d.items() if k != "body"} for d in list(self.deliveries)[-50:]],
                "scheduled_jobs": self.scheduler.pending(),
                "idle": self.scheduler.idle,
            }

    def received_requests(self, path_contains: str = "") -> dict:
        """The API requests kept (the last KEPT_REQUESTS; `received` counts every one), those whose path contains
        `path_contains` if given."""
        with self.lock:
            kept = [r for r in self.requests if path_contains in r["path"]]
            return {"received": self.counters.get("requests_received", 0), "requests": kept}

    def received_files(self) -> dict:
        with self.lock:
            return {"files": [f.public() for f in self.files.values()]}

    def webhooks(self) -> dict:
        with self.lock:
            return {"webhooks": list(self.deliveries)}


# --- helpers ---------------------------------------------------------------------------------------------------


def _is_header(line: str) -> bool:
    """A first line naming the ID type (`EMAIL_SHA256`, `email`); never something shaped like a digest."""
    return bool(HEADER_ROW.fullmatch(line)) and not re.fullmatch(r"[0-9a-fA-F]{32,}", line)


def _history(action: str, detail: str, at: float) -> dict:
    return {"action": action, "action_detail": detail, "editor": "API", "msg": "", "opt_time": _now_text(at)}


def _text(body: dict, name: str, max_len: int, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise ApiError(payloads.PARAM_ERROR, f"{name} is required")
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise ApiError(payloads.PARAM_ERROR, f"{name} must be a string of at most {max_len} characters")
    return value


def _choice(body: dict, name: str, allowed: tuple[str, ...], *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise ApiError(payloads.PARAM_ERROR, f"{name} is required")
        return None
    if value not in allowed:
        raise ApiError(payloads.PARAM_ERROR, f"{name} must be one of {', '.join(allowed)}")
    return value


def _strings(body: dict, name: str, allowed: tuple[str, ...] | None = None) -> list[str]:
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ApiError(payloads.PARAM_ERROR, f"{name} must be a list of strings")
    if allowed and set(value) - set(allowed):
        raise ApiError(payloads.PARAM_ERROR, f"{name} takes {', '.join(allowed)}")
    return list(value)


def _budget(body: dict, budget_mode: str | None, *, required: bool = False) -> float | None:
    value = body.get("budget")
    needed = required or budget_mode in ("BUDGET_MODE_DAY", "BUDGET_MODE_TOTAL", "BUDGET_MODE_DYNAMIC_DAILY_BUDGET")
    if budget_mode == "BUDGET_MODE_INFINITE":
        needed = False
    if value is None:
        if needed:
            raise ApiError(payloads.PARAM_ERROR, f"budget is required with {budget_mode}")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ApiError(payloads.PARAM_ERROR, "budget must be a positive number")
    return float(value)


def _time(body: dict, name: str, *, required: bool = False) -> datetime | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise ApiError(payloads.PARAM_ERROR, f"{name} is required")
        return None
    try:
        return datetime.strptime(str(value), TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise ApiError(payloads.PARAM_ERROR, f"{name} must be UTC YYYY-MM-DD HH:MM:SS") from None


def _date(query: dict, name: str) -> date:
    value = query.get(name)
    if not value:
        raise ApiError(payloads.PARAM_ERROR, f"{name} is required (YYYY-MM-DD) unless query_lifetime is true")
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise ApiError(payloads.PARAM_ERROR, f"{name} must be YYYY-MM-DD") from None


def _json_value(query: dict[str, str], name: str) -> Any:
    raw = query.get(name)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(payloads.PARAM_ERROR, f"{name} must be JSON-encoded in the query string") from None


def _json_list(query: dict[str, str], name: str) -> list[str]:
    """A list parameter, JSON-encoded in the query string as the Business API wants (§1)."""
    value = _json_value(query, name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ApiError(payloads.PARAM_ERROR, f'{name} must be a JSON list of strings, e.g. ["a","b"]')
    return value


def _json_object(query: dict[str, str], name: str) -> dict:
    value = _json_value(query, name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiError(payloads.PARAM_ERROR, f"{name} must be a JSON object")
    return value


def _paging(query: dict[str, str]) -> tuple[int, int]:
    page, page_size = query.get("page") or "1", query.get("page_size") or "10"
    if not page.isdigit() or int(page) < 1:
        raise ApiError(payloads.PARAM_ERROR, "page must be a positive integer")
    if not page_size.isdigit() or not 1 <= int(page_size) <= MAX_PAGE_SIZE:
        raise ApiError(payloads.PARAM_ERROR, f"page_size must be 1-{MAX_PAGE_SIZE}")
    return int(page), int(page_size)


def _page_info(page: int, page_size: int, total: int) -> dict:
    return {"page": page, "page_size": page_size, "total_number": total, "total_page": -(-total // page_size)}


def _report_filter(query: dict[str, str]) -> dict[str, set[str]]:
    """`filtering`: [{field_name: campaign_ids|adgroup_ids|ad_ids, filter_type: IN, filter_value: '["…"]'}]."""
    value = _json_value(query, "filtering")
    if value is None:
        return {}
    if not isinstance(value, list) or not all(isinstance(f, dict) for f in value):
        raise ApiError(payloads.PARAM_ERROR, "filtering must be a JSON list of {field_name, filter_type, filter_value}")
    wanted = {}
    for f in value:
        name = f.get("field_name")
        if name not in ("campaign_ids", "adgroup_ids", "ad_ids") or f.get("filter_type") != "IN":
            raise ApiError(payloads.PARAM_ERROR, "the sandbox filters campaign_ids, adgroup_ids or ad_ids with IN")
        ids = f.get("filter_value")
        if isinstance(ids, str):
            try:
                ids = json.loads(ids)
            except ValueError:
                ids = None
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise ApiError(payloads.PARAM_ERROR, "filter_value must be a JSON list of 1-100 ids")
        wanted[name[:-1]] = {str(i) for i in ids}
    return wanted


def _figures(ad_id: str, day: date) -> dict[str, Decimal]:
    """One ad's day: a seed from the ad id, impressions growing by 25 a day from 2024-01-01."""
    seed = int(hashlib.sha256(ad_id.encode()).hexdigest()[:8], 16)
    n = max(0, (day - REPORT_ORIGIN).days)
    impressions = 800 + seed % 400 + 25 * n
    clicks = impressions * (100 + seed % 100) // 10_000
    conversions = clicks // (8 + seed % 5)
    cpm = Decimal(5 + seed % 5)
    spend = (Decimal(impressions) * cpm / 1000).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return {
        "spend": spend,
        "impressions": Decimal(impressions),
        "clicks": Decimal(clicks),
        "conversion": Decimal(conversions),
        "reach": Decimal(impressions * 4 // 5),
    }


def _ratio(numerator: Decimal, denominator: Decimal, scale: int = 1) -> str:
    if not denominator:
        return "0.00"
    return str((numerator * scale / denominator).quantize(Decimal("0.01"), ROUND_HALF_UP))


def _metric_strings(sums: dict, metrics: list[str], campaigns: dict, adgroups: dict, level: str) -> dict[str, str]:
    """Every value a string (§7.5): money with 2 decimals, counts as integers, ratios with 2 decimals."""
    spend, impressions, clicks, conversions = sums["spend"], sums["impressions"], sums["clicks"], sums["conversion"]
    values = {
        "spend": f"{spend:.2f}",
        "impressions": str(int(impressions)),
        "clicks": str(int(clicks)),
        "conversion": str(int(conversions)),
        "reach": str(int(sums["reach"])),
        "ctr": _ratio(clicks, impressions, 100),
        "cpc": _ratio(spend, clicks),
        "cpm": _ratio(spend, impressions, 1000),
        "cost_per_conversion": _ratio(spend, conversions),
        "conversion_rate": _ratio(conversions, clicks, 100),
    }
    ad = sums.get("ad")
    if ad is not None:
        campaign, adgroup = campaigns.get(ad["campaign_id"], {}), adgroups.get(ad["adgroup_id"], {})
        depth = ("AUCTION_ADVERTISER", "AUCTION_CAMPAIGN", "AUCTION_ADGROUP", "AUCTION_AD").index(level)
        if depth >= 1:
            values.update(
                campaign_id=ad["campaign_id"],
                campaign_name=campaign.get("campaign_name", ""),
                objective_type=campaign.get("objective_type", ""),
            )
        if depth >= 2:
            values.update(adgroup_id=ad["adgroup_id"], adgroup_name=adgroup.get("adgroup_name", ""))
        if depth >= 3:
            values["ad_name"] = ad["ad_name"]
    return {m: values[m] for m in metrics if m in values}


def _image_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG (IHDR) or a JPEG (the first SOF marker); (0, 0) if unreadable."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return int.from_bytes(data[i + 7 : i + 9], "big"), int.from_bytes(data[i + 5 : i + 7], "big")
        i += 2 + length
    return 0, 0


def _fetch(url: str) -> bytes:
    if not is_url(url):
        raise ApiError(payloads.PARAM_ERROR, "image_url must be an absolute http(s) URL")
    try:
        response = requests.get(url, timeout=10)
        response.raise_for_status()
    except requests.RequestException as exc:
        raise ApiError(payloads.URL_FETCH_ERROR, f"could not fetch image_url: {type(exc).__name__}") from None
    return response.content
