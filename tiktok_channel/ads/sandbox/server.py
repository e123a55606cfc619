"""The TikTok Marketing API sandbox: a real HTTP server speaking the Marketing API's documented wire format
(`/work/shared/tiktok/README.md` §2.2 advertiser OAuth, §7 campaigns / ad groups / ads / images / reports / custom
audiences / review webhooks, §8.1 codes, §9 throttling, §10 signatures). One host serves the consent page and the
API: point the product's advertiser auth URL *and* Business API base URL at `http://HOST:PORT` (TikTok:
`https://business-api.tiktok.com`). Built on the TikTok sandbox's handler (`direct/sandbox/server.py`: the same
envelope, trailing-slash rule, faults, multipart reader and control plumbing) and the sandboxes' shared server and
state (`sandbox/switches.py`).

Conventions (§1): every path ends with `/`; `Access-Token: <advertiser token>` header; JSON bodies, multipart
uploads; list and object GET parameters JSON-encoded; answers `{"code", "message", "request_id", "data"}`, a
refusal HTTP 200 with a non-zero `code` and `message` "<meaning>: <reason>". Paged lists answer `data.list[]` and
`data.page_info {page, page_size, total_number, total_page}`. Where TikTok's OpenAPI files cover an endpoint
(`openapi/`), its required fields and enums are checked first (40002).

OAuth (§2.2)
  GET  /portal/auth?app_id=&state=&redirect_uri=   consent page: the app's name, the sandbox's ad accounts (each a
       checkbox), Authorize / Deny (a form POSTed to the same path). Then 302 to redirect_uri with
       `?auth_code=<code>&state=S` (valid `auth_code_ttl_s`, single use), or `?error=access_denied&state=S` (a guess).
       Unknown app or unregistered redirect_uri: an HTML 400, no redirect.
  POST /open_api/v1.3/oauth2/access_token/  {"app_id", "secret", "auth_code"} → data {"access_token",
       "advertiser_ids", "scope": [4, 5, 6]}; the token never expires. Wrong app/secret 40001; code 40110.
  GET  /open_api/v1.3/oauth2/advertiser/get/?app_id=&secret=   → data {"list": [{advertiser_id, advertiser_name}]}
  POST /open_api/v1.3/oauth2/revoke_token/  {"app_id", "secret", "access_token"} → data {app_id, advertiser_ids}
  GET  /open_api/v1.3/advertiser/info/?advertiser_ids=[...]&fields=[...]   → data {"list": [...]}
  Token checks: header missing 40104; unknown or revoked 40105; unknown advertiser 40300; not granted 40001.

Campaigns, ad groups, ads (§7.1-7.3): POST `campaign|adgroup|ad/create/`, GET `…/get/` (`fields`, `filtering`,
`page`, `page_size` 1-1000; deleted ones only with `primary_status` STATUS_ALL or STATUS_DELETE), POST
`…/status/update/` (1-20 ids, ENABLE | DISABLE | DELETE; deleted stays deleted; delete cascades), POST
`campaign/update/`. Creates answer the object (campaign, ad group) or `{"ad_ids", "creatives"}`; a `request_id`
seen before answers the first result again. New ads are `AD_STATUS_AUDIT` until `/sandbox/review`.
Images (§7.4): POST `file/image/ad/upload/` multipart (`advertiser_id`, `upload_type`, `image_file` +
`image_signature` MD5 (40900), or `image_url`; `file_name` unique per advertiser (40911); JPG/PNG (40908);
≤ 3,686,400 pixels) → data {image_id, material_id, width, height, format, image_url, signature, size, file_name}.
Reports (§7.5): GET `report/integrated/get/` BASIC, data_level AUCTION_AD|ADGROUP|CAMPAIGN|ADVERTISER, dimensions
[<id>] or [<id>, "stat_time_day"], metrics spend impressions clicks conversion reach ctr cpc cpm
cost_per_conversion conversion_rate (+ names), start/end_date ≤ 30 days by day, filtering IN on ids, paging,
order_field/order_type, enable_total_metrics. Metric values are strings.
Custom audiences (§7.6): POST `dmp/custom_audience/file/upload/` (multipart `file`, `file_signature` MD5,
`calculate_type`) → data {file_path}; rows not hex digests of the type → 40062; fewer than `audience_min_rows`
→ 40002. POST `dmp/custom_audience/create/` → data {custom_audience_id}; POST `…/update/` (action REPLACE by
default, APPEND, REMOVE); GET `…/get/?custom_audience_ids=[...]` → data {list: [{audience_details,
audience_history}]}.
Review webhooks (§7.7): POST `subscription/subscribe/` {app_id, secret, subscribe_entity AD|AD_GROUP,
callback_url, subscription_detail {access_token, advertiser_id, ad_id|adgroup_id}} → data {subscription_id};
POST `subscription/unsubscribe/` {app_id, secret, subscription_id}.

Control (loopback only: any other client gets 403)
  GET  /sandbox/state            switches, counters, apps, advertisers, tokens, objects, files (no rows), webhooks
  POST /sandbox/control          {"set": {switch: value}} | {"reset": true} | {"revoke_token": <token>|"*"}
  POST /sandbox/apps             {"app_id", "secret", "name"?, "redirect_uri(s)"?, "review_webhook_url"?}
  POST /sandbox/advertisers      {"advertiser_id", "advertiser_name", "currency"?, "timezone"?}
  POST /sandbox/review           {"ad_id", "decision": "approve"|"reject", "reject_reason"?} → the ad and the
                                 signed webhooks posted (subscriptions of the ad / its ad group, and every app's
                                 review_webhook_url): {"request_id", "object": 3|2, "time", "entry": [{"log_id",
                                 "adv_id": <number>, campaign/adgroup/ad ids and names, "reject_reason"}]}
  GET  /sandbox/requests[?path_contains=…]  every API request received (the last 2000; `received` counts all):
                                 method, path, query and JSON body (secrets and tokens masked), content type,
                                 body as text
  GET  /sandbox/audience_files   every customer file received, accepted or not, with its rows
  GET  /sandbox/webhooks         every review webhook attempt with its body
  GET  /sandbox/images/<id>      an uploaded image's bytes

Faults (`/open_api/` only): `rate_limit_qps`, then as the TikTok sandbox `hold_next`, `fail_next`, `throttle_next`
(HTTP 200, `throttle_code` 40100), `slow_ms`; `invalid_token_next` (40105 whatever the token) and
`refuse_next_creates` (`refuse_code`, `refuse_message`) where the token and the create are checked.
"""

