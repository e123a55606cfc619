"""Writes of the TikTok channel: connecting Infobip accounts and senders."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from inbox.errors import ApplicationError
from inbox.services import inbox_get_or_create
from tiktok_channel.models import InfobipAccount, TikTokSender


def account_create(
    *,
    name: str,
    base_url: str,
    api_key: str,
    sender_ids: list[str],
    auth: str = InfobipAccount.AuthMode.HMAC,
    hmac_algorithm: str = InfobipAccount.HmacAlgorithm.HMAC_SHA_256,
    signature_header: str = "",
    signature_encoding: str = InfobipAccount.SignatureEncoding.HEX,
    signature_prefix: str = "",
    secret: str = "",
    username: str = "",
    password: str = "",
    inbox_name: str = "",
    secret_from_setup: bool = False,
) -> InfobipAccount:
    """Create an account, its senders and (if needed) their inbox in one transaction.

    `secret_from_setup`: an HMAC account without a secret, to be set up through Infobip's API
    (`tiktok_channel.setup`), which generates it; until then every webhook is refused.
    Raises ApplicationError with a one-line message when the settings cannot work.
    """
    needs_secret = auth == InfobipAccount.AuthMode.HEADER or (
        auth == InfobipAccount.AuthMode.HMAC and not secret_from_setup
    )
    if needs_secret and not secret:
        raise ApplicationError("secret_required", f"--auth {auth} needs --secret")
    if auth == InfobipAccount.AuthMode.BASIC and not (username and password):
        raise ApplicationError("credentials_required", "--auth basic needs --username and --password")
    if auth == InfobipAccount.AuthMode.HEADER and not signature_header:
        raise ApplicationError("header_required", "--auth header needs --signature-header (the header's name)")
    if len(set(sender_ids)) != len(sender_ids):
        raise ApplicationError("duplicate_sender", "the same --sender is given twice")

    account = InfobipAccount(
        name=name,
        base_url=base_url.rstrip("/"),
        api_key=api_key,
        webhook_auth=auth,
        hmac_algorithm=hmac_algorithm,
        signature_encoding=signature_encoding,
        signature_prefix=signature_prefix,
        webhook_secret=secret,
        basic_username=username,
        basic_password=password,
    )
    if signature_header:
        account.signature_header = signature_header
    try:
        account.full_clean()
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise ApplicationError("invalid", f"{field}: {messages[0]}", fields=exc.message_dict) from None

    taken = list(
        TikTokSender.objects.filter(business_account_id__in=sender_ids).values_list("business_account_id", flat=True)
    )
    if taken:
        raise ApplicationError("sender_exists", f"sender {taken[0]} is already connected")

    try:
        with transaction.atomic():
            inbox = inbox_get_or_create(name=inbox_name or name)
            account.save()
            TikTokSender.objects.bulk_create(
                [TikTokSender(account=account, business_account_id=sid, inbox=inbox) for sid in sender_ids]
            )
    except IntegrityError:
        raise ApplicationError("conflict", "an account or sender with these values was created meanwhile") from None
    return account


def account_summary(account: InfobipAccount) -> dict:
    """What scripts may see of an account: never a secret."""
    return {
        "id": account.pk,
        "name": account.name,
        "base_url": account.base_url,
        "webhook_url": account.webhook_url,
        "webhook_auth": account.webhook_auth,
        "hmac_algorithm": account.hmac_algorithm if account.webhook_auth == "hmac" else None,
        "signature_header": account.signature_header if account.webhook_auth != "basic" else None,
        "active": account.active,
        "senders": [
            {"business_account_id": s.business_account_id, "inbox": s.inbox.name, "active": s.active}
            for s in account.senders.all()
        ],
    }
