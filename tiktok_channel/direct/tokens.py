"""A connection's tokens: connect (store a consent), refresh (rotating), re-authorization needed, disconnect.

The one rule: a connection's tokens change only under its row lock (`select_for_update`), and a refresh
is decided under that lock. TikTok's refresh token rotates (the old one dies when a new one is issued), so two
workers refreshing at once would otherwise both send the same refresh token and the loser would see the account
"revoked". Here the second one waits for the lock, then finds the token fresh (or no longer the one it had) and
uses it. The lock is held across TikTok's answer (a bounded, timed-out call), as Chatwoot holds its 30 s lock.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from inbox import outbox
from inbox.services import conversations_connection_changed
from tiktok_channel.direct import client
from tiktok_channel.direct.client import TikTokError
from tiktok_channel.direct.models import DIRECT_PROVIDER, TikTokApp, TikTokConnection

logger = logging.getLogger(__name__)

State = TikTokConnection.State

# What `refresh_connection` did.
REFRESHED = "refreshed"
NOT_DUE = "not_due"  # fresh enough, or another worker refreshed it first (the caller's token was replaced)
NOT_CONNECTED = "not_connected"
TRANSIENT = "transient"  # TikTok could not answer now; try again later, the connection stays connected
REAUTHORIZATION_NEEDED = "reauthorization_needed"


class ConnectError(Exception):
    """Connecting failed; the message is for the admin (never a token or secret)."""


def expiries(data: dict, now: datetime) -> tuple[datetime, datetime]:
    """When the access and refresh tokens of a token answer expire: from the lifetimes it carries (never
    hard-coded), else the documented shortest ones (settings)."""

    def seconds(key: str, default: int) -> int:
        value = data.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default

    access = seconds("expires_in", settings.TIKTOK_DIRECT_ACCESS_TOKEN_DEFAULT_SECONDS)
    refresh = seconds("refresh_token_expires_in", settings.TIKTOK_DIRECT_REFRESH_TOKEN_DEFAULT_SECONDS)
    return now + timedelta(seconds=access), now + timedelta(seconds=refresh)


def _token_fields(connection: TikTokConnection, data: dict, now: datetime) -> None:
    connection.access_token = str(data["access_token"])
    connection.refresh_token = str(data.get("refresh_token") or connection.refresh_token)
    connection.access_token_expires_at, connection.refresh_token_expires_at = expiries(data, now)
    if data.get("scope"):
        connection.scopes = str(data["scope"])
    connection.last_refreshed_at = now


def granted_scopes(data: dict) -> set[str]:
    scope = data.get("scope") or ""
    return {part.strip() for part in str(scope).split(",") if part.strip()}


def connect(*, app: TikTokApp, code: str, user) -> TikTokConnection:
    """Exchange an authorization code and store the business account's connection (new, or the same account
    again: reconnected), tokens and expiries in one transaction. Raises ConnectError and stores nothing when
    TikTok refuses the code, a required scope was not granted, or the answer lacks the account id."""
    try:
        data = client.exchange_code(app, code=code)
    except TikTokError as exc:
        if exc.kind == client.REAUTHORIZE:
            raise ConnectError(
                f"TikTok refused the authorization code ({exc}): it may have expired or been used already. "
                "Connect again."
            ) from None
        raise ConnectError(f"TikTok did not exchange the authorization code: {exc}") from None
    account_id = str(data.get("open_id") or "")
    if not account_id or not data.get("access_token"):
        raise ConnectError("TikTok's token answer has no account id or access token.")
    missing = sorted(set(settings.TIKTOK_DIRECT_REQUIRED_SCOPES) - granted_scopes(data))
    if missing:
        _revoke_quietly(app, str(data["access_token"]))
        raise ConnectError(
            f"The account did not grant {', '.join(missing)}: the inbox cannot work without. Connect again and "
            "keep every permission ticked."
        )
    profile = {}
    try:
        profile = client.business_profile(app, access_token=str(data["access_token"]), business_id=account_id)
    except TikTokError as exc:  # the name is for display only; the connection works without it
        logger.warning("TikTok profile of %s not fetched: %s", account_id, exc)
    now = timezone.now()
    with transaction.atomic():
        connection = TikTokConnection.objects.select_for_update().filter(account_id=account_id).first()
        held = connection is not None and connection.state == State.REAUTHORIZATION_NEEDED
        could_not_send = connection is not None and connection.state != State.CONNECTED
        if connection is None:
            connection = TikTokConnection(account_id=account_id)
        connection.app = app
        _token_fields(connection, data, now)
        connection.display_name = str(profile.get("display_name") or connection.display_name)[:200]
        connection.username = str(profile.get("username") or connection.username)[:200]
        connection.state = State.CONNECTED
        connection.last_error = ""
        connection.connected_by = user if getattr(user, "pk", None) else None
        connection.connected_at = now
        connection.save()
        if could_not_send:
            transaction.on_commit(partial(_composers_changed, account_id))
        if held:
            # Replies that waited for this account go out now (in their order, by the outbox).
            transaction.on_commit(partial(outbox.release_held, provider=DIRECT_PROVIDER, endpoint_ids=[account_id]))
    logger.info("TikTok account %s connected to app %s", account_id, app.pk)
    return connection


def refresh_due(connection: TikTokConnection, now: datetime) -> bool:
    ahead = timedelta(seconds=settings.TIKTOK_DIRECT_REFRESH_AHEAD_SECONDS)
    expires = connection.access_token_expires_at
    return expires is None or expires - ahead <= now


def refresh_connection(connection_id: int, *, stale_access_token: str | None = None, force: bool = False) -> str:
    """Refresh one connection's tokens if it needs it, under its row lock; returns what happened.

    `stale_access_token`: TikTok refused this token; refresh unless the connection already has another one.
    Without it, refresh only when due (`force`: now). A refusal of the refresh token itself (revoked, expired)
    makes the connection *re-authorization needed*: admins are told, replies are held.
    """
    now = timezone.now()
    with transaction.atomic():
        connection = (
            TikTokConnection.objects.select_for_update(of=("self",))
            .select_related("app")
            .filter(pk=connection_id)
            .first()
        )
        if connection is None or connection.state != State.CONNECTED:
            return NOT_CONNECTED
        if stale_access_token is not None:
            if connection.access_token != stale_access_token:
                return NOT_DUE  # another worker refreshed it: the caller takes the new token
        elif not force and not refresh_due(connection, now):
            return NOT_DUE
        if connection.refresh_token_expires_at is not None and connection.refresh_token_expires_at <= now:
            reauthorization_needed(connection, "the refresh token expired: connect the account again")
            return REAUTHORIZATION_NEEDED
        try:
            data = client.refresh(connection.app, refresh_token=connection.refresh_token)
        except TikTokError as exc:
            if exc.kind in (client.RETRYABLE, client.THROTTLED):
                connection.last_error = f"refresh failed, will retry: {exc}"[:1000]
                connection.save(update_fields=["last_error", "updated_at"])
                logger.warning("TikTok token refresh of connection %s failed, will retry: %s", connection_id, exc)
                return TRANSIENT
            reauthorization_needed(connection, f"TikTok refused the token refresh: {exc}")
            return REAUTHORIZATION_NEEDED
        if not data.get("access_token"):
            connection.last_error = "refresh answer without an access token, will retry"
            connection.save(update_fields=["last_error", "updated_at"])
            return TRANSIENT
        _token_fields(connection, data, now)
        connection.last_error = ""
        connection.save()
    logger.info("TikTok tokens of connection %s refreshed", connection_id)
    return REFRESHED


def reauthorization_needed(connection: TikTokConnection, reason: str) -> None:
    """Mark a (locked, connected) connection as needing a new consent, and tell the admins once it commits."""
    connection.state = State.REAUTHORIZATION_NEEDED
    connection.last_error = reason[:1000]
    connection.save(update_fields=["state", "last_error", "updated_at"])
    logger.warning("TikTok connection %s needs re-authorization: %s", connection.pk, reason)
    transaction.on_commit(partial(notify_admins, connection.pk))
    transaction.on_commit(partial(_composers_changed, connection.account_id))


def _composers_changed(account_id: str) -> None:
    """Agents looking at this account's conversations refetch them: their composers lock or unlock."""
    try:
        conversations_connection_changed(provider=DIRECT_PROVIDER, endpoint_ids=[account_id])
    except Exception:  # noqa: BLE001 - a refetch on the next event or reload shows it anyway
        logger.exception("could not announce the state change of TikTok account %s", account_id)


