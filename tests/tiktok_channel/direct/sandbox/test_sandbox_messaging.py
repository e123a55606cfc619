"""The TikTok sandbox's Business Messaging (README §3): send, quote, media, the window, and the signed webhooks."""

from __future__ import annotations

import json
import time

import requests

from tests.tiktok_channel.direct.sandbox.conftest import (
    API,
    BUSINESS,
    CLIENT_KEY,
    CLIENT_SECRET,
    event_of,
)
from tests.tiktok_channel.sandbox_helpers import verify_signature, wait_until

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 64 + b"\r\n--boundary\r\n\n"  # binary, line ends
GIF = b"GIF89a" + b"\x00" * 64


def upload(running, token: str, data: bytes, media_type: str = "IMAGE") -> dict:
    return requests.post(
        f"{running.url}{API}/business/message/media/upload/",
        data={"business_id": BUSINESS, "media_type": media_type},
        files={"file": ("photo.jpg", data, "image/jpeg")},
        headers={"Access-Token": token},
        timeout=5,
    ).json()


def test_send_answers_a_message_id_then_echo_and_read_arrive_signed(connected):
    running = connected.running

    answer = running.send_text(connected.access_token, connected.conversation_id, "Yes, still in stock.")

    assert answer["code"] == 0, answer
    message_id = answer["data"]["message"]["message_id"]
    assert message_id.isdigit() and len(message_id) == 19
    ((echo_envelope, echo),) = running.events(1, "im_send_msg")
    assert echo_envelope["client_key"] == CLIENT_KEY and echo_envelope["user_openid"] == BUSINESS
    assert abs(echo_envelope["create_time"] - time.time()) < 60  # seconds, not milliseconds
    assert echo["message_id"] == message_id and echo["conversation_id"] == connected.conversation_id
    assert echo["type"] == "text" and echo["text"] == {"body": "Yes, still in stock."}
    assert echo["from_user"] == {"id": BUSINESS, "role": "business_account"} and echo["from"] == "acme_shop"
    assert echo["to_user"] == {"id": "user-1", "role": "personal_account"} and echo["to"] == "alice"
    assert echo["message_tag"] == {"source": "API"}
    ((read_envelope, read),) = running.events(1, "im_mark_read_msg")
    assert read_envelope["user_openid"] == BUSINESS
    assert read == {
        "conversation_id": connected.conversation_id,
        "read": {"last_read_timestamp": echo["timestamp"]},
        "from_user": {"id": "user-1"},
    }
    (sent,) = running.state()["sent"]
    assert sent["message_id"] == message_id and sent["read"] is True and sent["message_type"] == "TEXT"


def test_the_signature_is_over_the_raw_body_with_the_app_secret(connected):
    captured = connected.running.receiver.requests[0]
    header = {k.lower(): v for k, v in captured.headers.items()}["tiktok-signature"]
    assert verify_signature(header, captured.body, CLIENT_SECRET)
    assert not verify_signature(header, captured.body + b" ", CLIENT_SECRET)
    assert not verify_signature(header, captured.body, "another-secret")


def test_signature_skew_signs_with_an_old_timestamp(connected):
    running = connected.running
    running.control(set={"signature_skew_s": 600})
    running.inbound(user="user-1", text="again")
    captured = running.receiver.wait_for(2)[-1]
    header = {k.lower(): v for k, v in captured.headers.items()}["tiktok-signature"]
    assert not verify_signature(header, captured.body, CLIENT_SECRET, max_age_s=300)
    assert verify_signature(header, captured.body, CLIENT_SECRET, max_age_s=900)


def test_inbound_kinds_have_the_documented_content(connected):
    running = connected.running
    ((envelope, first),) = running.events(1, "im_receive_msg")
    assert envelope["event"] == "im_receive_msg" and envelope["client_key"] == CLIENT_KEY
    assert first["type"] == "text" and first["text"] == {"body": "Hello from TikTok"}
    assert first["from_user"] == {"id": "user-1", "role": "personal_account"} and first["from"] == "alice"
    assert first["to_user"] == {"id": BUSINESS, "role": "business_account"} and first["to"] == "acme_shop"
    assert first["message_tag"] == {"source": "APP"} and first["message_id"] == connected.first_message_id
    assert abs(first["timestamp"] - time.time() * 1000) < 60_000  # milliseconds

    image = running.inbound(user="user-1", image=True)
    running.inbound(user="user-1", share_post="https://www.tiktok.com/embed/123")
    running.inbound(user="user-1", other="sticker")
    running.inbound(user="user-1", text="about this", reply_to=connected.first_message_id)

    contents = [content for _, content in running.events(5, "im_receive_msg")][1:]
    assert contents[0]["type"] == "image" and contents[0]["image"] == {"media_id": image["media_id"]}
    assert contents[1]["share_post"] == {"embed_url": "https://www.tiktok.com/embed/123"}
    assert contents[2]["type"] == "sticker" and "sticker" not in contents[2]
    assert contents[3]["referenced_message_info"] == {"referenced_message_id": connected.first_message_id}
    assert {c["conversation_id"] for c in contents} == {connected.conversation_id}


