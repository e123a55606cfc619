"""The TikTok sandbox: a real HTTP server speaking TikTok's documented wire format for a directly connected
business account (`/work/shared/tiktok/README.md` §2.1 OAuth, §3 Business Messaging, §8 codes, §9 limits,
§10 webhook signature). One host serves both TikTok hosts: point the provider's auth base URL *and* API base URL
at `http://HOST:PORT` (TikTok: `https://www.tiktok.com` and `https://business-api.tiktok.com`).

Conventions (as TikTok's Business API): every path ends with `/` (without it: HTTP 404, code 40400); bodies are
JSON except the upload (multipart); calls made for an account carry `Access-Token: <access token>` (not Bearer);
every answer is `{"code": 0, "message": "OK", "request_id": "...", "data": {...}}`, and a refused call is HTTP 200
with a non-zero `code` and `message` "<meaning>: <reason>" (§8.1), e.g.
`{"code": 40002, "message": "Param error: text.body is a required, non-empty string", "request_id": "…", "data": {}}`.

OAuth (§2.1)
  GET  /v2/auth/authorize/?client_key=K&response_type=code&scope=a,b&redirect_uri=URL&state=S
       An HTML consent page: the app's name, the business account (a choice if several), the scopes asked (each a
       checkbox: users may grant a subset), buttons "Authorize" and "Deny" (a form POSTed to the same path with
       `decision=authorize|deny`, `account`, `scope` (repeated) and the query's fields). Then 302 to redirect_uri:
         authorize → ?code=<code>&state=S      (`callback_code_param`: "code", or "auth_code" (§11.3))
         deny      → ?error=access_denied&error_code=<deny_error_code>&error_description=...&state=S
         bad response_type / no scope / unknown scope → ?error=unsupported_response_type|invalid_request|
                                                          invalid_scope&error_description=...&state=S
       An unknown client_key or an unregistered redirect_uri gets an HTML error page (400), no redirect.
  POST /open_api/v1.3/tt_user/oauth2/token/
       {"client_id", "client_secret", "grant_type": "authorization_code", "auth_code", "redirect_uri"}
       → data {"open_id", "scope": "a,b", "access_token": "act.…", "refresh_token": "rft.…", "expires_in",
               "refresh_token_expires_in", "token_type": "Bearer"}
       Codes are single use and live `auth_code_ttl_s` (600). Wrong client → 40001; grant_type → 40108; code
       unknown, used, expired or redirect_uri different → 40110.
  POST /open_api/v1.3/tt_user/oauth2/refresh_token/
       {"client_id", "client_secret", "grant_type": "refresh_token", "refresh_token"} → the same data, with a NEW
       refresh token (the old one then answers 40107; `refresh_rotates`). Revoked or replaced → 40107; expired
       → 40103. Earlier access tokens stay valid until they expire.
  POST /open_api/v1.3/tt_user/oauth2/revoke/      {"client_id", "client_secret", "access_token"} → data {}
       Ends the grant: its access and refresh tokens (40105 / 40107 from then on) and its webhooks.
  POST /open_api/v1.3/tt_user/token_info/get/     {"app_id", "access_token"} (no header)
       → data {"app_id", "scope", "creator_id": <open_id>}
  GET  /open_api/v1.3/business/get/?business_id=<open_id>&fields=["username","display_name","profile_image"]
       (§6.1; scope user.info.basic) → data {"username", "display_name", "profile_image", …the fields asked}

Access token checks (every call below): header missing → 40104; unknown or revoked → 40105; expired → 40102;
business_id not the token's open_id, or the scope not granted → 40001.

Business Messaging (§3)
  POST /open_api/v1.3/business/message/send/      (scope message.list.send)
       {"business_id", "recipient_type": "CONVERSATION", "recipient": <conversation_id>,
        "message_type": "TEXT", "text": {"body": "…"},
        "referenced_message_info": {"referenced_message_id": <message_id>}}          (quote: TEXT only)
       {…, "message_type": "IMAGE", "image": {"media_id": <from upload>}}
       also SHARE_POST {"share_post": {"item_id"}}, TEMPLATE {"template": {...}}, SENDER_ACTION
       {"sender_action": "TYPING"|"MARK_READ"} (message_id "").
       → data {"message": {"message_id": "73…"}}
       Refusals: shape → 40002 with the reason; unknown conversation (users write first), quoted message or media
       → 40007; 48 h window (`reply_window_s`) and caps (`max_messages_before_reply` 10 until the user writes
       again, `max_messages_after_window` 3) → 40064; text over `text_max_chars` (6000) → 40002.
       After a send: `im_send_msg` (source API) after `echo_delay_ms` (or before the answer: `echo_first`), and
       `im_mark_read_msg` after `read_delay_ms` (`send_read`).
  POST /open_api/v1.3/business/message/media/upload/   multipart: business_id, media_type=IMAGE, file
       → data {"media_id"} (valid `media_ttl_s`, 30 days). Not JPG/PNG (`image_types`) → 40908; over
       `image_max_bytes` (3 MB) → 40907.
  POST /open_api/v1.3/business/message/media/download/   (scope message.list.read)
       {"business_id", "conversation_id", "message_id", "media_id", "media_type": "IMAGE"}
       → data {"download_url": "http://HOST:PORT/sandbox/media/<token>/"}; GET it with `x-user: <access token>`
       (403 otherwise).
  GET  /open_api/v1.3/business/message/capabilities/get/?business_id=&conversation_id=&conversation_type=SINGLE
       &capability_types=["IMAGE_SEND"] → data {"capability_infos": [{"capability_type", "capability_result"}]}
  GET  /open_api/v1.3/business/message/conversation/list/?business_id=&conversation_type=SINGLE&limit=1..100&cursor=
       → data {"conversations": [{"conversation_id", "up_time": <ms>, "referral": {"ad": [], "short_link": []}}],
               "has_more", "cursor"}
  GET  /open_api/v1.3/business/message/content/list/?business_id=&conversation_id=   (the 20 most recent)
       → data {"messages": [{"message_id", "timestamp", "message_type": "TEXT"|…, "from_user": {"id", "role"},
               "to_user", "text": {"body"}|…}] (this shape is a guess), "participants": [{"role":
               "BUSINESS_ACCOUNT"|"PERSONAL_ACCOUNT", "id", "display_name", "profile_image", "is_follower"}]}
  POST /open_api/v1.3/business/webhook/update/   {"app_id", "secret", "event_type": "DIRECT_MESSAGE",
       "callback_url"} → data {"app_id", "event_type", "callback_url"}
  GET  /open_api/v1.3/business/webhook/list/?app_id=&secret=&event_type=   → the same data
  POST /open_api/v1.3/business/webhook/delete/   {"app_id", "secret", "event_type"} → data {"app_id", "event_type"}

Webhooks (§3.5, §10) go to the DIRECT_MESSAGE callback of every app the account has authorized:
  POST <callback_url>   TikTok-Signature: t=<unix s>,s=<hex HMAC-SHA256(app secret, t + "." + raw body)>
  {"client_key", "event", "create_time": <s> (ms with `create_time_ms`), "user_openid": <business open_id>,
   "content": "<JSON string>"}
  im_receive_msg  content {"conversation_id", "message_id", "timestamp": <ms>, "type": "text"|"image"|
                  "share_post"|"sticker"|…, "text": {"body"} | "image": {"media_id"} |
                  "share_post": {"embed_url"}, "from": <username>, "from_user": {"id", "role": "personal_account"},
                  "to": <business username>, "to_user": {"id": <open_id>, "role": "business_account"},
                  "message_tag": {"source": "APP"}[, "referenced_message_info": {"referenced_message_id"}]}
  im_send_msg     the same with the roles swapped; message_tag.source "API" (our sends) or "APP" (the app)
  im_mark_read_msg content {"conversation_id", "read": {"last_read_timestamp": <ms>}, "from_user": {"id"}}
  Any answer but 200 is tried again `webhook_retries` times after `webhook_retry_ms` × 2^(n-1).

Content Posting (§4, TikTok for Developers: `Authorization: Bearer`, the `{"data", "error"}` envelope): creator_info,
video and photo init, the chunk PUTs to `/upload/video/`, status fetch, and their faults: see `posting.py`.

Control (no authentication: the sandbox listens on loopback)
  GET  /sandbox/state     switches, counters, apps, accounts, tokens issued (with status active/expired/rotated/
                          revoked), conversations, sent messages (with `read`), the last webhook posts, `idle`
  POST /sandbox/control   {"set": {switch: value}} | {"reset": true} | {"expire_access_token": <open_id>|"*"} |
                          {"revoke_refresh_token": <open_id>|"*"} | {"advance_clock_s": N}
  POST /sandbox/apps      {"client_key", "client_secret", "name", "redirect_uri"|"redirect_uris", "webhook_url"}
  POST /sandbox/accounts  {"open_id", "username", "display_name"}
  POST /sandbox/inbound   {"account": <open_id>, "user": <user id>, "username"?, "text"|"image": true|
                          "share_post": true|<embed url>|"other": "sticker"|…, "reply_to"?, "message_id"?,
                          "conversation_id"?} → {"conversation_id", "message_id", "media_id"?, "deliveries"}
  POST /sandbox/business_message  the same fields: the business writes from the TikTok app (im_send_msg, APP)
  POST /sandbox/read      {"conversation_id", "message_id"?}: the user reads now (im_mark_read_msg)

Posts and engagement (§6.1, the post and authorization webhooks): see `videos.py` — `GET …/business/video/list/`
(cursor paging, figures growing with the clock), followers on `…/business/get/`, and `POST /sandbox/video`,
`/sandbox/video/remove`, `/sandbox/revoke_authorization`, `/sandbox/followers`.

Uncertain facts, each a switch (`behaviour.py`, §11): token lifetimes (`access_token_ttl_s` 24 h,
`refresh_token_ttl_s` 365 d), refresh rotation, the callback's code parameter, the deny `error_code` value,
the 48 h window and the 10 / 3 caps, text length (6000), image types and size (JPG/PNG ≤ 3 MB), the unit of
`create_time`, the trailing-slash 404, and the throttle code (40100; TikTok sends no Retry-After). Guesses of
this sandbox: a wrong client id or secret answers 40001; media of the wrong business 40007.

Faults (`/open_api/` only, one per request, in this order): `hold_next` (hold `hold_ms`, close unanswered),
`fail_next` (HTTP `fail_status`, code 50000), `throttle_next` (HTTP 200, `throttle_code`), `invalid_token_next`
(40105 whatever the token), `slow_ms`. Counters: fault_held, fault_http_5xx, fault_throttled,
fault_invalid_token, slow_held; and tokens_issued, tokens_refreshed, refresh_rejected, tokens_revoked,
oauth_code_rejected, oauth_denied, messages_sent, messages_blocked, media_uploaded, webhooks_<event>_ok|failed.
"""

