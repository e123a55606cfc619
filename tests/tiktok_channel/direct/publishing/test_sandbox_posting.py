"""The sandbox's Content Posting API over real HTTP (§4): creator_info, init with the chunk rules, the chunk PUTs,
status moving to complete, and its faults."""

from __future__ import annotations

import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from tests.tiktok_channel.direct.publishing.conftest import JPEG, MB


def v2(posting, path: str, token: str | None, body: dict) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(f"{posting.url}/v2/post/publish/{path}", json=body, headers=headers, timeout=10)


def video_body(size: int, chunk: int, count: int, privacy: str = "SELF_ONLY") -> dict:
    return {
        "post_info": {"title": "Hello #shop", "privacy_level": privacy, "brand_content_toggle": False},
        "source_info": {"source": "FILE_UPLOAD", "video_size": size, "chunk_size": chunk, "total_chunk_count": count},
    }


def put(url: str, data: bytes, start: int, total: int, content_type: str = "video/mp4") -> requests.Response:
    end = start + len(data) - 1
    headers = {"Content-Type": content_type, "Content-Range": f"bytes {start}-{end}/{total}"}
    return requests.put(url, data=data, headers=headers, timeout=30)


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_creator_info_answers_the_privacy_options_and_refuses_without_a_token(posting, connection):
    answer = v2(posting, "creator_info/query/", connection.access_token, {})
    assert answer.status_code == 200 and answer.json()["error"]["code"] == "ok"
    data = answer.json()["data"]
    assert data["privacy_level_options"] == ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]
    assert data["creator_username"] == "shop" and data["max_video_post_duration_sec"] == 600
    refused = v2(posting, "creator_info/query/", None, {})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "access_token_invalid"
    posting.set(creator_info_error="spam_risk_too_many_posts")
    spam = v2(posting, "creator_info/query/", connection.access_token, {})
    assert spam.status_code == 200 and spam.json()["error"]["code"] == "spam_risk_too_many_posts"


def test_a_token_without_the_posting_scope_is_refused(posting):
    connection = posting.connect(
        scopes=["user.info.basic", "message.list.read", "message.list.send", "message.list.manage"]
    )
    answer = v2(posting, "creator_info/query/", connection.access_token, {})
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "scope_not_authorized"


@pytest.mark.parametrize(
    ("size", "chunk", "count", "why"),
    [
        (12 * MB, 1 * MB, 12, "chunk_size must be"),  # chunks under 5 MB
        (12 * MB, 5 * MB, 3, "floor"),  # count is not floor(size / chunk)
        (3 * MB, 1 * MB, 3, "one chunk"),  # a small video goes as one chunk
        (200 * MB, 64 * MB, 3, "0"),  # fine: 64 + 64 + 72 MB; checked below as accepted
    ],
)
def test_init_checks_the_chunk_rules(posting, connection, size, chunk, count, why):
    answer = v2(posting, "video/init/", connection.access_token, video_body(size, chunk, count))
    if why == "0":
        assert answer.status_code == 200, answer.text
        return
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_param"
    assert why in answer.json()["error"]["message"]


def test_init_refuses_a_privacy_level_not_offered(posting, connection):
    posting.set(privacy_level_options=["FOLLOWER_OF_CREATOR", "SELF_ONLY"])
    answer = v2(posting, "video/init/", connection.access_token, video_body(3 * MB, 3 * MB, 1, "PUBLIC_TO_EVERYONE"))
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "privacy_level_option_mismatch"


