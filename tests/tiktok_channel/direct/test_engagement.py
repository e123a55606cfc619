"""Engagement sync against the TikTok sandbox as a real HTTP server (§6.1): cursor paging through more than 20
posts, daily snapshots (upserted), figures growing with the clock, throttling (40100) honoured with backoff, figures
read safely; and the post / authorization webhooks, signed by the sandbox and handed to our door unchanged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail

from tests.tiktok_channel.direct.test_wire_sandbox import KEY, OPEN_ID, next_webhooks, relay, wire  # noqa: F401
from tiktok_channel.direct import tokens
from tiktok_channel.direct.engagement import selectors, services, tasks
from tiktok_channel.direct.engagement import wire as engagement_wire
from tiktok_channel.direct.engagement.models import AccountEngagement, AccountSnapshot, Video, VideoSnapshot
from tiktok_channel.direct.models import TikTokConnection

pytestmark = pytest.mark.django_db(transaction=True)

SCOPES = ["user.info.basic", "user.info.stats", "message.list.read", "message.list.send", "message.list.manage"]


def connect(server, app, scopes=(*SCOPES, "video.list")) -> TikTokConnection:
    sandbox = server.sandbox
    code = sandbox.issue_code(
        app=sandbox.apps[KEY], open_id=OPEN_ID, scope=list(scopes), redirect_uri=app.redirect_uri()
    )
    return tokens.connect(app=app, code=code, user=None)


def seed(server, count: int) -> None:
    for index in range(count):
        server.sandbox.videos.post({"account": OPEN_ID, "caption": f"post {index}", "video_id": str(7300 + index)})


@pytest.fixture
def scheduled(monkeypatch) -> list[tuple[int, int, float]]:
    """Syncs enqueued (connection, attempt, countdown) instead of a broker: the test runs them itself."""
    calls: list[tuple[int, int, float]] = []
    monkeypatch.setattr(
        tasks, "schedule_sync", lambda pk, *, attempt=0, countdown=0: calls.append((pk, attempt, countdown))
    )
    return calls


def test_a_sync_pages_through_more_than_20_posts_and_snapshots_each(wire, domain_events, settings):  # noqa: F811
    server, app, _ = wire
    connection = connect(server, app)
    seed(server, 45)
    server.sandbox.behaviour.update({"short_pages": True})  # pages of 17 while has_more stays true (§6.1)

    outcome = services.sync_connection(connection.pk)

    assert outcome.status == services.SYNCED and outcome.complete
    assert outcome.videos == 45 and outcome.pages == 3
    assert server.sandbox.counters["video_list_pages"] == 3
    assert Video.objects.filter(connection=connection).count() == 45
    newest = Video.objects.get(video_id="7344")
    listed = {v["video_id"]: v for v in server.sandbox.videos.state()}["7344"]
    assert newest.caption == "post 44" and newest.views >= listed["video_views"] - 200
    assert newest.share_url == "https://www.tiktok.com/@wire_shop/video/7344"
    assert newest.posted_at is not None and newest.figures_at is not None
    assert VideoSnapshot.objects.filter(video__connection=connection).count() == 45
    engagement = AccountEngagement.objects.get(connection=connection)
    assert engagement.followers >= 1200 and engagement.videos_count == 45 and engagement.sync_error == ""
    assert AccountSnapshot.objects.filter(connection=connection).count() == 1
    assert [e.type for e in domain_events if e.type == "content.changed"] == ["content.changed"]

    # A cap on pages: the newest are kept, nothing is marked removed for being beyond it, and the page says so.
    settings.TIKTOK_ENGAGEMENT_MAX_PAGES = 1
    capped = services.sync_connection(connection.pk)
    assert (capped.pages, capped.complete, capped.removed) == (1, False, [])
    assert "newest 1 pages" in AccountEngagement.objects.get(connection=connection).sync_error
    assert not Video.objects.filter(state=Video.State.REMOVED).exists()
    settings.TIKTOK_ENGAGEMENT_MAX_PAGES = 50

    # The same day again: the snapshots are updated, not added.
    assert services.sync_connection(connection.pk).status == services.SYNCED
    assert VideoSnapshot.objects.filter(video__connection=connection).count() == 45
    assert AccountSnapshot.objects.filter(connection=connection).count() == 1


def test_figures_grow_day_by_day_and_growth_compares_with_yesterday(wire):  # noqa: F811
    server, app, _ = wire
    connection = connect(server, app)
    seed(server, 3)
    assert services.sync_connection(connection.pk).status == services.SYNCED
    first = {v.video_id: v.views for v in Video.objects.all()}

    # A day later (our clock and the sandbox's move together; the access token expired meanwhile: refreshed).
    with time_machine.travel(datetime.now(UTC) + timedelta(days=1, minutes=5), tick=True):
        assert services.sync_connection(connection.pk).status == services.SYNCED
        videos = list(Video.objects.order_by("video_id"))
        growth = selectors.growth(videos)
        for video in videos:
            assert video.views > first[video.video_id]  # the sandbox's figures grow with time
            day = growth[video.pk]["day"]
            assert day["views"] == video.views - first[video.video_id]
            assert day["since"] == selectors.today() - timedelta(days=1)
            assert growth[video.pk]["week"] is None  # no snapshot that old
        assert VideoSnapshot.objects.filter(video=videos[0]).count() == 2
        series = selectors.account_series(connection)
        assert len(series) == 2 and series[1]["followers"] >= series[0]["followers"]


def test_a_throttled_sync_writes_nothing_and_is_retried_with_backoff(wire, scheduled, settings):  # noqa: F811
    server, app, _ = wire
    settings.TIKTOK_DIRECT_THROTTLE_WAIT_SECONDS = 60
    connection = connect(server, app)
    seed(server, 30)
    server.sandbox.behaviour.update({"accounts_api_qpm": 2})  # profile + page 1 pass, page 2 answers 40100

    assert tasks.sync_engagement(connection.pk) == services.THROTTLED
    assert Video.objects.count() == 0 and VideoSnapshot.objects.count() == 0
    assert server.sandbox.counters["accounts_api_throttled"] == 1
    ((pk, attempt, countdown),) = scheduled
    assert (pk, attempt) == (connection.pk, 1) and countdown >= 60  # never sooner than TikTok's wait
    engagement = AccountEngagement.objects.get(connection=connection)
    assert "too many requests" in engagement.sync_error and engagement.next_try_at is not None

    # Later tries back off exponentially; the budget is finite.
    assert tasks.backoff_seconds(3) > tasks.backoff_seconds(0)
    settings.TIKTOK_ENGAGEMENT_RETRIES = 1
    assert tasks.sync_engagement(connection.pk, attempt=1) == services.THROTTLED
    assert len(scheduled) == 1  # out of retries: the next beat starts afresh

    server.sandbox.behaviour.update({"accounts_api_qpm": 0})
    assert tasks.sync_engagement(connection.pk, attempt=1) == services.SYNCED
    assert Video.objects.count() == 30
    engagement.refresh_from_db()
    assert engagement.sync_error == "" and engagement.next_try_at is None


def test_a_missing_permission_stops_the_sync_only(wire):  # noqa: F811
    server, app, _ = wire
    connection = connect(server, app, scopes=SCOPES)  # no video.list
    outcome = services.sync_connection(connection.pk)
    assert outcome.status == services.FAILED and "video.list" in outcome.error
    connection.refresh_from_db()
    assert connection.state == TikTokConnection.State.CONNECTED  # messages still flow
    assert "video.list" in AccountEngagement.objects.get(connection=connection).sync_error

    # TikTok refusing the permission (a grant narrower than the stored scopes) is the same.
    connection.scopes = ",".join((*SCOPES, "video.list"))
    connection.save()
    outcome = services.sync_connection(connection.pk)
    assert outcome.status == services.FAILED and "40001" in outcome.error
    connection.refresh_from_db()
    assert connection.state == TikTokConnection.State.CONNECTED


def test_the_beat_enqueues_one_sync_per_connected_account(wire, scheduled):  # noqa: F811
    server, app, _ = wire
    connection = connect(server, app)
    assert tasks.sync_all_engagement() == 1
    assert scheduled == [(connection.pk, 0, 0)]

    # Every minute, accounts never synced (just connected) get their first sync, once per 10 minutes at most.
    assert tasks.sync_all_engagement(only_new=True) == 1
    assert tasks.sync_all_engagement(only_new=True) == 0  # asked for a moment ago
    assert services.sync_connection(connection.pk).status == services.SYNCED
    AccountEngagement.objects.filter(connection=connection).update(sync_requested_at=None)
    assert tasks.sync_all_engagement(only_new=True) == 0  # synced already: the hourly beat keeps it fresh
    assert len(scheduled) == 2

    TikTokConnection.objects.filter(pk=connection.pk).update(state=TikTokConnection.State.REAUTHORIZATION_NEEDED)
    assert tasks.sync_all_engagement() == 0


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (
            {"item_id": 7312345678901234567, "video_views": "12", "likes": -1, "comments": True, "shares": 2.0},
            ("7312345678901234567", 12, None, None, 2),
        ),
        (
            {"item_id": "73", "video_views": None, "likes": "many", "comments": [], "shares": {}},
            ("73", None, None, None, None),
        ),
        ({"item_id": "", "video_views": 1}, None),
        ({"item_id": True}, None),
        ({"video_views": 1}, None),
        ("not an object", None),
    ],
)
def test_figures_are_read_safely(item, expected):
    video = engagement_wire.video_of(item)
    if expected is None:
        assert video is None
    else:
        assert (video.video_id, video.views, video.likes, video.comments, video.shares) == expected


def test_a_figure_tiktok_did_not_send_keeps_the_previous_one(wire, monkeypatch):  # noqa: F811
    server, app, _ = wire
    connection = connect(server, app)
    seed(server, 1)
    services.sync_connection(connection.pk)
    before = Video.objects.get().likes
    original = server.sandbox.videos._public

    def without_likes(video, now, fields):
        item = original(video, now, fields)
        item["likes"] = "n/a"
        return item

    monkeypatch.setattr(server.sandbox.videos, "_public", without_likes)  # the stand-in for TikTok, not our code
    assert services.sync_connection(connection.pk).status == services.SYNCED
    assert Video.objects.get().likes == before


# --- webhooks ------------------------------------------------------------------------------------------------


def test_post_published_and_removed_webhooks_update_the_post_live(wire, client, domain_events, scheduled):  # noqa: F811
    server, app, receiver = wire  # noqa: F811
    connection = connect(server, app)
    seen = len(receiver.requests)

    posted = server.sandbox.videos.post({"account": OPEN_ID, "caption": "Fresh"})
    (captured,) = next_webhooks(receiver, seen)
    assert captured.json["event"] == "post.publish.publicly_available"
    response = relay(client, app, captured)
    assert response.status_code == 200 and response.json()["post_published"] == 1
    video = Video.objects.get(connection=connection, video_id=posted["video_id"])
    assert video.state == Video.State.PUBLISHED
    assert scheduled == [(connection.pk, 0, 0)]  # the event has only the id: a sync brings caption and figures
    assert relay(client, app, captured).json()["post_published_already"] == 1  # redelivered: no change
    assert len(scheduled) == 1

    server.sandbox.videos.remove({"account": OPEN_ID, "video_id": posted["video_id"]})
    (captured,) = next_webhooks(receiver, seen + 1)
    assert relay(client, app, captured).json()["post_removed"] == 1
    video.refresh_from_db()
    assert video.state == Video.State.REMOVED and video.removed_at is not None
    changed = [e for e in domain_events if e.type == "content.changed"]
    assert len(changed) == 2 and {e.connection_id for e in changed} == {connection.pk}

    # A sync after that leaves it removed (TikTok no longer lists it) and keeps its history.
    assert services.sync_connection(connection.pk).status == services.SYNCED
    video.refresh_from_db()
    assert video.state == Video.State.REMOVED


def test_a_post_missing_from_a_complete_listing_is_marked_removed(wire):  # noqa: F811
    server, app, _ = wire
    connection = connect(server, app)
    seed(server, 2)
    services.sync_connection(connection.pk)
    with server.sandbox.lock:
        server.sandbox.videos.videos["7300"].removed = True  # deleted in TikTok's app, no webhook came
    outcome = services.sync_connection(connection.pk)
    assert outcome.removed == ["7300"]
    assert Video.objects.get(video_id="7300").state == Video.State.REMOVED
    assert Video.objects.get(video_id="7301").state == Video.State.PUBLISHED


def test_authorization_removed_marks_the_connection_for_reauthorization(wire, client, settings):  # noqa: F811
    server, app, receiver = wire  # noqa: F811
    settings.ADMINS = [("Ops", "ops@example.test")]
    connection = connect(server, app)
    seen = len(receiver.requests)
    server.sandbox.videos.revoke_authorization({"account": OPEN_ID})
    (captured,) = next_webhooks(receiver, seen)
    assert captured.json["event"] == "authorization.removed"

    response = relay(client, app, captured)
    assert response.status_code == 200 and response.json()["authorization_removed"] == 1
    connection.refresh_from_db()
    assert connection.state == TikTokConnection.State.REAUTHORIZATION_NEEDED
    assert "removed the app's access" in connection.last_error
    assert len(mail.outbox) == 1 and "reconnected" in mail.outbox[0].subject
    # The sync stops there too (its grant is gone): nothing is called.
    assert services.sync_connection(connection.pk).status == services.NOT_CONNECTED


def test_a_post_event_without_a_post_id_is_refused_with_the_reason(wire, client):  # noqa: F811
    from tests.tiktok_channel.direct.conftest import post_webhook, webhook_body

    server, app, _ = wire
    connect(server, app)
    body = webhook_body("post.publish.publicly_available", {"publish_id": "p-1"}, business_id=OPEN_ID)
    response = post_webhook(client, app, body, secret=app.client_secret)
    assert response.status_code == 400
    assert response.json() == {"code": "bad_payload", "message": "content.post_id is required"}

    body = webhook_body("post.publish.publicly_available", {"post_id": "12ab"}, business_id=OPEN_ID)
    assert post_webhook(client, app, body, secret=app.client_secret).status_code == 400


def test_event_names_are_settings(wire, client, settings, scheduled):  # noqa: F811
    from tests.tiktok_channel.direct.conftest import post_webhook, webhook_body

    server, app, _ = wire
    connection = connect(server, app)
    settings.TIKTOK_DIRECT_POST_PUBLISHED_EVENTS = ["video.publish"]
    body = webhook_body("video.publish", {"video_id": 7399999999999999999}, business_id=OPEN_ID)
    response = post_webhook(client, app, body, secret=app.client_secret)
    assert response.status_code == 200 and response.json()["post_published"] == 1
    assert Video.objects.get(connection=connection).video_id == "7399999999999999999"