from __future__ import annotations

import json
import time
from html import escape
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tiktok_channel.ads.sandbox import openapi, payloads
from tiktok_channel.ads.sandbox.state import AdsSandbox, ApiError
from tiktok_channel.direct.sandbox.server import PAGE, Handler, _error_page, _with_query
from tiktok_channel.sandbox.switches import SandboxHTTPServer, is_loopback

API = "/open_api/v1.3"
AUTHORIZE = "/portal/auth"
MASKED = {"secret", "access_token"}  # kept out of /sandbox/requests


class AdsHandler(Handler):
    server: AdsSandboxServer
    server_version = "TikTokAdsSandbox/1"

    @property
    def sandbox(self) -> AdsSandbox:  # type: ignore[override]
        return self.server.sandbox

    def _ok(self, data: dict) -> None:
        self._json(200, payloads.envelope(data))

    def _raw_body(self) -> bytes:
        cached = getattr(self, "_body", None)
        if cached is not None:
            return cached
        self._body = super()._raw_body()
        return self._body

    def _routes(self) -> dict[tuple[str, str], Any]:
        s = self.sandbox
        return {
            ("GET", AUTHORIZE): self._authorize_page,
            ("POST", AUTHORIZE): self._authorize_decision,
            ("POST", f"{API}/oauth2/access_token/"): lambda: self._ok(s.exchange_code(self._json_body())),
            ("GET", f"{API}/oauth2/advertiser/get/"): self._advertiser_get,
            ("POST", f"{API}/oauth2/revoke_token/"): lambda: self._ok(s.revoke(self._json_body())),
            ("GET", f"{API}/advertiser/info/"): self._advertiser_info,
            ("POST", f"{API}/campaign/create/"): lambda: self._ok(s.campaign_create(self._token(), self._json_body())),
            ("POST", f"{API}/campaign/update/"): lambda: self._ok(s.campaign_update(self._token(), self._json_body())),
            ("POST", f"{API}/campaign/status/update/"): lambda: self._ok(
                s.campaign_status(self._token(), self._json_body())
            ),
            ("GET", f"{API}/campaign/get/"): lambda: self._ok(s.campaign_get(self._token(), self._query())),
            ("POST", f"{API}/adgroup/create/"): lambda: self._ok(s.adgroup_create(self._token(), self._json_body())),
            ("POST", f"{API}/adgroup/status/update/"): lambda: self._ok(
                s.adgroup_status(self._token(), self._json_body())
            ),
            ("GET", f"{API}/adgroup/get/"): lambda: self._ok(s.adgroup_get(self._token(), self._query())),
            ("POST", f"{API}/ad/create/"): lambda: self._ok(s.ad_create(self._token(), self._json_body())),
            ("POST", f"{API}/ad/status/update/"): lambda: self._ok(s.ad_status(self._token(), self._json_body())),
            ("GET", f"{API}/ad/get/"): lambda: self._ok(s.ad_get(self._token(), self._query())),
            ("POST", f"{API}/file/image/ad/upload/"): lambda: self._ok(
                s.image_upload(self._token(), self._multipart(), self._base_url())
            ),
            ("GET", f"{API}/report/integrated/get/"): lambda: self._ok(s.report(self._token(), self._checked_query())),
            ("POST", f"{API}/dmp/custom_audience/file/upload/"): lambda: self._ok(
                s.audience_file_upload(self._token(), self._checked_multipart())
            ),
            ("POST", f"{API}/dmp/custom_audience/create/"): lambda: self._ok(
                s.audience_create(self._token(), self._checked_json())
            ),
            ("POST", f"{API}/dmp/custom_audience/update/"): lambda: self._ok(
                s.audience_update(self._token(), self._checked_json())
            ),
            ("GET", f"{API}/dmp/custom_audience/get/"): lambda: self._ok(
                s.audience_get(self._token(), self._checked_query())
            ),
            ("POST", f"{API}/subscription/subscribe/"): lambda: self._ok(s.subscribe(self._json_body())),
            ("POST", f"{API}/subscription/unsubscribe/"): lambda: self._ok(s.unsubscribe(self._json_body())),
            ("GET", "/sandbox/state"): lambda: self._json(200, s.state()),
            ("GET", "/sandbox/requests"): lambda: self._json(
                200, s.received_requests(self._query().get("path_contains", ""))
            ),
            ("GET", "/sandbox/audience_files"): lambda: self._json(200, s.received_files()),
            ("GET", "/sandbox/webhooks"): lambda: self._json(200, s.webhooks()),
            ("POST", "/sandbox/control"): lambda: self._control(s.control),
            ("POST", "/sandbox/apps"): lambda: self._control(lambda b: s.add_app(b).public()),
            ("POST", "/sandbox/advertisers"): lambda: self._control(lambda b: s.add_advertiser(b).public()),
            ("POST", "/sandbox/review"): lambda: self._control(s.review),
        }

    def _route(self, method: str) -> None:
        self._body = None
        path = urlsplit(self.path).path
        if path.startswith("/sandbox/") and not is_loopback(self.client_address[0]):
            self._json(403, {"error": "the sandbox's control endpoints answer loopback clients only"})
            return
        if method == "GET" and path.startswith("/sandbox/images/"):
            self._image(path.removeprefix("/sandbox/images/").rstrip("/"))
            return
        if path.startswith("/open_api/"):
            try:
                self._record(method, path)
            except ApiError as error:
                self.close_connection = True  # the body was not read: the connection cannot be reused
                self._json(error.status, error.body())
                return
        super()._route(method)

    def _record(self, method: str, path: str) -> None:
        """Keep the request as it arrived (the token header and app secrets left out) for `/sandbox/requests`."""
        body = self._raw_body() if method == "POST" else b""
        query = {
            k: ("***" if k in MASKED else v[0])
            for k, v in parse_qs(urlsplit(self.path).query, keep_blank_values=True).items()
        }
        if body and (self.headers.get("Content-Type") or "").startswith("application/json"):
            try:
                body = json.dumps(_masked(json.loads(body)), ensure_ascii=False).encode()
            except ValueError:
                pass
        self.sandbox.record(
            {
                "method": method,
                "path": path,
                "query": query,
                "content_type": self.headers.get("Content-Type") or "",
                "body": body.decode("utf-8", "replace"),
                "at": time.time(),
            }
        )

    def _faults(self) -> None:
        if not self.sandbox.admit():
            self.sandbox.count("fault_rate_limited")
            raise ApiError(self.sandbox.behaviour.throttle_code, "too many calls in one second")
        super()._faults()

    def _image(self, image_id: str) -> None:
        with self.sandbox.lock:
            data = self.sandbox.image_bytes.get(image_id)
            image = self.sandbox.images.get(image_id)
        if data is None or image is None:
            self.send_body(404, b"no such image", "text/plain")
            return
        self.send_body(200, data, f"image/{image['format']}")

    # --- the vendored spec's checks ---------------------------------------------------------------------------

    def _spec(self, values: dict) -> None:
        method, path = self.command, urlsplit(self.path).path
        problems = openapi.request_problems(method, path if path.endswith("/") else path + "/", values)
        if problems:
            raise ApiError(payloads.PARAM_ERROR, "; ".join(problems))

    def _checked_query(self) -> dict[str, str]:
        query = self._query()
        self._spec(query)
        return query

    def _checked_json(self) -> dict:
        body = self._json_body()
        self._spec(body)
        return body

    def _checked_multipart(self) -> dict[str, bytes]:
        form = self._multipart()
        self._spec(form)
        return form

    # --- OAuth (§2.2) -----------------------------------------------------------------------------------------

    def _advertiser_get(self) -> None:
        query = self._query()
        self._ok(self.sandbox.authorized_advertisers(self._token(), query.get("app_id"), query.get("secret")))

    def _advertiser_info(self) -> None:
        query = self._checked_query()
        ids = _json_strings(query, "advertiser_ids")
        if not 1 <= len(ids) <= 100:
            raise ApiError(payloads.PARAM_ERROR, "advertiser_ids must be a JSON list of 1-100 ids")
        self._ok(self.sandbox.advertiser_info(self._token(), ids, _json_strings(query, "fields")))

    def _consent_request(self, fields: dict[str, str]):  # type: ignore[override]
        try:
            app = self.sandbox.app_for_authorize(fields.get("app_id", ""), fields.get("redirect_uri", ""))
        except ValueError as exc:
            self._html(400, _error_page(str(exc)))
            return None
        return app

    def _authorize_page(self) -> None:
        fields = self._query()
        app = self._consent_request(fields)
        if app is None:
            return
        advertisers = list(self.sandbox.advertisers.values())
        if not advertisers:
            self._html(400, _error_page("no ad account in the sandbox (POST /sandbox/advertisers)"))
            return
        self.sandbox.count("oauth_page_shown")
        self._html(200, _consent_page(app.name, advertisers, fields))

    def _authorize_decision(self) -> None:
        form = parse_qs(self._raw_body().decode("utf-8", "replace"), keep_blank_values=True)
        fields = {k: v[0] for k, v in form.items()}
        app = self._consent_request(fields)
        if app is None:
            return
        redirect_uri, state = fields["redirect_uri"], fields.get("state", "")
        if fields.get("decision") == "deny":
            self.sandbox.count("oauth_denied")
            self._redirect(_with_query(redirect_uri, error="access_denied", state=state))
            return
        chosen = [a for a in form.get("advertiser_id", []) if a in self.sandbox.advertisers]
        if fields.get("decision") != "authorize" or not chosen:
            self._html(400, _error_page("choose at least one ad account, and Authorize or Deny"))
            return
        code = self.sandbox.issue_code(app=app, advertiser_ids=chosen, redirect_uri=redirect_uri)
        self._redirect(_with_query(redirect_uri, auth_code=code, state=state))


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "***" if k in MASKED else _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def _json_strings(query: dict[str, str], name: str) -> list[str]:
    raw = query.get(name)
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, list) or not all(isinstance(v, str | int) and not isinstance(v, bool) for v in value):
        raise ApiError(payloads.PARAM_ERROR, f'{name} must be a JSON list, e.g. ["a","b"]')
    return [str(v) for v in value]