def test_chunks_in_order_assemble_the_file_and_the_status_moves_to_published(posting, connection):
    size = 11 * MB + 123
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    init = v2(posting, "video/init/", connection.access_token, video_body(size, 5 * MB, 2)).json()["data"]
    url, publish_id = init["upload_url"], init["publish_id"]
    status = v2(posting, "status/fetch/", connection.access_token, {"publish_id": publish_id}).json()["data"]
    assert status["status"] == "PROCESSING_UPLOAD" and status["uploaded_bytes"] == 0

    # The second chunk first: out of step (416), nothing kept.
    early = put(url, data[5 * MB :], 5 * MB, size)
    assert early.status_code == 416
    first = put(url, data[: 5 * MB], 0, size)
    assert first.status_code == 206 and first.headers["Content-Range"] == f"bytes 0-{5 * MB - 1}/{size}"
    again = put(url, data[: 5 * MB], 0, size)  # the same chunk twice: out of step, TikTok says what it holds
    assert again.status_code == 416 and again.headers["Content-Range"] == f"bytes 0-{5 * MB - 1}/{size}"
    wrong_size = put(url, data[5 * MB : 10 * MB], 5 * MB, size)  # the last chunk must carry the remainder
    assert wrong_size.status_code == 400
    last = put(url, data[5 * MB :], 5 * MB, size)
    assert last.status_code == 201

    [post] = posting.posts()
    assert [c["index"] for c in post["chunks"]] == [0, 1]
    assert post["sha256"] == hashlib.sha256(data).hexdigest()

    def fetch():
        return v2(posting, "status/fetch/", connection.access_token, {"publish_id": publish_id}).json()["data"]

    seen = {fetch()["status"]}
    final = wait_for(lambda: (d := fetch()).get("publicaly_available_post_id") and d)
    seen.add(final["status"])
    assert "PUBLISH_COMPLETE" in seen and final["publicaly_available_post_id"][0] > 0


def test_faults_rate_limit_chunk_rejected_and_a_publish_that_fails(posting, connection):
    posting.set(post_rate_limit_next=1)
    limited = v2(posting, "video/init/", connection.access_token, video_body(MB, MB, 1))
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limit_exceeded"

    init = v2(posting, "video/init/", connection.access_token, video_body(MB, MB, 1)).json()["data"]
    data = b"v" * MB
    posting.set(chunk_reject_next=1, post_fail_next=1, post_fail_reason="frame_rate_check_failed")
    assert put(init["upload_url"], data, 0, MB).status_code == 500
    assert posting.posts()[0]["uploaded"] == 0  # a rejected chunk is not kept
    assert put(init["upload_url"], data, 0, MB, content_type="text/plain").status_code == 400
    assert put(init["upload_url"], data, 0, MB).status_code == 201

    def failed():
        body = {"publish_id": init["publish_id"]}
        data = v2(posting, "status/fetch/", connection.access_token, body).json()["data"]
        return data["status"] == "FAILED" and data

    assert wait_for(failed)["fail_reason"] == "frame_rate_check_failed"
    assert (
        requests.put(init["upload_url"].replace("upload_token=", "upload_token=x"), data=b"1", timeout=5).status_code
        == 404
    )


class _Photos(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        if self.path == "/1.jpg":
            self.send_response(200)
            self.send_header("Content-Length", str(len(JPEG)))
            self.end_headers()
            self.wfile.write(JPEG)
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def photo_host():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Photos)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def photo_body(urls: list[str]) -> dict:
    return {
        "media_type": "PHOTO",
        "post_mode": "DIRECT_POST",
        "post_info": {"title": "Photos", "privacy_level": "SELF_ONLY", "brand_content_toggle": False},
        "source_info": {"source": "PULL_FROM_URL", "photo_images": urls, "photo_cover_index": 0},
    }


def test_photo_posts_are_pulled_and_a_photo_that_cannot_be_pulled_fails(posting, connection, photo_host):
    good = v2(posting, "content/init/", connection.access_token, photo_body([f"{photo_host}/1.jpg"])).json()["data"]
    bad = v2(posting, "content/init/", connection.access_token, photo_body([f"{photo_host}/missing.jpg"])).json()[
        "data"
    ]

    def status(publish_id):
        return v2(posting, "status/fetch/", connection.access_token, {"publish_id": publish_id}).json()["data"]

    assert wait_for(lambda: status(good["publish_id"])["status"] == "PUBLISH_COMPLETE")
    failed = wait_for(lambda: (s := status(bad["publish_id"]))["status"] == "FAILED" and s)
    assert failed["fail_reason"] == "photo_pull_failed"
    png_only = v2(posting, "content/init/", connection.access_token, photo_body(["ftp://nope"]))
    assert png_only.status_code == 400