def mark_reauthorization_needed(connection_id: int, reason: str) -> bool:
    """The same, for a caller without the lock (a send refused for a missing scope). True if it changed."""
    with transaction.atomic():
        connection = TikTokConnection.objects.select_for_update().filter(pk=connection_id).first()
        if connection is None or connection.state != State.CONNECTED:
            return False
        reauthorization_needed(connection, reason)
    return True


def admin_emails() -> list[str]:
    """Who is told: active superusers with an address, and settings.ADMINS."""
    users = get_user_model().objects.filter(is_active=True, is_superuser=True).exclude(email="")
    emails = {email for email in users.values_list("email", flat=True)}
    emails.update(email for _, email in settings.ADMINS)
    return sorted(emails)


def notify_admins(connection_id: int) -> None:
    """Email the admins that a connection needs re-authorization. Never raises (mail is best effort; the
    banner in admin and the inbox shows it anyway)."""
    connection = TikTokConnection.objects.select_related("app__inbox").filter(pk=connection_id).first()
    recipients = admin_emails()
    if connection is None or not recipients:
        return
    change_url = settings.PUBLIC_BASE_URL + reverse(
        "admin:tiktok_channel_tiktokconnection_change", args=[connection.pk]
    )
    body = (
        f"The TikTok account {connection} (inbox {connection.app.inbox}) must be connected again: "
        f"{connection.last_error}\n\n"
        "Until then agents cannot reply in this inbox; replies already written wait and are sent once it is "
        f"reconnected.\n\nReconnect: {connection.app.connect_url}\nConnection: {change_url}\n"
    )
    try:
        send_mail(f"TikTok account {connection} needs to be reconnected", body, None, recipients)
    except Exception:  # noqa: BLE001 - the banner still shows it
        logger.exception("could not email the admins about TikTok connection %s", connection_id)