from __future__ import annotations

import json
import logging
from email.parser import BytesParser
from email.policy import HTTP
from html import escape
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tiktok_channel.direct.sandbox import payloads
from tiktok_channel.direct.sandbox.posting import V2Error, v2_envelope
from tiktok_channel.direct.sandbox.state import ApiError, Sandbox, cover_svg
from tiktok_channel.sandbox.switches import SandboxHandler, SandboxHTTPServer

logger = logging.getLogger(__name__)

API = "/open_api/v1.3"
AUTHORIZE = "/v2/auth/authorize/"
MAX_BODY_BYTES = 25 * 1024 * 1024


class _HoldUnanswered(Exception):
    """The hold fault: close the connection without an answer."""


class _ControlError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class Handler(SandboxHandler):
    server: SandboxServer
    server_version = "TikTokSandbox/1"
    max_body_bytes = MAX_BODY_BYTES

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        # The request line may carry a secret (webhook/list puts it in the query): only the path is logged.
        logger.debug("%s %s", self.command, urlsplit(self.path).path)

    @property
    def sandbox(self) -> Sandbox:
        return self.server.sandbox

    # --- plumbing --------------------------------------------------------------------------------------------

    def _json(self, status: int, body: Any) -> None:
        self.send_body(status, json.dumps(body, ensure_ascii=False).encode(), "application/json; charset=utf-8")

    def _ok(self, data: dict) -> None:
        self._json(200, payloads.envelope(data))

    def _html(self, status: int, page: str) -> None:
        self.send_body(status, page.encode(), "text/html; charset=utf-8")

    def _redirect(self, url: str) -> None:
        self.send_body(302, b"", "text/plain", {"Location": url})

    def _raw_body(self) -> bytes:
        return self.read_body(lambda: ApiError(payloads.FILE_TOO_LARGE, "request body too large", status=413))

    def _json_body(self) -> dict:
        try:
            body = json.loads(self._raw_body() or b"null")
        except (ValueError, UnicodeDecodeError):
            raise ApiError(payloads.PARAM_ERROR, "the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ApiError(payloads.PARAM_ERROR, "the body must be a JSON object")
        return body

    def _query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.path).query, keep_blank_values=True).items()}

    def _routes(self) -> dict[tuple[str, str], Any]:
        return {
            ("GET", AUTHORIZE): self._authorize_page,
            ("POST", AUTHORIZE): self._authorize_decision,
            ("POST", f"{API}/tt_user/oauth2/token/"): lambda: self._ok(self.sandbox.exchange_code(self._json_body())),
            ("POST", f"{API}/tt_user/oauth2/refresh_token/"): lambda: self._ok(self.sandbox.refresh(self._json_body())),
            ("POST", f"{API}/tt_user/oauth2/revoke/"): lambda: self._ok(self.sandbox.revoke(self._json_body())),
            ("POST", f"{API}/tt_user/token_info/get/"): lambda: self._ok(self.sandbox.token_info(self._json_body())),
            ("GET", f"{API}/business/get/"): self._business_get,
            ("POST", f"{API}/business/message/send/"): self._message_send,
            ("POST", f"{API}/business/message/media/upload/"): self._media_upload,
            ("POST", f"{API}/business/message/media/download/"): self._media_download,
            ("GET", f"{API}/business/message/capabilities/get/"): self._capabilities,
            ("GET", f"{API}/business/message/conversation/list/"): self._conversation_list,
            ("GET", f"{API}/business/message/content/list/"): self._content_list,
            ("GET", f"{API}/business/video/list/"): self._video_list,
            ("GET", f"{API}/business/comment/list/"): self._comment_list,
            ("POST", f"{API}/business/comment/reply/create/"): self._comment_reply,
            ("POST", f"{API}/business/comment/hide/"): self._comment_hide,
            ("POST", f"{API}/business/comment/delete/"): self._comment_delete,
            ("GET", f"{API}/business/comment/reply/list/"): self._comment_reply_list,
            ("POST", f"{API}/business/webhook/update/"): self._webhook_update,
            ("GET", f"{API}/business/webhook/list/"): self._webhook_list,
            ("POST", f"{API}/business/webhook/delete/"): self._webhook_delete,
            ("POST", "/v2/post/publish/creator_info/query/"): self._creator_info,
            ("POST", "/v2/post/publish/video/init/"): self._video_init,
            ("POST", "/v2/post/publish/content/init/"): self._photo_init,
            ("POST", "/v2/post/publish/status/fetch/"): self._post_status,
            ("PUT", "/upload/video/"): self._upload_chunk,
            ("GET", "/sandbox/state"): lambda: self._json(200, self.sandbox.state()),
            ("POST", "/sandbox/control"): lambda: self._control(self.sandbox.control),
            ("POST", "/sandbox/apps"): lambda: self._control(lambda b: self.sandbox.add_app(b).public()),
            ("POST", "/sandbox/accounts"): lambda: self._control(lambda b: self.sandbox.add_account(b).public()),
            ("POST", "/sandbox/inbound"): lambda: self._control(self.sandbox.inbound),
            ("POST", "/sandbox/business_message"): lambda: self._control(self.sandbox.business_message),
            ("POST", "/sandbox/read"): lambda: self._control(self._read),
            ("POST", "/sandbox/comment"): lambda: self._control(self.sandbox.comment),
            ("POST", "/sandbox/video"): lambda: self._control(self.sandbox.videos.post),
            ("POST", "/sandbox/video/remove"): lambda: self._control(self.sandbox.videos.remove),
            ("POST", "/sandbox/revoke_authorization"): lambda: self._control(self.sandbox.videos.revoke_authorization),
            ("POST", "/sandbox/followers"): lambda: self._control(self.sandbox.videos.set_followers),
        }

    def _route(self, method: str) -> None:
        path = urlsplit(self.path).path
        try:
            if method == "GET" and path.startswith("/sandbox/media/"):
                self._media_file(path.removeprefix("/sandbox/media/").strip("/"))
                return
            if method == "GET" and path.startswith("/sandbox/cover/"):
                self._cover(path.removeprefix("/sandbox/cover/").removesuffix(".svg"))
                return
            routes = self._routes()
            if not path.endswith("/") and (method, path + "/") in routes:
                if path.startswith("/open_api/") and self.sandbox.behaviour.strict_trailing_slash:
                    raise ApiError(payloads.ROUTE_NOT_FOUND, "the path must end with /", status=404)
                path += "/"
            handler = routes.get((method, path)) or routes.get((method, path.rstrip("/")))
            if handler is None:
                known = {p for _, p in routes}
                if path in known:
                    raise ApiError(payloads.ROUTE_NOT_FOUND, f"{method} is not allowed here", status=405)
                raise ApiError(payloads.ROUTE_NOT_FOUND, f"no route {path}", status=404)
            if path.startswith("/open_api/"):
                self._faults()
            handler()
        except ApiError as error:
            self._json(error.status, error.body())
        except V2Error as error:
            self._json(error.status, error.body())
        except _HoldUnanswered:
            self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self._route("GET")

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        self._route("POST")

    def do_PUT(self) -> None:  # noqa: N802 - the stdlib's name
        self._route("PUT")

    def _faults(self) -> None:
        sandbox = self.sandbox
        with sandbox.lock:
            b = sandbox.behaviour
            hold = b.hold_ms / 1000 if b.take("hold_next") else None
            fail = hold is None and b.take("fail_next")
            throttle = hold is None and not fail and b.take("throttle_next")
            fail_status, throttle_code, slow = b.fail_status, b.throttle_code, b.slow_ms / 1000
        if hold is not None:
            sandbox.count("fault_held")
            self.server.stopping.wait(hold)
            raise _HoldUnanswered
        if fail:
            sandbox.count("fault_http_5xx")
            raise ApiError(payloads.SYSTEM_ERROR, "sandbox fault", status=fail_status)
        if throttle:
            sandbox.count("fault_throttled")
            raise ApiError(throttle_code, "sandbox fault")
        if slow:
            sandbox.count("slow_held")  # the request has arrived and is being held: tests wait for this
            self.server.stopping.wait(slow)

    def _base_url(self) -> str:
        return f"http://{self.headers.get('Host') or '{}:{}'.format(*self.server.server_address[:2])}"

    # --- OAuth consent ---------------------------------------------------------------------------------------

    def _consent_request(self, fields: dict[str, str]):
        """The app, redirect URI and asked scopes of an authorize request; an HTML 400 if no redirect is allowed."""
        try:
            app = self.sandbox.app_for_authorize(fields.get("client_key", ""), fields.get("redirect_uri", ""))
        except ValueError as exc:
            self._html(400, _error_page(str(exc)))
            return None
        state = fields.get("state", "")
        redirect_uri = fields["redirect_uri"]
        asked = [s for s in fields.get("scope", "").split(",") if s]
        problem = None
        if fields.get("response_type") != "code":
            problem = ("unsupported_response_type", "response_type must be code")
        elif not asked:
            problem = ("invalid_request", "scope is required")
        elif set(asked) - set(payloads.KNOWN_SCOPES):
            problem = ("invalid_scope", f"unknown scope: {', '.join(sorted(set(asked) - set(payloads.KNOWN_SCOPES)))}")
        if problem:
            error, description = problem
            self._redirect(_with_query(redirect_uri, error=error, error_description=description, state=state))
            return None
        return app, redirect_uri, asked, state

    def _authorize_page(self) -> None:
        fields = self._query()
        found = self._consent_request(fields)
        if found is None:
            return
        app, _, asked, _ = found
        accounts = list(self.sandbox.accounts.values())
        if not accounts:
            self._html(400, _error_page("no TikTok business account in the sandbox (POST /sandbox/accounts)"))
            return
        self.sandbox.count("oauth_page_shown")
        self._html(200, _consent_page(app.name, accounts, asked, fields))

    def _authorize_decision(self) -> None:
        raw = self._raw_body().decode("utf-8", "replace")
        form = parse_qs(raw, keep_blank_values=True)
        fields = {k: v[0] for k, v in form.items() if k != "scope"}
        fields["scope"] = ",".join(form.get("asked", [""])[0].split(","))
        found = self._consent_request(fields)
        if found is None:
            return
        app, redirect_uri, asked, state = found
        if fields.get("decision") == "deny":
            self.sandbox.count("oauth_denied")
            self._redirect(
                _with_query(
                    redirect_uri,
                    error="access_denied",
                    error_code=self.sandbox.behaviour.deny_error_code,
                    error_description="The user denied the authorization request",
                    state=state,
                )
            )
            return
        granted = [s for s in asked if s in form.get("scope", [])]
        account = self.sandbox.accounts.get(fields.get("account", ""))
        if fields.get("decision") != "authorize" or account is None or not granted:
            self._html(400, _error_page("choose an account, at least one permission, and Authorize or Deny"))
            return
        code = self.sandbox.issue_code(app=app, open_id=account.open_id, scope=granted, redirect_uri=redirect_uri)
        self._redirect(_with_query(redirect_uri, **{self.sandbox.behaviour.callback_code_param: code, "state": state}))

    # --- Business API ----------------------------------------------------------------------------------------

    def _business_get(self) -> None:
        query = self._query()
        grant = self.sandbox.authenticate(self._token(), query.get("business_id"), "user.info.basic")
        fields = _json_list(query, "fields")
        self.sandbox.videos.throttle(grant.open_id)
        self._ok(self.sandbox.business_info(grant, fields))

    def _token(self) -> str:
        return (self.headers.get("Access-Token") or "").strip()

    def _message_send(self) -> None:
        body = self._json_body()
        grant = self.sandbox.authenticate(self._token(), body.get("business_id"), "message.list.send")
        data, echo_now = self.sandbox.send(grant, body)
        for job in echo_now:
            job()
        self._ok(data)

    def _media_upload(self) -> None:
        form = self._multipart()
        grant = self.sandbox.authenticate(self._token(), form.get("business_id", b"").decode(), "message.list.send")
        self._ok(self.sandbox.upload_media(grant, form.get("media_type", b"").decode(), form.get("file", b"")))

    def _multipart(self) -> dict[str, bytes]:
        content_type = self.headers.get("Content-Type") or ""
        body = self._raw_body()
        if not content_type.startswith("multipart/form-data"):
            raise ApiError(payloads.PARAM_ERROR, "the upload must be multipart/form-data")
        message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        if not message.is_multipart():
            raise ApiError(payloads.PARAM_ERROR, "the multipart body could not be read")
        parts = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name:
                parts[str(name)] = part.get_payload(decode=True) or b""
        return parts

    def _media_download(self) -> None:
        body = self._json_body()
        grant = self.sandbox.authenticate(self._token(), body.get("business_id"), "message.list.read")
        self._ok(self.sandbox.download_url(grant, body, self._base_url()))

    def _media_file(self, token: str) -> None:
        media = self.sandbox.download(token, (self.headers.get("x-user") or "").strip())
        if media is None:
            self.send_body(403, b"Forbidden: send a live access token in x-user", "text/plain")
            return
        self.send_body(200, media.data, media.mime)

    def _capabilities(self) -> None:
        query = self._query()
        self.sandbox.authenticate(self._token(), query.get("business_id"), "message.list.read")
        if not query.get("conversation_id"):
            raise ApiError(payloads.PARAM_ERROR, "conversation_id is required")
        kinds = _json_list(query, "capability_types") or ["IMAGE_SEND"]
        capable = self.sandbox.behaviour.image_send_capable
        self._ok(
            {"capability_infos": [{"capability_type": k, "capability_result": capable} for k in kinds]},
        )

    def _conversation_list(self) -> None:
        query = self._query()
        grant = self.sandbox.authenticate(self._token(), query.get("business_id"), "message.list.read")
        self._ok(self.sandbox.conversation_list(grant, query))

    def _content_list(self) -> None:
        query = self._query()
        grant = self.sandbox.authenticate(self._token(), query.get("business_id"), "message.list.read")
        self._ok(self.sandbox.content_list(grant, query.get("conversation_id", "")))

    def _video_list(self) -> None:
        query = self._query()
        grant = self.sandbox.authenticate(self._token(), query.get("business_id"), "video.list")
        self._ok(self.sandbox.videos.video_list(grant.open_id, query, _json_list(query, "fields")))

    def _comment_list(self) -> None:
        query = self._query()
        grant = self.sandbox.authenticate(self._token(), query.get("business_id"), "comment.list")
        self._ok(self.sandbox.comment_list(grant, query))

    def _comment_reply(self) -> None:
        body = self._json_body()
        grant = self.sandbox.authenticate(self._token(), body.get("business_id"), "comment.list.manage")
        self._ok(self.sandbox.comment_reply(grant, body))

    def _comment_hide(self) -> None:
        body = self._json_body()
        grant = self.sandbox.authenticate(self._token(), body.get("business_id"), "comment.list.manage")
        self._ok(self.sandbox.comment_hide(grant, body))

    def _comment_delete(self) -> None:
        body = self._json_body()
        grant = self.sandbox.authenticate(self._token(), body.get("business_id"), "comment.list.manage")
        self._ok(self.sandbox.comment_delete(grant, body))

    def _comment_reply_list(self) -> None:
        query = self._query()
        grant = self.sandbox.authenticate(self._token(), query.get("business_id"), "comment.list")
        self._ok(self.sandbox.comment_reply_list(grant, query))

    def _cover(self, video_id: str) -> None:
        with self.sandbox.lock:
            video = self.sandbox.videos.get(video_id)
        if video is None:
            self.send_body(404, b"no such video", "text/plain")
            return
        self.send_body(200, cover_svg(video_id, video.caption), "image/svg+xml")

    def _webhook_update(self) -> None:
        body = self._json_body()
        app = self.sandbox.webhook_app(body.get("app_id"), body.get("secret"), body.get("event_type"))
        url = body.get("callback_url")
        if not isinstance(url, str) or not urlsplit(url).scheme.startswith("http") or not urlsplit(url).netloc:
            raise ApiError(payloads.PARAM_ERROR, "callback_url must be an absolute http(s) URL")
        with self.sandbox.lock:
            app.webhooks[body["event_type"]] = url
        self.sandbox.count("webhook_registered")
        self._ok({"app_id": app.client_key, "event_type": body["event_type"], "callback_url": url})

    def _webhook_list(self) -> None:
        query = self._query()
        app = self.sandbox.webhook_app(query.get("app_id"), query.get("secret"), query.get("event_type"))
        url = app.webhooks.get(query["event_type"], "")
        self._ok({"app_id": app.client_key, "event_type": query["event_type"], "callback_url": url})

    def _webhook_delete(self) -> None:
        body = self._json_body()
        app = self.sandbox.webhook_app(body.get("app_id"), body.get("secret"), body.get("event_type"))
        with self.sandbox.lock:
            app.webhooks.pop(body["event_type"], None)
        self._ok({"app_id": app.client_key, "event_type": body["event_type"]})

    # --- Content Posting (§4; posting.py) ----------------------------------------------------------------------

    def _v2_ok(self, data: dict) -> None:
        self._json(200, v2_envelope(data))

    def _v2_body(self) -> dict:
        try:
            return self._json_body()
        except ApiError as error:
            raise V2Error(400, "invalid_params", error.reason) from None

    def _bearer(self, scope: str = "video.publish") -> str:
        return self.sandbox.posting.authenticate((self.headers.get("Authorization") or "").strip(), scope)

    def _creator_info(self) -> None:
        open_id = self._bearer()
        data, error = self.sandbox.posting.creator_info(open_id)
        if error:  # TikTok answers these with HTTP 200 (§4.1)
            self._json(200, v2_envelope({}, code=error, message=f"{error} (sandbox switch)"))
            return
        self._v2_ok(data)

    def _video_init(self) -> None:
        open_id = self._bearer()
        self._v2_ok(self.sandbox.posting.video_init(open_id, self._v2_body(), self._base_url()))

    def _photo_init(self) -> None:
        open_id = self._bearer()
        self._v2_ok(self.sandbox.posting.photo_init(open_id, self._v2_body()))

    def _post_status(self) -> None:
        open_id = self._bearer()
        self._v2_ok(self.sandbox.posting.status(open_id, self._v2_body()))

    def _upload_chunk(self) -> None:
        posting = self.sandbox.posting
        query = self._query()
        publish = posting.upload_for(query.get("upload_id", ""), query.get("upload_token", ""))
        if publish is None:
            self.send_body(404, b"no such upload", "text/plain")
            return
        delay = posting.chunk_delay()
        if delay:
            self.sandbox.count("chunk_held")  # the chunk has arrived and is held: tests wait for this
            self.server.stopping.wait(delay)
        try:
            length = int(self.headers.get("Content-Length") or -1)
        except ValueError:
            length = -1
        if not 0 < length <= self.sandbox.behaviour.upload_max_last_chunk_bytes:
            self.send_body(400, b"Content-Length is required and at most the largest chunk", "text/plain")
            self.close_connection = True
            return
        body = self.rfile.read(length)
        if len(body) < length:  # the uploader went away mid-chunk: nothing is kept
            self.sandbox.count("chunks_incomplete")
            self.close_connection = True
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, text, extra = posting.accept_chunk(publish, headers, body)
        self.send_body(status, text.encode(), "text/plain", extra)

    # --- control ---------------------------------------------------------------------------------------------

    def _control(self, action) -> None:
        try:
            body = json.loads(self._raw_body() or b"null")
        except (ValueError, UnicodeDecodeError):
            self._json(400, {"error": "the body is not valid JSON"})
            return
        try:
            self._json(200, action(body))
        except (ValueError, TypeError) as exc:
            self._json(400, {"error": str(exc)})

    def _read(self, body: Any) -> dict:
        if not isinstance(body, dict) or not isinstance(body.get("conversation_id"), str):
            raise ValueError("conversation_id is a required string")
        message_id = body.get("message_id") or ""
        return {"deliveries": self.sandbox.mark_read(body["conversation_id"], str(message_id))}


