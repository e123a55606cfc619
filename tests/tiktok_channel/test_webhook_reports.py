from datetime import UTC, datetime
from itertools import permutations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inbox.models import AuditLog, Message, ParkedReport
from inbox.outbox import apply_parked_reports
from tests.tiktok_channel.webhooks import fixture, post, with_message_id

pytestmark = pytest.mark.django_db
T = datetime(2026, 11, 23, 10, 5, tzinfo=UTC)


@pytest.fixture
def outbound(account, inbox):
    from inbox.models import Contact, Conversation

    contact = Contact.objects.create(channel="tiktok", endpoint_id="biz-1", channel_user_id="user-1")
    conversation = Conversation.objects.create(
        provider="infobip", inbox=inbox, contact=contact, last_activity_at=T, last_inbound_at=T
    )

    def make(status="accepted", provider_message_id="out-1") -> Message:
        return Message.objects.create(
            conversation=conversation,
            direction="out",
            type="text",
            text="Hi!",
            channel="tiktok",
            provider_message_id=provider_message_id,
            status=status,
            queued_at=T,
            sent_at=T,
        )

    return make


def test_delivered(client, account, outbound):
    message = outbound()
    response = post(client, account, fixture("delivery_delivered"))
    assert response.status_code == 200 and response.json()["delivery_applied"] == 1
    message.refresh_from_db()
    assert message.status == "delivered"
    assert message.delivered_at == datetime(2026, 11, 23, 10, 5, 2, tzinfo=UTC)
    assert message.provider_status["name"] == "DELIVERED_TO_HANDSET"
    assert message.provider_status["sentAt"] == "2026-11-23T10:05:00.000+0000"
    assert message.error == {}


def test_pending_means_accepted(client, account, outbound):
    message = outbound(status="queued")
    post(client, account, fixture("delivery_pending"))
    message.refresh_from_db()
    assert (message.status, message.accepted_at) == ("accepted", datetime(2026, 11, 23, 10, 5, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("name", "error"),
    [
        (
            "delivery_undeliverable",
            {"name": "EC_NO_SESSION", "code": 7010, "permanent": True, "status": "UNDELIVERABLE_NOT_DELIVERED"},
        ),
        (
            "delivery_expired",
            {"name": "EC_UNKNOWN_SUBSCRIBER", "code": 1, "permanent": False, "status": "EXPIRED_EXPIRED"},
        ),
        (
            "delivery_rejected",
            {"name": "EC_TOO_MANY_REQUESTS", "code": 7017, "permanent": False, "status": "REJECTED_NETWORK"},
        ),
    ],
)
def test_failure_groups_fail_the_message_with_the_reason(client, account, outbound, name, error):
    message = outbound()
    post(client, account, fixture(name))
    message.refresh_from_db()
    assert message.status == "failed" and message.failed_at is not None
    assert {key: message.error[key] for key in error} == error
    assert message.error["description"]
    audit = AuditLog.objects.get(action="message.status")
    assert (audit.before["status"], audit.after["status"]) == ("accepted", "failed")


def test_duplicate_message_id_rejection_does_not_fail_the_message(client, account, outbound):
    message = outbound()
    response = post(client, account, fixture("delivery_rejected_duplicate"))
    assert response.json()["ignored_report"] == 1
    message.refresh_from_db()
    assert message.status == "accepted"


def test_seen(client, account, outbound):
    message = outbound(status="delivered")
    response = post(client, account, fixture("seen"))
    assert response.json()["seen_applied"] == 1
    message.refresh_from_db()
    assert (message.status, message.seen_at) == ("seen", datetime(2026, 11, 23, 10, 6, tzinfo=UTC))


def test_seen_on_a_failed_message_makes_it_seen(client, account, outbound):
    message = outbound(status="failed")
    post(client, account, fixture("seen"))
    message.refresh_from_db()
    assert message.status == "seen"


def test_delivered_or_seen_never_becomes_failed(client, account, outbound):
    delivered = outbound(status="delivered")
    seen = outbound(status="seen", provider_message_id="out-2")
    post(client, account, fixture("delivery_undeliverable"))
    post(client, account, with_message_id(fixture("delivery_undeliverable"), "out-2"))
    delivered.refresh_from_db()
    seen.refresh_from_db()
    assert (delivered.status, delivered.error, delivered.failed_at) == ("delivered", {}, None)
    assert (seen.status, seen.error) == ("seen", {})


def test_late_delivery_report_keeps_seen_but_records_the_delivery_time(client, account, outbound):
    message = outbound()
    post(client, account, fixture("seen"))
    response = post(client, account, fixture("delivery_delivered"))
    assert response.json()["delivery_stale"] == 1
    message.refresh_from_db()
    assert message.status == "seen"
    assert message.delivered_at == datetime(2026, 11, 23, 10, 5, 2, tzinfo=UTC)


def test_redelivered_report_changes_nothing_and_publishes_nothing(
    client, account, outbound, live_events, django_capture_on_commit_callbacks
):
    message = outbound()
    with django_capture_on_commit_callbacks(execute=True):
        post(client, account, fixture("delivery_delivered"))
        post(client, account, fixture("delivery_delivered"))
    assert [event["status"] for _, event in live_events] == ["delivered"]
    assert live_events[0][1]["message_id"] == message.pk
    assert AuditLog.objects.filter(action="message.status").count() == 1


def test_report_for_an_unknown_message_is_kept_and_applied_when_the_message_appears(client, account, outbound):
    response = post(client, account, fixture("delivery_delivered"))
    assert response.status_code == 200 and response.json()["unmatched_report"] == 1
    post(client, account, fixture("delivery_delivered"))  # redelivered: still kept once
    assert ParkedReport.objects.count() == 1

    message = outbound(status="queued")
    assert apply_parked_reports(channel="tiktok", provider_message_ids=["out-1"]) == 1
    message.refresh_from_db()
    assert message.status == "delivered"
    assert ParkedReport.objects.get().applied_at is not None
    assert apply_parked_reports() == 0


def test_report_for_an_inbound_message_id_changes_nothing(client, account):
    post(client, account, fixture("inbound_text"))
    post(client, account, with_message_id(fixture("seen"), "in-text-1"))
    assert Message.objects.get().status == ""


REPORTS = {
    "accepted": "delivery_pending",
    "delivered": "delivery_delivered",
    "seen": "seen",
    "failed": "delivery_undeliverable",
}
RANK = {"queued": 0, "accepted": 1, "failed": 2, "delivered": 3, "seen": 4}


# The message is deleted and recreated per example, so sharing the function-scoped fixtures is safe.
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    order=st.permutations(list(REPORTS)).flatmap(lambda p: st.integers(1, 4).map(lambda n: p[:n])), repeat=st.booleans()
)
def test_any_order_of_reports_ends_in_the_highest_status(client, account, outbound, order, repeat):
    Message.objects.filter(provider_message_id="out-1").delete()
    message = outbound(status="queued")
    sequence = list(order) + (list(order) if repeat else [])
    seen_statuses = ["queued"]
    for status in sequence:
        post(client, account, fixture(REPORTS[status]))
        message.refresh_from_db()
        assert RANK[message.status] >= RANK[seen_statuses[-1]]  # never backwards
        seen_statuses.append(message.status)
    assert message.status == max(order, key=RANK.get)
    if "seen" in order:
        assert message.seen_at is not None