def _consent_page(app_name: str, advertisers: list, fields: dict[str, str]) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(fields.get(k, ""))}">'
        for k in ("app_id", "redirect_uri", "state")
    )
    choices = "".join(
        f'<label><input type="checkbox" name="advertiser_id" value="{escape(a.advertiser_id)}" checked> '
        f"{escape(a.advertiser_name)} ({escape(a.advertiser_id)})</label>"
        for a in advertisers
    )
    body = (
        f"<h1>{escape(app_name)} would like to manage your TikTok ad accounts</h1>"
        f'<form method="post" action="{AUTHORIZE}">{hidden}'
        f"<fieldset><legend>Ad accounts</legend>{choices}</fieldset>"
        f"<p>{escape(app_name)} will be able to manage campaigns, read reports and upload audiences.</p>"
        '<div class="buttons"><button type="submit" name="decision" value="deny">Deny</button>'
        '<button type="submit" name="decision" value="authorize">Authorize</button></div></form>'
    )
    return PAGE.format(title=f"Authorize {escape(app_name)} — TikTok for Business sandbox", body=body)


class AdsSandboxServer(SandboxHTTPServer):
    handler = AdsHandler
    thread_name = "tiktok-ads-sandbox"
    poll_interval_s = 0.05
    sandbox: AdsSandbox


__all__ = ["AdsHandler", "AdsSandboxServer"]
