"""The sandbox's posts on the wire (§6.1, §9, the post and authorization webhooks): the video list's cursor paging
and its refusals, followers on /business/get/, figures growing with the clock, the per-account throttle, and the
signed webhooks of a post published / removed and of the authorization removed. No database: sandbox only."""

from __future__ import annotations

import json

import requests

from tests.tiktok_channel.direct.sandbox.conftest import API, BUSINESS, running  # noqa: F401

FIELDS = json.dumps(["item_id", "create_time", "caption", "video_views", "likes", "share_url"])
SCOPES = "user.info.basic,user.info.stats,video.list"


def page(running, token: str, **params) -> dict:  # noqa: F811
    query = {"business_id": BUSINESS, "fields": FIELDS, "max_count": "20", **params}
    return running.api("/business/video/list/", token=token, params=query).json()


def control(running, path: str, **body) -> requests.Response:  # noqa: F811
    return requests.post(f"{running.url}{path}", json={"account": BUSINESS, **body}, timeout=5)


def test_the_video_list_pages_by_cursor_newest_first(running):  # noqa: F811
    token = running.connect(scope=SCOPES)["access_token"]
    for index in range(23):
        assert control(running, "/sandbox/video", caption=f"post {index}", views=100).status_code == 200

    first = page(running, token)
    assert first["code"] == 0 and first["data"]["has_more"] is True
    videos = first["data"]["videos"]
    assert len(videos) == 20 and videos[0]["caption"] == "post 22"
    assert set(videos[0]) == {"item_id", "create_time", "caption", "video_views", "likes", "share_url"}
    second = page(running, token, cursor=str(first["data"]["cursor"]))["data"]
    assert [v["caption"] for v in second["videos"]] == ["post 2", "post 1", "post 0"] and second["has_more"] is False
    assert {v["item_id"] for v in videos}.isdisjoint({v["item_id"] for v in second["videos"]})

    running.control(set={"short_pages": True})
    assert len(page(running, token)["data"]["videos"]) == 17


def test_the_video_list_refuses_what_tiktok_refuses(running):  # noqa: F811
    token = running.connect(scope=SCOPES)["access_token"]
    assert page(running, token, max_count="21")["code"] == 40002
    assert page(running, token, fields=json.dumps(["caption", "likes"]))["code"] == 40002  # item_id missing
    assert page(running, token, fields='"item_id"')["code"] == 40002
    other = running.connect(scope="user.info.basic")["access_token"]
    assert page(running, other)["code"] == 40001  # video.list not granted


def test_figures_and_followers_grow_with_the_clock(running):  # noqa: F811
    token = running.connect(scope=SCOPES)["access_token"]
    control(running, "/sandbox/video", views=100, likes=10)
    assert control(running, "/sandbox/followers", followers=500).status_code == 200
    fields = json.dumps(["followers_count", "videos_count"])
    profile = running.api("/business/get/", token=token, params={"business_id": BUSINESS, "fields": fields}).json()
    assert profile["data"] == {"followers_count": 500, "videos_count": 1}
    before = page(running, token)["data"]["videos"][0]
    running.control(advance_clock_s=2 * 3600)
    after = page(running, token)["data"]["videos"][0]
    assert after["video_views"] > before["video_views"] >= 100 and after["likes"] > before["likes"]
    profile = running.api("/business/get/", token=token, params={"business_id": BUSINESS, "fields": fields}).json()
    assert profile["data"]["followers_count"] > 500


def test_the_accounts_api_throttle_answers_40100(running):  # noqa: F811
    token = running.connect(scope=SCOPES)["access_token"]
    running.control(set={"accounts_api_qpm": 2})
    assert [page(running, token)["code"] for _ in range(3)] == [0, 0, 40100]
    assert running.counter("accounts_api_throttled") == 1


def test_post_remove_and_revoke_send_signed_webhooks(running):  # noqa: F811
    token = running.connect(scope=SCOPES)["access_token"]
    posted = control(running, "/sandbox/video", caption="Fresh").json()
    (envelope, content), *_ = running.events(1, "post.publish.publicly_available")
    assert envelope["user_openid"] == BUSINESS and content["post_id"] == posted["video_id"]

    control(running, "/sandbox/video/remove", video_id=posted["video_id"])
    (_, content), *_ = running.events(1, "post.publish.no_longer_publicaly_available")
    assert content["post_id"] == posted["video_id"]
    assert page(running, token)["data"]["videos"] == []  # no longer listed

    assert control(running, "/sandbox/video/remove", video_id="123").status_code == 400
    control(running, "/sandbox/revoke_authorization")
    (_, content), *_ = running.events(1, "authorization.removed")
    assert content == {"reason": 1}
    assert page(running, token)["code"] == 40105  # the grant has ended
