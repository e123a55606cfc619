"""Infobip's Subscriptions Management in the sandbox: security settings, notification profiles, subscriptions and the
webhook connection test, per API key, with bodies validated against the vendored spec
(`tiktok_channel/spec/subscriptions-openapi.json`).

The subscriptions decide where the sandbox posts webhooks and how it signs them (`Subscriptions.target`):

- an account with no security setting, profile or subscription here is one set up by hand in Infobip's portal:
  its webhooks go to the account's webhook URL with the account's own credentials, as before;
- once anything was created through this API, an event is posted only if a TIKTOK subscription lists its event
  (INBOUND_MESSAGE, DELIVERY, SEEN) and its profile exists: to the profile's URL (or the message's own
  `webhooks.*.url`), signed with the profile's security setting (HMAC: the `X-Hub-Signature` header, hex, over the
  raw body — the verifier's defaults, as Infobip does not document its own). A broken subscription
  (`subscriptions_broken`), a missing one or a missing profile: nothing is posted.

Fault switches (`Behaviour`): `refuse_api_key` (every API call 401), `subscription_fail_status` (creating or
updating a subscription answers this status; 400 reads as "channel not supported"), `subscriptions_broken`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import requests

from tiktok_channel import spec
from tiktok_channel.sandbox.accounts import SandboxAccount
from tiktok_channel.webhook_auth import WebhookAuth

if TYPE_CHECKING:
    from tiktok_channel.sandbox.server import Handler

PREFIX = "/subscriptions/1/"
KIND_EVENTS = {"inbound": "INBOUND_MESSAGE", "delivery": "DELIVERY", "seen": "SEEN"}
TIKTOK = "TIKTOK"
MAX_PAGE_SIZE = 100
CONNECTION_TEST_TIMEOUT = 5.0


def service_error(status_text: str, text: str, validation: dict[str, list[str]] | None = None) -> dict:
    """The Subscriptions spec's ApiException body."""
    details: dict = {"messageId": status_text, "text": text}
    if validation:
        details["validationErrors"] = validation
    return {"requestError": {"serviceException": details}}


@dataclass
class AccountSubscriptions:
    security: dict[str, dict]
    profiles: dict[str, dict]
    subscriptions: dict[tuple[str, str], dict]  # (channel, subscriptionId) -> subscription

    @property
    def managed(self) -> bool:
        return bool(self.security or self.profiles or self.subscriptions)


class Subscriptions:
    """The sandbox's Subscriptions Management state, keyed by API key."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.accounts: dict[str, AccountSubscriptions] = {}

    def of(self, account: SandboxAccount) -> AccountSubscriptions:
        with self.lock:
            return self.accounts.setdefault(account.api_key, AccountSubscriptions({}, {}, {}))

    def target(self, account: SandboxAccount, kind: str, url: str, *, broken: bool) -> SandboxAccount | None:
        """The account to post one webhook of `kind` as (its URL and credentials), or None: not posted."""
        state = self.of(account)
        with self.lock:
            if not state.managed:
                return replace(account, webhook_url=url or account.webhook_url)
            if broken:
                return None
            event = KIND_EVENTS.get(kind, "")
            for (channel, _), subscription in sorted(state.subscriptions.items()):
                if channel != TIKTOK or event not in subscription["events"]:
                    continue
                profile = state.profiles.get(subscription["profile"]["profileId"])
                if profile is None:
                    continue
                security = state.security.get((profile.get("security") or {}).get("authId", ""))
                return replace(account, webhook_url=url or profile["webhook"]["notifyUrl"], auth=webhook_auth(security))
            return None

    def summary(self) -> dict:
        with self.lock:
            return {
                "security": sum(len(s.security) for s in self.accounts.values()),
                "profiles": sum(len(s.profiles) for s in self.accounts.values()),
                "subscriptions": sum(len(s.subscriptions) for s in self.accounts.values()),
            }


def webhook_auth(security: dict | None) -> WebhookAuth:
    """How a profile's security setting signs: HMAC or Basic; none (or OAuth, not simulated): unsigned."""
    credentials = (security or {}).get("credentials") or {}
    kind = (security or {}).get("type")
    if kind == "HMAC":
        return WebhookAuth(mode="hmac", secret=credentials["secretKey"], hmac_algorithm=credentials["algorithm"])
    if kind == "BASIC":
        return WebhookAuth(mode="basic", secret="", username=credentials["username"], password=credentials["password"])
    return WebhookAuth(mode="header", secret="", signature_header="X-Unsigned")