def usable_access_token(connection: TikTokConnection) -> str | None:
    """An access token to call with: the stored one, refreshed first if our clock says it expired. None when the
    connection cannot call (not connected, or the refresh found it needs re-authorization)."""
    if connection.state != State.CONNECTED:
        return None
    expires = connection.access_token_expires_at
    if expires is not None and expires <= timezone.now():
        refresh_connection(connection.pk, stale_access_token=connection.access_token)
        connection.refresh_from_db()
        if connection.state != State.CONNECTED:
            return None
    return connection.access_token or None


def _revoke_quietly(app: TikTokApp, access_token: str) -> str:
    try:
        client.revoke(app, access_token=access_token)
    except TikTokError as exc:
        logger.warning("TikTok token revoke failed: %s", exc)
        return str(exc)
    return ""


def disconnect(connection_id: int) -> str:
    """Revoke the connection's token at TikTok and forget the tokens; returns TikTok's refusal ("" if none).
    Replies still queued for the account then fail (unavailable): an admin chose to stop it."""
    with transaction.atomic():
        connection = (
            TikTokConnection.objects.select_for_update(of=("self",)).select_related("app").get(pk=connection_id)
        )
        problem = ""
        if connection.access_token:
            problem = _revoke_quietly(connection.app, connection.access_token)
        connection.access_token = ""
        connection.refresh_token = ""
        connection.access_token_expires_at = connection.refresh_token_expires_at = None
        connection.state = State.DISCONNECTED
        connection.last_error = f"disconnected; TikTok's revoke answer: {problem}" if problem else "disconnected"
        connection.save()
        transaction.on_commit(
            partial(outbox.release_held, provider=DIRECT_PROVIDER, endpoint_ids=[connection.account_id])
        )
        transaction.on_commit(partial(_composers_changed, connection.account_id))
    return problem


def connections_due(now: datetime) -> list[int]:
    ahead = now + timedelta(seconds=settings.TIKTOK_DIRECT_REFRESH_AHEAD_SECONDS)
    return list(
        TikTokConnection.objects.filter(state=State.CONNECTED, access_token_expires_at__lte=ahead)
        .order_by("access_token_expires_at")
        .values_list("pk", flat=True)
    )
