"""Admin: the ledger is read-only with pretty JSON and a real kind; the audit log cannot be deleted; copy button."""

import json

import pytest
from django.utils import timezone

from inbox.models import AuditLog, WebhookEvent
from tests.tiktok_channel.webhooks import fixture

pytestmark = pytest.mark.django_db


def ledger_row(account, path_kind: str, body: dict | str) -> WebhookEvent:
    return WebhookEvent.objects.create(
        provider="infobip",
        connection_id=account.pk,
        path_kind=path_kind,
        received_at=timezone.now(),
        headers={"Content-Type": "application/json"},
        body=body if isinstance(body, str) else json.dumps(body, separators=(",", ":")),
        result_count=1,
        verdict=WebhookEvent.Verdict.PROCESSED,
    )


def test_the_webhook_event_page_has_no_save_buttons_and_pretty_json(admin_client, account):
    event = ledger_row(account, "inbound", fixture("inbound_text"))
    page = admin_client.get(f"/admin/inbox/webhookevent/{event.pk}/change/").content.decode()
    assert 'name="_save"' not in page and 'name="_continue"' not in page
    assert "<pre" in page and "\n  &quot;results&quot;: [" in page
    assert admin_client.post(f"/admin/inbox/webhookevent/{event.pk}/change/", {}).status_code == 403


def test_events_of_the_all_events_url_are_labelled_by_what_they_carry(admin_client, account):
    ledger_row(account, "any", fixture("inbound_text"))
    ledger_row(account, "any", fixture("seen"))
    ledger_row(account, "any", "not json")
    page = admin_client.get("/admin/inbox/webhookevent/").content.decode()
    assert "inbound (all-events URL)" in page
    assert "seen (all-events URL)" in page
    assert "unparsable (all-events URL)" in page


def test_the_audit_log_cannot_be_deleted_from_admin(admin_client):
    entry = AuditLog.objects.create(actor_kind="system", action="test.entry")
    assert admin_client.get(f"/admin/inbox/auditlog/{entry.pk}/delete/").status_code == 403
    listing = admin_client.get("/admin/inbox/auditlog/").content.decode()
    assert "delete_selected" not in listing
    assert AuditLog.objects.filter(pk=entry.pk).exists()


def test_the_webhook_url_has_a_copy_button(admin_client, account):
    page = admin_client.get(f"/admin/tiktok_channel/infobipaccount/{account.pk}/change/").content.decode()
    assert 'data-copy-target="webhook-url"' in page and "inbox/admin-copy.js" in page