def test_an_inbound_image_downloads_with_the_access_token_in_x_user(connected):
    running = connected.running
    image = running.inbound(user="user-1", image=True)
    body = {
        "business_id": BUSINESS,
        "conversation_id": connected.conversation_id,
        "message_id": image["message_id"],
        "media_id": image["media_id"],
        "media_type": "IMAGE",
    }

    answer = running.api("/business/message/media/download/", body, token=connected.access_token).json()

    assert answer["code"] == 0, answer
    url = answer["data"]["download_url"]
    assert requests.get(url, timeout=5).status_code == 403
    file = requests.get(url, headers={"x-user": connected.access_token}, timeout=5)
    assert file.status_code == 200 and file.headers["Content-Type"] == "image/png"
    assert file.content.startswith(b"\x89PNG")
    wrong = running.api(
        "/business/message/media/download/", {**body, "media_id": "v0nope"}, token=connected.access_token
    )
    assert wrong.json()["code"] == 40007


def test_quote_reply_to_a_received_message(connected):
    running = connected.running
    reference = {"referenced_message_info": {"referenced_message_id": connected.first_message_id}}

    answer = running.send_text(connected.access_token, connected.conversation_id, "Quoting you", **reference)

    assert answer["code"] == 0, answer
    ((_, echo),) = running.events(1, "im_send_msg")
    assert echo["referenced_message_info"] == {"referenced_message_id": connected.first_message_id}
    unknown = {"referenced_message_info": {"referenced_message_id": "404"}}
    assert running.send_text(connected.access_token, connected.conversation_id, "x", **unknown)["code"] == 40007


def test_image_send_uploads_first_and_only_text_can_quote(connected):
    running = connected.running
    uploaded = upload(running, connected.access_token, JPEG)
    assert uploaded["code"] == 0, uploaded
    media_id = uploaded["data"]["media_id"]
    assert running.sandbox.media[media_id].data == JPEG  # the multipart upload kept every byte
    body = {
        "business_id": BUSINESS,
        "recipient_type": "CONVERSATION",
        "recipient": connected.conversation_id,
        "message_type": "IMAGE",
        "image": {"media_id": media_id},
    }

    answer = running.api("/business/message/send/", body, token=connected.access_token).json()

    assert answer["code"] == 0, answer
    ((_, echo),) = running.events(1, "im_send_msg")
    assert echo["type"] == "image" and echo["image"] == {"media_id": media_id}
    quoting = {**body, "referenced_message_info": {"referenced_message_id": connected.first_message_id}}
    refused = running.api("/business/message/send/", quoting, token=connected.access_token).json()
    assert refused["code"] == 40002 and "only TEXT" in refused["message"]
    unknown = {**body, "image": {"media_id": "v0unknown"}}
    assert running.api("/business/message/send/", unknown, token=connected.access_token).json()["code"] == 40007


def test_upload_checks_type_and_size(connected):
    running = connected.running
    gif = upload(running, connected.access_token, GIF)
    assert gif["code"] == 40908 and "image/jpeg" in gif["message"]
    running.control(set={"image_max_bytes": 10})
    big = upload(running, connected.access_token, JPEG)
    assert big["code"] == 40907
    assert upload(running, connected.access_token, JPEG, media_type="VIDEO")["code"] == 40002
    assert running.counter("media_uploaded") == 0


def test_the_user_must_write_first(connected):
    answer = connected.running.send_text(connected.access_token, "tt-conv-never-opened")
    assert answer["code"] == 40007 and "users write first" in answer["message"]


def test_ten_messages_until_the_user_replies(connected):
    running = connected.running
    running.control(set={"send_read": False, "echo_api_sends": False})
    codes = [running.send_text(connected.access_token, connected.conversation_id, f"m{n}")["code"] for n in range(11)]
    assert codes == [0] * 10 + [40064]
    running.inbound(user="user-1", text="ok")
    assert running.send_text(connected.access_token, connected.conversation_id)["code"] == 0
    assert running.counter("messages_blocked") == 1


def test_after_the_48_hour_window_three_more_then_blocked(connected):
    running = connected.running
    running.control(set={"send_read": False, "echo_api_sends": False}, advance_clock_s=48 * 3600 + 1)
    token = running.refresh(connected.tokens["refresh_token"])["data"]["access_token"]  # 24 h tokens
    codes = [running.send_text(token, connected.conversation_id)["code"] for _ in range(4)]
    assert codes == [0, 0, 0, 40064]
    blocked = running.send_text(token, connected.conversation_id)
    assert "reply window closed" in blocked["message"]


