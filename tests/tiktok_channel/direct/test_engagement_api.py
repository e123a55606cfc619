"""The Posts API and page: staff only, each post with its figures and growth, one post's daily series, the
accounts' followers and sync state, "Sync now", bad input refused with a reason, and the OpenAPI schema."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from inbox.models import Inbox
from tiktok_channel.direct.engagement import selectors, tasks
from tiktok_channel.direct.engagement.models import AccountEngagement, AccountSnapshot, Video, VideoSnapshot
from tiktok_channel.direct.models import TikTokConnection

pytestmark = pytest.mark.django_db


@pytest.fixture
def scheduled(monkeypatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr(tasks, "schedule_sync", lambda pk, **_: calls.append(pk))
    return calls


@pytest.fixture
def posts(connection) -> list[Video]:
    today = selectors.today()
    now = timezone.now()
    fresh = Video.objects.create(
        connection=connection,
        video_id="7301",
        caption="Blue is back",
        views=150,
        likes=20,
        comments=4,
        shares=2,
        share_url="https://www.tiktok.com/@shop/video/7301",
        posted_at=now - timedelta(days=8),
        figures_at=now,
    )
    old = Video.objects.create(
        connection=connection,
        video_id="7300",
        caption="Older",
        views=10,
        posted_at=now - timedelta(days=30),
        state=Video.State.REMOVED,
        removed_at=now,
    )
    for days_ago, views in ((8, 10), (7, 40), (1, 100), (0, 150)):
        VideoSnapshot.objects.create(
            video=fresh, day=today - timedelta(days=days_ago), views=views, likes=views // 10, taken_at=now
        )
    AccountEngagement.objects.create(connection=connection, followers=1300, synced_at=now)
    for days_ago, followers in ((2, 1200), (0, 1300)):
        AccountSnapshot.objects.create(
            connection=connection, day=today - timedelta(days=days_ago), followers=followers, taken_at=now
        )
    return [fresh, old]


def test_staff_see_each_post_with_its_figures_and_growth(admin_client, posts):
    answer = admin_client.get("/api/v1/videos/")
    assert answer.status_code == 200
    first, second = answer.json()
    assert (first["video_id"], second["video_id"]) == ("7301", "7300")  # newest first
    assert (first["views"], first["state"], second["state"]) == (150, "published", "removed")
    day, week = first["growth"]["day"], first["growth"]["week"]
    assert day["views"] == 50 and day["since"] == str(selectors.today() - timedelta(days=1))
    assert week["views"] == 110 and week["since"] == str(selectors.today() - timedelta(days=7))
    assert second["growth"] == {"day": None, "week": None}


def test_one_post_has_its_daily_series(admin_client, posts):
    answer = admin_client.get(f"/api/v1/videos/{posts[0].pk}/")
    assert answer.status_code == 200
    assert [row["views"] for row in answer.json()["series"]] == [10, 40, 100, 150]
    assert admin_client.get("/api/v1/videos/999999/").json()["code"] == "not_found"


def test_accounts_carry_followers_their_series_and_sync_state(admin_client, posts, connection):
    (account,) = admin_client.get("/api/v1/videos/accounts/").json()
    assert (account["id"], account["followers"], account["state"]) == (connection.pk, 1300, "connected")
    assert [row["followers"] for row in account["series"]] == [1200, 1300]
    assert account["growth"]["day"]["followers"] == 100 and account["growth"]["week"] is None
    assert account["reconnect_url"] is None

    TikTokConnection.objects.filter(pk=connection.pk).update(state=TikTokConnection.State.REAUTHORIZATION_NEEDED)
    (account,) = admin_client.get("/api/v1/videos/accounts/").json()
    assert account["state"] == "reauthorization_needed" and "/connect/" in account["reconnect_url"]


def test_sync_now_enqueues_a_sync_and_refuses_an_account_that_cannot_sync(admin_client, connection, scheduled):
    answer = admin_client.post(f"/api/v1/videos/accounts/{connection.pk}/sync/")
    assert answer.status_code == 202 and answer.json()["queued"] is True
    assert scheduled == [connection.pk]
    assert AccountEngagement.objects.get(connection=connection).sync_requested_at is not None

    TikTokConnection.objects.filter(pk=connection.pk).update(state=TikTokConnection.State.REAUTHORIZATION_NEEDED)
    refused = admin_client.post(f"/api/v1/videos/accounts/{connection.pk}/sync/")
    assert refused.status_code == 409 and refused.json()["code"] == "not_connected"
    assert admin_client.post("/api/v1/videos/accounts/999999/sync/").status_code == 404
    assert scheduled == [connection.pk]


def test_bad_input_is_refused_with_a_reason(admin_client, posts):
    answer = admin_client.get("/api/v1/videos/?connection=abc")
    assert answer.status_code == 422 and answer.json()["fields"] == {"connection": ["not an id"]}
    assert admin_client.get(f"/api/v1/videos/?connection={posts[0].connection_id}").json()[0]["video_id"] == "7301"


def test_agents_are_refused_and_staff_see_only_their_inboxes(client, agent, posts, django_user_model):
    client.force_login(agent)
    assert client.get("/api/v1/videos/").status_code == 403
    assert client.post(f"/api/v1/videos/accounts/{posts[0].connection_id}/sync/").status_code == 403
    assert client.get("/posts/").status_code == 302

    lead = django_user_model.objects.create_user("lead", password="lead-pass-123", is_staff=True)
    client.force_login(lead)
    assert client.get("/api/v1/videos/").json() == []  # not a member of the shop's inbox
    Inbox.objects.get(pk=posts[0].connection.app.inbox_id).members.add(lead)
    assert len(client.get("/api/v1/videos/").json()) == 2


def test_the_posts_page_is_for_staff_and_links_to_new_post(admin_client):
    page = admin_client.get("/posts/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'href="/posts/new/"' in html and "New post" in html
    assert "posts/posts.js" in html and "stays in this product" in html


def test_the_api_is_in_the_openapi_schema(admin_client):
    schema = admin_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for path in (
        "/api/v1/videos/",
        "/api/v1/videos/{id}/",
        "/api/v1/videos/accounts/",
        "/api/v1/videos/accounts/{id}/sync/",
    ):
        assert path in schema["paths"], path
    assert "post" not in schema["paths"]["/api/v1/videos/"]  # read-only


def test_a_content_change_reaches_the_inbox_group_live(
    inbox, connection, live_events, django_capture_on_commit_callbacks
):
    from django.db import transaction

    from inbox.live import inbox_group
    from inbox.services import content_changed

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        content_changed(inbox_id=inbox.pk, subject="videos", connection_id=connection.pk)
    ((group, event),) = live_events
    assert group == inbox_group(inbox.pk)
    assert (event["type"], event["subject"], event["connection_id"]) == ("content.changed", "videos", connection.pk)
    assert isinstance(event["version"], int) and event["version"] > 0


def test_the_lists_cost_the_same_queries_for_more_posts(admin_client, posts, connection, django_assert_max_num_queries):
    with django_assert_max_num_queries(8) as few:
        assert len(admin_client.get("/api/v1/videos/").json()) == 2
    for index in range(20):
        Video.objects.create(connection=connection, video_id=str(8000 + index), posted_at=timezone.now())
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(admin_client.get("/api/v1/videos/").json()) == 22