def _json_list(query: dict[str, str], name: str) -> list[str]:
    """A list parameter, JSON-encoded in the query string as the Business API wants (§1)."""
    raw = query.get(name)
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ApiError(payloads.PARAM_ERROR, f'{name} must be a JSON list of strings, e.g. ["a","b"]')
    return value


def _with_query(url: str, **params: str) -> str:
    return url + ("&" if urlsplit(url).query else "?") + urlencode(params)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; background: #f1f1f2; margin: 0; padding: 1rem; color: #161823; }}
main {{ max-width: 28rem; margin: 2rem auto; background: #fff; border-radius: 12px; padding: 1.5rem; }}
h1 {{ font-size: 1.25rem; }} label {{ display: block; margin: .4rem 0; }}
.buttons {{ display: flex; gap: .75rem; margin-top: 1.25rem; }}
button {{ flex: 1; padding: .8rem; border-radius: 6px; border: 1px solid #ccc; font-size: 1rem; cursor: pointer; }}
button[value=authorize] {{ background: #fe2c55; color: #fff; border-color: #fe2c55; }}
.note {{ color: #6b6b6b; font-size: .85rem; margin-top: 1rem; }}
</style></head><body><main>{body}<p class="note">TikTok sandbox: no real TikTok account is involved.</p></main>
</body></html>"""


def _error_page(reason: str) -> str:
    return PAGE.format(
        title="TikTok sandbox: something went wrong",
        body=f"<h1>Something went wrong</h1><p>{escape(reason)}</p>",
    )


def _consent_page(app_name: str, accounts: list, asked: list[str], fields: dict[str, str]) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(fields.get(k, ""))}">'
        for k in ("client_key", "response_type", "redirect_uri", "state")
    )
    hidden += f'<input type="hidden" name="asked" value="{escape(",".join(asked))}">'
    choices = "".join(
        f'<label><input type="radio" name="account" value="{escape(a.open_id)}"{" checked" if i == 0 else ""}> '
        f"{escape(a.display_name)} (@{escape(a.username)})</label>"
        for i, a in enumerate(accounts)
    )
    scopes = "".join(
        f'<label><input type="checkbox" name="scope" value="{escape(s)}" checked> {escape(s)}</label>' for s in asked
    )
    body = (
        f"<h1>{escape(app_name)} would like to access your TikTok account</h1>"
        f'<form method="post" action="{AUTHORIZE}">{hidden}'
        f"<fieldset><legend>Continue as</legend>{choices}</fieldset>"
        f"<fieldset><legend>{escape(app_name)} asks for</legend>{scopes}</fieldset>"
        '<div class="buttons"><button type="submit" name="decision" value="deny">Deny</button>'
        '<button type="submit" name="decision" value="authorize">Authorize</button></div></form>'
    )
    return PAGE.format(title=f"Authorize {escape(app_name)} — TikTok sandbox", body=body)


class SandboxServer(SandboxHTTPServer):
    handler = Handler
    thread_name = "tiktok-sandbox"
    poll_interval_s = 0.05

    def __init__(self, sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(sandbox, host, port)
        sandbox.cover_base_url = self.url  # the covers it serves are named by its own address