def test_send_body_validation_answers_40002_with_the_reason(connected):
    running = connected.running
    base = {
        "business_id": BUSINESS,
        "recipient_type": "CONVERSATION",
        "recipient": connected.conversation_id,
        "message_type": "TEXT",
        "text": {"body": "hi"},
    }
    text_only = {k: v for k, v in base.items() if k != "text"}
    cases = [
        ({**base, "recipient_type": "USER"}, "recipient_type"),
        ({**base, "recipient": ""}, "recipient"),
        ({**base, "message_type": "AUDIO"}, "message_type"),
        ({**base, "text": {}}, "text.body"),
        ({**base, "text": {"body": "x" * 6001}}, "longer than 6000"),
        ({**base, "image": {"media_id": "m"}}, "must not carry image"),
        ({**base, "message_type": "SENDER_ACTION"}, "must not carry text"),
        ({**text_only, "message_type": "SENDER_ACTION", "sender_action": "DANCE"}, "TYPING or MARK_READ"),
        ({**text_only, "message_type": "SHARE_POST", "share_post": {}}, "share_post.item_id"),
        ({**base, "referenced_message_info": "x"}, "referenced_message_id"),
    ]
    for body, reason in cases:
        answer = running.api("/business/message/send/", body, token=connected.access_token)
        assert answer.status_code == 200
        assert answer.json()["code"] == 40002 and reason in answer.json()["message"], (body, answer.json())
    not_json = requests.post(
        f"{running.url}{API}/business/message/send/",
        data=b"{nope",
        headers={"Access-Token": connected.access_token},
        timeout=5,
    ).json()
    assert not_json["code"] == 40002 and "not valid JSON" in not_json["message"]
    assert running.state()["sent"] == []


def test_sender_action_and_template(connected):
    running = connected.running
    base = {"business_id": BUSINESS, "recipient_type": "CONVERSATION", "recipient": connected.conversation_id}
    typing = running.api(
        "/business/message/send/",
        {**base, "message_type": "SENDER_ACTION", "sender_action": "TYPING"},
        token=connected.access_token,
    ).json()
    assert typing["code"] == 0 and typing["data"]["message"]["message_id"] == ""
    template = {
        "type": "QA_BUTTON_CARD",
        "title": "Pick one",
        "buttons": [{"type": "REPLY", "title": "Yes", "id": "y"}],
    }
    card = running.api(
        "/business/message/send/",
        {**base, "message_type": "TEMPLATE", "template": template},
        token=connected.access_token,
    ).json()
    assert card["code"] == 0
    too_many = {**template, "buttons": template["buttons"] * 4}
    refused = running.api(
        "/business/message/send/",
        {**base, "message_type": "TEMPLATE", "template": too_many},
        token=connected.access_token,
    ).json()
    assert refused["code"] == 40002 and "1-3 buttons" in refused["message"]


def test_capabilities(connected):
    running = connected.running
    path = f"/business/message/capabilities/get/?business_id={BUSINESS}&conversation_id={connected.conversation_id}"
    path += '&conversation_type=SINGLE&capability_types=["IMAGE_SEND"]'
    answer = running.api(path, token=connected.access_token).json()
    assert answer["data"] == {"capability_infos": [{"capability_type": "IMAGE_SEND", "capability_result": True}]}
    running.control(set={"image_send_capable": False})
    assert (
        running.api(path, token=connected.access_token).json()["data"]["capability_infos"][0]["capability_result"]
        is False
    )


def test_echo_first_posts_the_echo_before_the_send_is_answered(connected):
    running = connected.running
    running.control(set={"echo_first": True, "send_read": False})
    answer = running.send_text(connected.access_token, connected.conversation_id)
    # No waiting: the echo was posted before the answer came back.
    echoes = [c for c in running.receiver.requests if c.json["event"] == "im_send_msg"]
    assert len(echoes) == 1
    assert json.loads(echoes[0].json["content"])["message_id"] == answer["data"]["message"]["message_id"]


def test_the_business_writing_from_the_app_is_an_im_send_msg_with_source_app(connected):
    running = connected.running
    answer = requests.post(
        f"{running.url}/sandbox/business_message",
        json={"account": BUSINESS, "user": "user-1", "text": "Sent from my phone"},
        timeout=5,
    ).json()
    ((_, echo),) = running.events(1, "im_send_msg")
    assert echo["message_id"] == answer["message_id"] and echo["message_tag"] == {"source": "APP"}
    assert echo["from_user"]["id"] == BUSINESS and echo["text"] == {"body": "Sent from my phone"}
    assert running.state()["sent"] == []  # not an API send


