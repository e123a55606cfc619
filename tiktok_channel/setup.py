"""One-step connection of an Infobip account through Infobip's Subscriptions Management API.

`account_setup(account_id)`:
  1. checks the API key (read-only calls: wrong key, missing scope, wrong base URL each get their own message);
  2. HMAC security settings with a strong generated secret (kept on later runs), then switches our verifier to them
     at once — Infobip signs with the new secret from that moment;
  3. a notification profile at the account's webhook URL using those security settings;
  4. a subscription on the account's channel (TIKTOK by default) for inbound messages, delivery and seen reports.

Infobip lets the caller choose the ids (`authId`, `profileId`, `subscriptionId`); ours are derived from the account,
so a rerun finds what an earlier run created (by the stored id, else by our id or, for the profile, our URL) and
updates it instead of creating a second one; an unchanged profile or subscription is not written again. Each id
Infobip returns is stored as soon as it confirms it, so a run that fails half-way leaves a state the next run repairs.

When Infobip refuses the subscription's channel (the vendored spec lists no TIKTOK), what was created is kept and
the account is marked *partial* with the exact step to finish in Infobip's portal; the health page confirms it once
events arrive.

`account_teardown(account_id)` deletes exactly what the setup created (the stored ids), newest first.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass, field

import requests
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from inbox.errors import ApplicationError
from tiktok_channel import health
from tiktok_channel.models import InfobipAccount
from tiktok_channel.subscriptions import (
    PROFILES_PATH,
    SECURITY_PATH,
    SubscriptionsClient,
    SubscriptionsError,
    subscription_path,
)
from tiktok_channel.webhook_auth import sign

logger = logging.getLogger(__name__)

ALGORITHM = InfobipAccount.HmacAlgorithm.HMAC_SHA_256
EVENTS = ["INBOUND_MESSAGE", "DELIVERY", "SEEN"]
ID_PREFIX = "tiktok-inbox-"
SETUP_LOCK_SECONDS = 120
TEST_TIMEOUT = 10.0

CREATED, UPDATED, UNCHANGED, DELETED, GONE, FAILED = "created", "updated", "unchanged", "deleted", "gone", "failed"


@dataclass
class SetupReport:
    state: str
    message: str = ""
    steps: list[dict] = field(default_factory=list)

    def step(self, name: str, outcome: str, detail: str = "") -> None:
        self.steps.append({"step": name, "outcome": outcome, **({"detail": detail} if detail else {})})

    def as_dict(self) -> dict:
        return {"state": self.state, "message": self.message, "steps": self.steps}


def our_id(account: InfobipAccount, kind: str) -> str:
    """The id we give Infobip for one of our objects: stable per account, not guessable from the account name."""
    digest = hashlib.sha256(f"{account.pk}:{account.webhook_token}".encode()).hexdigest()[:16]
    return f"{ID_PREFIX}{kind}-{digest}"


def subscription_name(account: InfobipAccount) -> str:
    return f"TikTok Inbox: {account.name}"[:255]


def portal_instructions(account: InfobipAccount, profile_id: str, reason: str) -> str:
    return (
        f"Infobip refused a {account.subscription_channel} subscription ({reason}). The security settings and the "
        f"notification profile '{profile_id}' are created. Finish in Infobip's portal: Subscriptions management → "
        f"Subscriptions → Create subscription: channel TikTok, events Inbound message, Delivery and Seen, "
        f"notification profile '{profile_id}'. The health page turns green once events arrive."
    )


def _save(account_id: int, **changes) -> InfobipAccount:
    """One small write of the account row (under its lock), so each confirmed step is kept at once."""
    with transaction.atomic():
        account = InfobipAccount.objects.select_for_update().get(pk=account_id)
        for name, value in changes.items():
            setattr(account, name, value)
        account.save(update_fields=list(changes))
    return account


def account_setup(account_id: int, *, channel: str | None = None) -> SetupReport:
    """Create or repair the account's webhook setup in Infobip. Never raises for Infobip trouble: the report (also
    stored on the account: `setup_state`, `setup_message`) says what happened and what to do."""
    lock = f"infobip:setup:{account_id}"
    if not cache.add(lock, 1, SETUP_LOCK_SECONDS):
        raise ApplicationError("setup_running", "a setup of this account is already running")
    try:
        account = InfobipAccount.objects.get(pk=account_id)
        if channel and channel != account.subscription_channel:
            account = _save(account_id, subscription_channel=channel)
        report = _run_setup(account)
    finally:
        cache.delete(lock)
    _save(account_id, setup_state=report.state, setup_message=report.message, setup_at=timezone.now())
    return report


def _run_setup(account: InfobipAccount) -> SetupReport:
    report = SetupReport(state=InfobipAccount.SetupState.COMPLETE)
    api = SubscriptionsClient(account)
    step = "key"
    try:
        api.check_key()
        report.step("key", "ok")
        step = "security"
        account = _security(api, account, report)
        step = "profile"
        account = _profile(api, account, report)
        step = "subscription"
        try:
            _subscription(api, account, report)
        except SubscriptionsError as exc:
            if exc.code not in ("refused", "not_found"):
                raise
            report.step("subscription", FAILED, exc.message)
            report.state = InfobipAccount.SetupState.PARTIAL
            report.message = portal_instructions(account, account.infobip_profile_id, exc.detail or exc.message)
            health.record_error(account.pk, exc.as_dict(), where="setup: subscription")
            return report
    except SubscriptionsError as exc:
        report.step(step, FAILED, exc.message)
        report.state = InfobipAccount.SetupState.FAILED
        report.message = f"Step '{step}' failed: {exc.message}. Run Set up again once fixed; what was created is kept."
        health.record_error(account.pk, exc.as_dict(), where=f"setup: {step}")
        return report
    report.message = (
        f"Infobip posts inbound messages, delivery and seen reports to {account.webhook_url}, "
        f"signed with {account.hmac_algorithm}."
    )
    return report


def _security(api: SubscriptionsClient, account: InfobipAccount, report: SetupReport) -> InfobipAccount:
    # A secret we generated before is kept (a rerun changes nothing); an account set up by hand with HMAC keeps its
    # secret too, so webhooks signed the old way still pass while Infobip switches.
    secret = account.webhook_secret if account.webhook_auth == "hmac" and account.webhook_secret else ""
    secret = secret or secrets.token_urlsafe(48)
    credentials = {"type": "HMAC", "credentials": {"secretKey": secret, "algorithm": ALGORITHM}}
    auth_id = account.infobip_security_id if account.infobip_security_id else ""
    existing = api.get(SECURITY_PATH, auth_id) if auth_id else None
    if existing is None:
        auth_id = our_id(account, "security")
        existing = api.get(SECURITY_PATH, auth_id)
    if existing is None:
        auth_id = api.create(SECURITY_PATH, {"authId": auth_id, **credentials}).get("authId") or auth_id
        report.step("security", CREATED, auth_id)
    else:
        # Infobip never hands a secret back, so it cannot be compared: write it (the same values: no change).
        api.update(SECURITY_PATH, auth_id, credentials)
        report.step("security", UPDATED if existing.get("type") != "HMAC" else UNCHANGED, auth_id)
    # Our verifier matches what Infobip now signs with: HMAC over the raw body, our algorithm and secret. The
    # header's name and encoding are not in Infobip's spec: an HMAC account keeps its own (an admin may have tuned
    # them after the first delivery); another mode's header (a static secret's) gives way to the defaults.
    changes: dict = {}
    if account.webhook_auth != InfobipAccount.AuthMode.HMAC:
        changes = {
            "signature_header": InfobipAccount._meta.get_field("signature_header").default,
            "signature_encoding": InfobipAccount.SignatureEncoding.HEX,
            "signature_prefix": "",
        }
    return _save(
        account.pk,
        infobip_security_id=auth_id,
        webhook_auth=InfobipAccount.AuthMode.HMAC,
        hmac_algorithm=ALGORITHM,
        webhook_secret=secret,
        **changes,
    )


def _profile(api: SubscriptionsClient, account: InfobipAccount, report: SetupReport) -> InfobipAccount:
    wanted = {
        "webhook": {"notifyUrl": account.webhook_url, "contentType": "application/json"},
        "security": {"authId": account.infobip_security_id},
    }
    profile_id = account.infobip_profile_id
    existing = api.get(PROFILES_PATH, profile_id) if profile_id else None
    if existing is None:
        profile_id = our_id(account, "profile")
        existing = api.get(PROFILES_PATH, profile_id)
    if existing is None:
        # An earlier run of ours whose id we lost: our prefix and our URL.
        existing = next(
            (
                p
                for p in api.list(PROFILES_PATH)
                if str(p.get("profileId", "")).startswith(ID_PREFIX)
                and (p.get("webhook") or {}).get("notifyUrl") == account.webhook_url
            ),
            None,
        )
        profile_id = existing["profileId"] if existing else profile_id
    if existing is None:
        profile_id = api.create(PROFILES_PATH, {"profileId": profile_id, **wanted}).get("profileId") or profile_id
        report.step("profile", CREATED, profile_id)
    elif (existing.get("webhook") or {}).get("notifyUrl") != account.webhook_url or (
        existing.get("security") or {}
    ).get("authId") != account.infobip_security_id:
        api.update(PROFILES_PATH, profile_id, wanted)
        report.step("profile", UPDATED, profile_id)
    else:
        report.step("profile", UNCHANGED, profile_id)
    return _save(account.pk, infobip_profile_id=profile_id)


def _subscription(api: SubscriptionsClient, account: InfobipAccount, report: SetupReport) -> InfobipAccount:
    path = subscription_path(account.subscription_channel)
    name = subscription_name(account)
    wanted = {"name": name, "events": EVENTS, "profile": {"profileId": account.infobip_profile_id}}
    subscription_id = account.infobip_subscription_id
    existing = api.get(path, subscription_id) if subscription_id else None
    if existing is None:
        subscription_id = our_id(account, "subscription")
        existing = api.get(path, subscription_id)
    if existing is None:
        existing = next((s for s in api.list(path) if s.get("name") == name), None)
        subscription_id = existing["subscriptionId"] if existing else subscription_id
    if existing is None:
        created = api.create(path, {"subscriptionId": subscription_id, **wanted})
        subscription_id = created.get("subscriptionId") or subscription_id
        report.step("subscription", CREATED, subscription_id)
    elif (
        sorted(e if isinstance(e, str) else e.get("event", "") for e in existing.get("events") or []) != sorted(EVENTS)
        or (existing.get("profile") or {}).get("profileId") != account.infobip_profile_id
        or existing.get("name") != name
    ):
        api.update(path, subscription_id, wanted)
        report.step("subscription", UPDATED, subscription_id)
    else:
        report.step("subscription", UNCHANGED, subscription_id)
    return _save(account.pk, infobip_subscription_id=subscription_id)


def account_teardown(account_id: int) -> SetupReport:
    """Delete in Infobip what the setup created (the stored ids only; subscription, profile, security settings), and
    forget each id once it is gone. Stops at the first failure, keeping the ids still to delete for the next run."""
    account = InfobipAccount.objects.get(pk=account_id)
    report = SetupReport(state=InfobipAccount.SetupState.MANUAL)
    api = SubscriptionsClient(account)
    steps = [
        ("subscription", "infobip_subscription_id", subscription_path(account.subscription_channel)),
        ("profile", "infobip_profile_id", PROFILES_PATH),
        ("security", "infobip_security_id", SECURITY_PATH),
    ]
    for name, field_name, path in steps:
        ident = getattr(account, field_name)
        if not ident:
            continue
        try:
            deleted = api.delete(path, ident)
        except SubscriptionsError as exc:
            report.step(name, FAILED, exc.message)
            report.state = InfobipAccount.SetupState.FAILED
            report.message = f"Removing the {name} '{ident}' failed: {exc.message}. Run it again."
            health.record_error(account.pk, exc.as_dict(), where=f"teardown: {name}")
            _save(account_id, setup_state=report.state, setup_message=report.message)
            return report
        report.step(name, DELETED if deleted else GONE, ident)
        account = _save(account_id, **{field_name: ""})
    report.message = "Removed from Infobip what the setup had created."
    _save(account_id, setup_state=report.state, setup_message=report.message, setup_at=timezone.now())
    return report


def account_disconnect(account_id: int) -> SetupReport:
    """Tear down, then deactivate the account (only when everything we created is gone)."""
    report = account_teardown(account_id)
    if report.state != InfobipAccount.SetupState.FAILED:
        _save(account_id, active=False)
    return report


def webhook_test(account_id: int) -> dict:
    """Infobip's connection test (needs a client certificate id), then a signed request of our own to the webhook
    URL: what Infobip would send, with an empty `results`. Recorded for the health page."""
    account = InfobipAccount.objects.get(pk=account_id)
    outcome: dict = {}
    if account.client_certificate_id:
        try:
            answer = SubscriptionsClient(account).connection_test(
                certificate_id=account.client_certificate_id, webhook_url=account.webhook_url
            )
            outcome["infobip"] = {
                "result": answer.get("result", "?"),
                "reasons": answer.get("failReasons") or [],
                "hint": answer.get("hint", ""),
            }
        except SubscriptionsError as exc:
            outcome["infobip"] = {"result": "ERROR", "reasons": [exc.message], "hint": ""}
    else:
        outcome["infobip"] = {
            "result": "SKIPPED",
            "reasons": ["Infobip's connection test needs a client certificate id (mutual TLS); none is set."],
            "hint": "",
        }
    body = b'{"results": []}'
    headers = {"Content-Type": "application/json", **sign(account.webhook_auth_settings(), body)}
    try:
        response = requests.post(account.webhook_url, data=body, headers=headers, timeout=TEST_TIMEOUT)
        ok = response.status_code == 200
        outcome["ours"] = {"result": "SUCCESS" if ok else "FAIL", "status": response.status_code}
        if not ok:
            outcome["ours"]["reason"] = response.text[:300]
    except requests.RequestException as exc:
        outcome["ours"] = {"result": "FAIL", "status": None, "reason": f"{type(exc).__name__}: {exc}"}
    outcome["ok"] = outcome["ours"]["result"] == "SUCCESS" and outcome["infobip"]["result"] in ("SUCCESS", "SKIPPED")
    health.record_test(account.pk, outcome)
    return outcome