class _Fault(Exception):
    def __init__(self, status: int, body: dict) -> None:
        super().__init__(status)
        self.status, self.body = status, body


def handle(handler: Handler, method: str, path: str) -> bool:
    """Answer a Subscriptions Management request; False if `path` is not one."""
    if not path.startswith(PREFIX):
        return False
    try:
        status, body = _dispatch(handler, method, path.removeprefix(PREFIX).split("/"))
    except _Fault as fault:
        status, body = fault.status, fault.body
    handler._send(status, body)
    return True


def _validated(handler: Handler, schema: str, channel: str = "") -> dict:
    body = handler._json_body()
    found = spec.violations(spec.subscriptions_validator(schema, channel), body)
    if found:
        validation: dict[str, list[str]] = {}
        for v in found:
            validation.setdefault(v["property"] or "body", []).append(v["violation"])
        raise _Fault(400, service_error("BAD_REQUEST", "Bad request", validation))
    return body


def _not_found(what: str, ident: str) -> _Fault:
    return _Fault(404, service_error("NOT_FOUND", f"{what} {ident} not found"))


def _page(handler: Handler, items: list[dict]) -> dict:
    query = parse_qs(urlsplit(handler.path).query)
    try:
        page = int((query.get("page") or ["0"])[0])
        size = int((query.get("size") or ["20"])[0])
    except ValueError:
        raise _Fault(400, service_error("BAD_REQUEST", "page and size must be integers")) from None
    if page < 0 or not 1 <= size <= MAX_PAGE_SIZE:
        raise _Fault(400, service_error("BAD_REQUEST", f"page >= 0, size 1-{MAX_PAGE_SIZE}"))
    chunk = items[page * size : (page + 1) * size]
    return {
        "results": chunk,
        "paging": {"page": page, "size": size, "totalPages": -(-len(items) // size), "totalResults": len(items)},
    }


def _dispatch(handler: Handler, method: str, parts: list[str]) -> tuple[int, dict]:
    sandbox = handler.server.sandbox
    with sandbox.lock:
        refused = sandbox.behaviour.refuse_api_key
        fail_status = sandbox.behaviour.subscription_fail_status
    if refused:
        sandbox.count("fault_refused_key")
        raise _Fault(401, service_error("UNAUTHORIZED", "Invalid login details"))
    account = handler._account()
    state = sandbox.subscriptions.of(account)
    lock = sandbox.subscriptions.lock
    head, rest = parts[0], parts[1:]
    sandbox.count(f"subscriptions_{method.lower()}_{head}")

    if head == "security" and len(rest) <= 1:
        return _crud(
            handler,
            method,
            rest,
            lock,
            state.security,
            "authId",
            "Security settings",
            "SecurityRequest",
            public=_public_security,
        )
    if head == "profiles" and len(rest) <= 1:
        if method in ("POST", "PUT"):
            body = _validated(handler, "ProfileRequest" if method == "POST" else "NoIdProfileRequest")
            auth_id = (body.get("security") or {}).get("authId")
            with lock:
                if auth_id and auth_id not in state.security:
                    raise _not_found("Security settings", auth_id)
            return _write(method, rest, lock, state.profiles, "profileId", "Profile", body, _id_only_profile)
        return _crud(handler, method, rest, lock, state.profiles, "profileId", "Profile", "", public=dict)
    if head == "subscription" and 1 <= len(rest) <= 2:
        channel = rest[0]
        if channel not in spec.subscription_channels():
            raise _Fault(400, service_error("BAD_REQUEST", f"Unknown channel {channel}"))
        items = {sid: s for (ch, sid), s in state.subscriptions.items() if ch == channel}
        if method in ("POST", "PUT"):
            if fail_status:
                sandbox.count(f"fault_subscription_{fail_status}")
                text = f"Channel {channel} is not supported" if fail_status == 400 else "Something went wrong"
                raise _Fault(fail_status, service_error("BAD_REQUEST" if fail_status < 500 else "GENERAL_ERROR", text))
            body = _validated(
                handler, "SubscriptionRequest" if method == "POST" else "NoIdSubscriptionRequest", channel
            )
            profile_id = body["profile"]["profileId"]
            with lock:
                if profile_id not in state.profiles:
                    raise _not_found("Profile", profile_id)
            status, answer = _write(
                method, rest[1:], lock, items, "subscriptionId", "Subscription", body, _id_only_sub(state)
            )
            with lock:
                state.subscriptions = {k: v for k, v in state.subscriptions.items() if k[0] != channel}
                state.subscriptions.update({(channel, sid): s for sid, s in items.items()})
            return status, answer
        status, answer = _crud(
            handler, method, rest[1:], lock, items, "subscriptionId", "Subscription", "", public=dict
        )
        if method == "DELETE":
            with lock:
                state.subscriptions.pop((channel, rest[1]), None)
        return status, answer
    if head == "certificates" and rest == ["test", "webhook"] and method == "POST":
        body = _validated(handler, "CertificateConnectionTestRequest")
        return 200, _connection_test(body)
    raise _Fault(404, service_error("NOT_FOUND", "Not found"))


def _public_security(security: dict) -> dict:
    # Like Infobip, never hand a secret back.
    out = {k: v for k, v in security.items() if k != "credentials"}
    credentials = dict(security.get("credentials") or {})
    for secret in ("secretKey", "password", "clientSecret"):
        if secret in credentials:
            credentials[secret] = "*****"
    if credentials:
        out["credentials"] = credentials
    return out


def _id_only_profile(profile: dict) -> dict:
    out: dict = {"profileId": profile["profileId"]}
    if profile.get("security"):
        out["security"] = {"authId": profile["security"]["authId"]}
    return out


def _id_only_sub(state: AccountSubscriptions):
    def answer(subscription: dict) -> dict:
        profile = state.profiles.get(subscription["profile"]["profileId"]) or subscription["profile"]
        return {"subscriptionId": subscription["subscriptionId"], "profile": _id_only_profile(profile)}

    return answer


def _write(method, rest, lock, items, id_field, what, body, answer) -> tuple[int, dict]:
    with lock:
        if method == "POST":
            if rest:
                raise _Fault(405, service_error("METHOD_NOT_ALLOWED", "Use the collection URL"))
            ident = body[id_field]
            if ident in items:
                raise _Fault(400, service_error("BAD_REQUEST", f"{what} {ident} already exists"))
            items[ident] = dict(body)
            return 201, answer(items[ident])
        if len(rest) != 1:
            raise _Fault(405, service_error("METHOD_NOT_ALLOWED", "Use the item URL"))
        ident = rest[0]
        if ident not in items:
            raise _not_found(what, ident)
        items[ident] = {**items[ident], **body, id_field: ident}
        return 200, answer(items[ident])


def _crud(handler, method, rest, lock, items, id_field, what, schema, *, public) -> tuple[int, dict]:
    if method in ("POST", "PUT"):
        body = _validated(handler, schema if method == "POST" else f"NoId{schema}")
        return _write(method, rest, lock, items, id_field, what, body, lambda item: {id_field: item[id_field]})
    with lock:
        if method == "GET" and not rest:
            listed = [public(items[k]) for k in sorted(items)]
        elif rest and rest[0] in items:
            if method == "GET":
                return 200, public(items[rest[0]])
            if method == "DELETE":
                removed = items.pop(rest[0])
                return 200, {id_field: removed[id_field]}
            raise _Fault(405, service_error("METHOD_NOT_ALLOWED", "Method not allowed"))
        elif rest:
            raise _not_found(what, rest[0])
        else:
            raise _Fault(405, service_error("METHOD_NOT_ALLOWED", "Method not allowed"))
    return 200, _page(handler, listed)


def _connection_test(body: dict) -> dict:
    """Reach the URL as Infobip's test does (no client certificate here: the sandbox keeps none)."""
    url = body["webhookUrl"]
    answer = {"certificateId": body["certificateId"], "webhookUrl": url}
    try:
        response = requests.head(url, timeout=CONNECTION_TEST_TIMEOUT, allow_redirects=False)
    except requests.RequestException as exc:
        return {**answer, "result": "FAIL", "failReasons": [f"{type(exc).__name__}: {exc}"], "hint": "Check the URL."}
    # Any HTTP answer (our webhook says 405 to HEAD) proves the connection.
    return {**answer, "result": "SUCCESS", "failReasons": [], "hint": f"answered HTTP {response.status_code}"}