def test_create_time_in_milliseconds_when_switched(connected):
    running = connected.running
    running.control(set={"create_time_ms": True})
    running.inbound(user="user-1", text="ms please")
    envelope, _ = running.events(2, "im_receive_msg")[-1]
    assert abs(envelope["create_time"] - time.time() * 1000) < 60_000


def test_webhook_registration_api(running, receiver):
    base = {"app_id": CLIENT_KEY, "secret": CLIENT_SECRET, "event_type": "DIRECT_MESSAGE"}
    url = f"{receiver.url}/other/"
    updated = running.api("/business/webhook/update/", {**base, "callback_url": url}).json()
    assert updated["data"] == {"app_id": CLIENT_KEY, "event_type": "DIRECT_MESSAGE", "callback_url": url}
    listed = running.api(
        f"/business/webhook/list/?app_id={CLIENT_KEY}&secret={CLIENT_SECRET}&event_type=DIRECT_MESSAGE"
    )
    assert listed.json()["data"]["callback_url"] == url
    running.connect()
    running.inbound(user="u9", text="hi")
    assert receiver.wait_for(1)[0].path == "/other/"
    assert (
        running.api("/business/webhook/update/", {**base, "secret": "wrong", "callback_url": url}).json()["code"]
        == 40001
    )
    assert (
        running.api("/business/webhook/update/", {**base, "event_type": "X", "callback_url": url}).json()["code"]
        == 40002
    )
    assert running.api("/business/webhook/delete/", base).json()["code"] == 0
    refused = requests.post(
        f"{running.url}/sandbox/inbound", json={"account": BUSINESS, "user": "u9", "text": "x"}, timeout=5
    )
    assert refused.status_code == 400


def test_failed_webhooks_are_retried_with_backoff(running, receiver):
    running.connect()
    receiver.statuses.extend([500, 204])  # only 200 counts as received

    first = running.inbound(user="user-2", text="are you there?")

    assert first["deliveries"][0]["status"] == 500
    tries = receiver.wait_for(3)
    assert [c.body for c in tries] == [tries[0].body] * 3  # the same bytes, the same signature
    assert running.counter("webhooks_im_receive_msg_failed") == 2
    wait_until(lambda: running.counter("webhooks_im_receive_msg_ok") == 1, what="the third try counted")
    attempts = [w["attempt"] for w in running.state()["webhooks"]]
    assert attempts == [1, 2, 3]


def test_conversation_and_content_lists(connected):
    running = connected.running
    other = running.inbound(user="user-2", username="bob", text="Second conversation")
    sent = running.send_text(connected.access_token, connected.conversation_id, "Answer")["data"]["message"]

    query = f"/business/message/conversation/list/?business_id={BUSINESS}&conversation_type=SINGLE&limit=1"
    first_page = running.api(query, token=connected.access_token).json()["data"]
    assert [c["conversation_id"] for c in first_page["conversations"]] == [connected.conversation_id]  # latest
    assert first_page["has_more"] is True
    second = running.api(f"{query}&cursor={first_page['cursor']}", token=connected.access_token).json()["data"]
    assert [c["conversation_id"] for c in second["conversations"]] == [other["conversation_id"]]
    assert second["has_more"] is False
    assert running.api(query.replace("SINGLE", "GROUP"), token=connected.access_token).json()["code"] == 40002

    content = running.api(
        f"/business/message/content/list/?business_id={BUSINESS}&conversation_id={connected.conversation_id}",
        token=connected.access_token,
    ).json()["data"]
    assert [m["message_id"] for m in content["messages"]] == [connected.first_message_id, sent["message_id"]]
    assert content["messages"][1]["text"] == {"body": "Answer"} and content["messages"][1]["message_type"] == "TEXT"
    assert {p["role"]: p["id"] for p in content["participants"]} == {
        "BUSINESS_ACCOUNT": BUSINESS,
        "PERSONAL_ACCOUNT": "user-1",
    }


def test_every_app_the_account_authorized_gets_the_event_signed_with_its_own_secret(connected, receiver):
    running = connected.running
    second = {"client_key": "app-2", "client_secret": "secret-2", "webhook_url": f"{receiver.url}/two/"}
    requests.post(f"{running.url}/sandbox/apps", json=second, timeout=5)
    code = running.consent(client_key="app-2")["code"]
    body = {"client_id": "app-2", "client_secret": "secret-2", "grant_type": "authorization_code"}
    body |= {"auth_code": code, "redirect_uri": "https://inbox.example/tiktok/callback/"}
    assert running.api("/tt_user/oauth2/token/", body).json()["code"] == 0

    running.inbound(user="user-1", text="to both")

    by_path = {c.path: c for c in receiver.wait_for(3)[1:]}
    assert set(by_path) == {"/hook/", "/two/"}
    assert event_of(by_path["/hook/"])[0]["client_key"] == CLIENT_KEY
    assert event_of(by_path["/two/"], "secret-2")[0]["client_key"] == "app-2"
