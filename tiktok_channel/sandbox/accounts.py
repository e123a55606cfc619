"""Who the sandbox talks to: Infobip accounts by API key and by TikTok sender, with their webhook URL and auth."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from tiktok_channel.webhook_auth import WebhookAuth


@dataclass(frozen=True)
class SandboxAccount:
    name: str
    api_key: str
    webhook_url: str
    auth: WebhookAuth
    sender_ids: tuple[str, ...] = ()

    def __repr__(self) -> str:  # never show the API key
        return f"SandboxAccount({self.name!r}, webhook_url={self.webhook_url!r})"


class AccountDirectory(Protocol):
    def by_api_key(self, api_key: str) -> SandboxAccount | None: ...

    def by_sender(self, business_account_id: str) -> SandboxAccount | None: ...


class StaticAccounts:
    """Accounts given up front (tests, benchmarks, a sandbox without a database)."""

    def __init__(self, accounts: Iterable[SandboxAccount]) -> None:
        self.accounts = list(accounts)

    def by_api_key(self, api_key: str) -> SandboxAccount | None:
        return next((a for a in self.accounts if a.api_key == api_key), None)

    def by_sender(self, business_account_id: str) -> SandboxAccount | None:
        return next((a for a in self.accounts if business_account_id in a.sender_ids), None)


def account_from_model(account) -> SandboxAccount:
    """A SandboxAccount from an InfobipAccount row (its senders prefetched or not)."""
    return SandboxAccount(
        name=account.name,
        api_key=account.api_key,
        webhook_url=account.webhook_url,
        auth=account.webhook_auth_settings(),
        sender_ids=tuple(s.business_account_id for s in account.senders.all() if s.active),
    )


class DatabaseAccounts:
    """The project's active InfobipAccounts. API keys are encrypted at rest, so they are compared in Python over
    all active accounts; the result is cached and reloaded only when a key or sender is not found."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accounts: list[SandboxAccount] = []

    def _reload(self) -> None:
        from django.db import connection

        from tiktok_channel.models import InfobipAccount

        try:
            rows = InfobipAccount.objects.filter(active=True).prefetch_related("senders")
            self._accounts = [account_from_model(row) for row in rows]
        finally:
            # Sandbox threads come and go; do not leave their connections open.
            connection.close()

    def _find(self, match) -> SandboxAccount | None:
        with self._lock:
            found = next((a for a in self._accounts if match(a)), None)
            if found is None:
                self._reload()
                found = next((a for a in self._accounts if match(a)), None)
            return found

    def by_api_key(self, api_key: str) -> SandboxAccount | None:
        return self._find(lambda a: a.api_key == api_key)

    def by_sender(self, business_account_id: str) -> SandboxAccount | None:
        return self._find(lambda a: business_account_id in a.sender_ids)