def test_all_orders_of_four_reports_enumerated(client, account, outbound):
    """The exhaustive version of the property above for all 24 orders of the four reports."""
    for number, order in enumerate(permutations(REPORTS)):
        message = outbound(status="queued", provider_message_id=f"perm-{number}")
        for status in order:
            post(client, account, with_message_id(fixture(REPORTS[status]), f"perm-{number}"))
        message.refresh_from_db()
        assert message.status == "seen", order


def test_the_ladder_is_enforced_by_the_update_itself(outbound, monkeypatch):
    """Even when the Python side would move a status down (as a writer racing past the row lock might),
    the UPDATE's WHERE refuses it."""
    from inbox.events import StatusReport
    from inbox.services import message_status_apply, statuses

    message = outbound(status="seen")
    monkeypatch.setattr(statuses, "moves_up", lambda current, new: True)
    message_status_apply(report=StatusReport(channel="tiktok", provider_message_id="out-1", status="delivered", at=T))
    message.refresh_from_db()
    assert message.status == "seen"


# --- reports are bound to the account whose webhook received them (issue 21, item 4) ----------------------------


@pytest.mark.parametrize("name", ["seen", "delivery_delivered", "delivery_undeliverable"])
def test_a_report_signed_by_another_account_changes_nothing(client, account, make_account, outbound, name):
    other = make_account(sender_id="biz-2")  # account B: its own secret and sender
    message = outbound()  # sent through account A's sender biz-1
    response = post(client, other, fixture(name))
    assert response.status_code == 200 and response.json()["unmatched_report"] == 1
    message.refresh_from_db()
    assert (message.status, message.seen_at, message.delivered_at, message.failed_at) == ("accepted", None, None, None)
    assert not AuditLog.objects.filter(action="message.status").exists()
    assert apply_parked_reports() == 0  # parked with its account's scope: the sweep does not apply it either
    message.refresh_from_db()
    assert message.status == "accepted"

    assert post(client, account, fixture(name)).status_code == 200  # account A's own report applies
    message.refresh_from_db()
    assert message.status != "accepted"


def test_a_parked_report_applies_only_to_its_accounts_message(client, account, make_account, outbound):
    other = make_account(sender_id="biz-2")
    post(client, other, fixture("seen"))  # B reports on an id we have not recorded yet
    message = outbound(status="queued")  # A's message gets that id
    assert apply_parked_reports(channel="tiktok", provider_message_ids=["out-1"]) == 0
    message.refresh_from_db()
    assert message.status == "queued"
    post(client, account, fixture("seen"))
    message.refresh_from_db()
    assert message.status == "seen"
