"""The Infobip sandbox: a real HTTP server speaking Infobip's TikTok API, plus its report scheduler.

API (as the vendored spec describes it; `Authorization: App <key>` of an active account):
  POST /tiktok/1/messages, POST /tiktok/1/events, GET /tiktok/1/reports, GET /tiktok/1/logs
  POST /saas/tiktok-ads/1/conversions (Direct Messaging Ads conversions; the body as Infobip's guide shows it)
Control (no authentication, so loopback clients only, whatever address the server binds; issue 21):
  GET /sandbox/state, POST /sandbox/control, POST /sandbox/inbound, POST /sandbox/conversation
  Over HTTP a simulated message goes only to its account's own webhook URL: the sandbox signs with the
  account's secret, so a caller must not choose where that signature goes.
"""

from __future__ import annotations

import json
import logging
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tiktok_channel import spec
from tiktok_channel.sandbox import conversions, payloads
from tiktok_channel.sandbox.accounts import AccountDirectory, SandboxAccount
from tiktok_channel.sandbox.behaviour import Behaviour
from tiktok_channel.sandbox.subscriptions import Subscriptions
from tiktok_channel.sandbox.subscriptions import handle as subscriptions_api
from tiktok_channel.sandbox.switches import SandboxHandler, SandboxHTTPServer, SandboxState, is_loopback
from tiktok_channel.sandbox.users import Delivery, inbound_content, post_signed, send_inbound

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 10 * 1024 * 1024
REPORTS_DEFAULT_LIMIT, REPORTS_MAX_LIMIT = 50, 1000
KEPT_CONVERSIONS = 500
BAD_REQUEST_ACTION = "Check the syntax, violations and adjust the request."
DEMO_LINES = [
    "Hi! Is the blue hoodie still in stock?",
    "Do you ship to Berlin?",
    "My order hasn't arrived yet 😕",
    "Can I change the size of my order?",
    "What are your opening hours?",
    "Thanks, that helps!",
    "Is there a discount code for first orders?",
]


@dataclass
class SentMessage:
    """A message the sandbox accepted (one destination), as its logs and reports show it."""

    account: SandboxAccount
    message_id: str
    bulk_id: str
    sender: str
    to: str
    content: dict
    sent_at: str
    webhooks: dict = field(default_factory=dict)
    platform: dict | None = None
    status: dict = field(default_factory=lambda: dict(payloads.STATUS_PENDING_ACCEPTED))
    error: dict = field(default_factory=lambda: dict(payloads.NO_ERROR))
    done_at: str | None = None

    def log_entry(self) -> dict:
        entry = {
            "sender": self.sender,
            "destination": self.to,
            "bulkId": self.bulk_id,
            "messageId": self.message_id,
            "sentAt": self.sent_at,
            "messageCount": 1,
            "price": dict(payloads.PRICE),
            "status": self.status,
            "error": self.error,
            "content": self.content,
        }
        if self.done_at:
            entry["doneAt"] = self.done_at
        if self.platform:
            entry["platform"] = self.platform
        return entry


class Sandbox(SandboxState):
    """The sandbox's state and behaviour, independent of HTTP (switches, lock, scheduler, counters and the
    webhook deliveries kept: the sandboxes' shared `SandboxState`)."""

    behaviour: Behaviour

    def __init__(self, accounts: AccountDirectory, behaviour: Behaviour | None = None) -> None:
        super().__init__(behaviour or Behaviour())
        self.accounts = accounts
        self.messages: dict[tuple[str, str], SentMessage] = {}  # (api key, messageId) -> message
        self.unfetched_reports: dict[str, deque[dict]] = {}  # api key -> delivery reports not yet pulled
        self.conversions: deque[dict] = deque(maxlen=KEPT_CONVERSIONS)  # the ads conversions received, newest last
        self.subscriptions = Subscriptions()  # where webhooks go, once set up through the Subscriptions API

    # --- sending ---------------------------------------------------------------------------------------------

    def accept_messages(self, account: SandboxAccount, body: dict) -> dict:
        bulk_id = ((body.get("options") or {}).get("schedule") or {}).get("bulkId") or payloads.new_id()
        answers = []
        for message in body["messages"]:
            for destination in message["destinations"]:
                answers.append(self._accept_one(account, bulk_id, message, destination))
        return {"bulkId": bulk_id, "messages": answers}

    def _accept_one(self, account: SandboxAccount, bulk_id: str, message: dict, destination: dict) -> dict:
        message_id = destination.get("messageId") or payloads.new_id()
        sent = SentMessage(
            account=account,
            message_id=message_id,
            bulk_id=bulk_id,
            sender=message["sender"],
            to=destination["to"],
            content=message["content"],
            sent_at=payloads.infobip_time(),
            webhooks=message.get("webhooks") or {},
            platform=(message.get("options") or {}).get("platform"),
        )
        with self.lock:
            duplicate = (account.api_key, message_id) in self.messages
            refused = not duplicate and self.behaviour.message_refused()
            if not duplicate and not refused:
                self.messages[(account.api_key, message_id)] = sent
            failure = None if duplicate or refused else self.behaviour.message_failure()
            delivery_s = self.behaviour.delivery_delay_ms / 1000
            seen_s = delivery_s + self.behaviour.seen_delay_ms / 1000
            send_seen, reorder = self.behaviour.send_seen, self.behaviour.reorder_reports
        if duplicate:
            # Like Infobip: answered 200, the message itself rejected, and a report saying so.
            self.count("messages_duplicate")
            status = dict(payloads.STATUS_REJECTED_DUPLICATE)
            rejected = SentMessage(**{**sent.__dict__, "status": status})
            self.scheduler.at(0, lambda: self._finish(rejected, status, payloads.NO_ERROR, record=False))
            return {"messageId": message_id, "status": status, "destination": destination["to"]}

        if refused:
            # Refused outright: not kept (the same id may come again), no report, the reason in this answer.
            self.count("messages_refused")
            status = dict(payloads.STATUS_REJECTED_DESTINATION)
            return {"messageId": message_id, "status": status, "destination": sent.to}
        self.count("messages_accepted")
        if failure:
            status, error = payloads.FAILURES[failure]
            self.scheduler.at(delivery_s, lambda: self._finish(sent, status, error))
        else:
            if reorder and send_seen:
                delivery_s, seen_s = seen_s, delivery_s
            self.scheduler.at(delivery_s, lambda: self._finish(sent, payloads.STATUS_DELIVERED, payloads.NO_ERROR))
            if send_seen:
                self.scheduler.at(seen_s, lambda: self._seen(sent))
        return {"messageId": message_id, "status": dict(payloads.STATUS_PENDING_ACCEPTED), "destination": sent.to}

    def accept_events(self, body: dict) -> dict:
        answers = []
        for event in body["events"]:
            for destination in event["destinations"]:
                answers.append(
                    {
                        "messageId": destination.get("messageId") or payloads.new_id(),
                        "status": dict(payloads.STATUS_PENDING_ACCEPTED),
                        "destination": destination["to"],
                    }
                )
                self.count(f"events_{event['content']['type'].lower()}")
        return {"bulkId": payloads.new_id(), "messages": answers}

    def accept_conversions(self, account: SandboxAccount, body: dict) -> dict:
        """Record Direct Messaging Ads conversions (logged, and listed in the state as `conversions`)."""
        results = []
        for conversion in body["conversions"]:
            entry = {
                "id": payloads.new_id(),
                "account": account.name,
                "sourceId": body["sourceId"],
                "event": conversion["event"],
                "event_time": conversion["event_time"],
                "user": conversion["user"]["tiktok_unique_identifier"],
                "properties": conversion.get("properties") or {},
                "status": "sent",
                "at": payloads.infobip_time(),
            }
            with self.lock:
                self.conversions.append(entry)
            self.count("conversions_sent")
            logger.info(
                "sandbox: conversion %s sent (event %s, user %s, source %s, properties %s)",
                entry["id"],
                entry["event"],
                entry["user"],
                entry["sourceId"],
                json.dumps(entry["properties"], sort_keys=True),
            )
            results.append({"id": entry["id"], "event": entry["event"], "status": "ACCEPTED"})
        return {"conversions": results}

    def _finish(self, sent: SentMessage, status: dict, error: dict, *, record: bool = True) -> None:
        """The delivery report: kept for pulling and posted (unless `webhooks.delivery.notify` is false).

        `record=False` for a rejected duplicate, whose report must not change the original message's log.
        """
        report = payloads.delivery_report(
            message_id=sent.message_id,
            to=sent.to,
            sender=sent.sender,
            sent_at=sent.sent_at,
            status=status,
            error=error,
            bulk_id=sent.bulk_id,
            callback_data=sent.webhooks.get("callbackData"),
            platform=sent.platform,
        )
        with self.lock:
            if record:
                sent.status, sent.error, sent.done_at = dict(status), dict(error), report["doneAt"]
            self.unfetched_reports.setdefault(sent.account.api_key, deque()).append(report)
        delivery = sent.webhooks.get("delivery") or {}
        if delivery.get("notify") is False:
            return
        if self.behaviour.withhold_reports:
            self.count("reports_withheld")
            return
        self._post("delivery", delivery.get("url") or sent.account.webhook_url, sent.account, payloads.reports(report))

    def _seen(self, sent: SentMessage) -> None:
        report = payloads.seen_report(
            message_id=sent.message_id,
            business_id=sent.sender,
            user_id=sent.to,
            sent_at=sent.sent_at,
            platform=sent.platform,
        )
        if self.behaviour.withhold_reports:
            self.count("reports_withheld")
            return
        url = (sent.webhooks.get("seen") or {}).get("url") or sent.account.webhook_url
        self._post("seen", url, sent.account, payloads.reports(report))

    # --- webhooks --------------------------------------------------------------------------------------------

    def _post(self, kind: str, url: str, account: SandboxAccount, payload: dict) -> None:
        account = self.subscriptions.target(account, kind, url, broken=self.behaviour.subscriptions_broken)
        if account is None:
            self.count(f"webhooks_{kind}_unsubscribed")
            return
        url = account.webhook_url
        copies = 2 if self.behaviour.duplicate_reports and kind != "inbound" else 1
        for _ in range(copies):
            self._attempt(kind, url, account, payload, 1)

    def _attempt(self, kind: str, url: str, account: SandboxAccount, payload: dict, attempt: int) -> Delivery:
        with self.lock:
            timeout, retries, retry_ms = (
                self.behaviour.webhook_timeout_s,
                self.behaviour.webhook_retries,
                self.behaviour.webhook_retry_ms,
            )
        delivery = post_signed(url, account.auth, payload, timeout=timeout)
        ids = [r.get("messageId") for r in payload.get("results", [])]
        with self.lock:
            self.deliveries.append(
                {
                    "kind": kind,
                    "url": url,
                    "message_ids": ids,
                    "attempt": attempt,
                    "status": delivery.status,
                    "error": delivery.error,
                    "at": payloads.infobip_time(),
                }
            )
        self.count(f"webhooks_{kind}_{'ok' if delivery.ok else 'failed'}")
        if not delivery.ok:
            logger.warning("sandbox %s webhook to %s failed (try %d): %s", kind, url, attempt, delivery.status)
            if attempt <= retries:
                delay = retry_ms / 1000 * (1 + attempt**2)
                self.scheduler.at(delay, lambda: self._attempt(kind, url, account, payload, attempt + 1))
        return delivery

    # --- pulling ---------------------------------------------------------------------------------------------

    def pull_reports(self, account: SandboxAccount, *, limit: int, bulk_id: str, message_id: str) -> list[dict]:
        """Delivery reports not fetched before, each returned once."""
        with self.lock:
            queue = self.unfetched_reports.get(account.api_key, deque())
            taken, kept = [], deque()
            for report in queue:
                wanted = (not bulk_id or report.get("bulkId") == bulk_id) and (
                    not message_id or report["messageId"] == message_id
                )
                (taken if wanted and len(taken) < limit else kept).append(report)
            self.unfetched_reports[account.api_key] = kept
            return taken

    def logs(self, account: SandboxAccount, filters: dict[str, list[str]], limit: int) -> list[dict]:
        with self.lock:
            found = [m for m in self.messages.values() if m.account.api_key == account.api_key]
        found.sort(key=lambda m: m.sent_at, reverse=True)

        def keep(m: SentMessage) -> bool:
            checks = {
                "sender": [m.sender],
                "destination": [m.to],
                "bulkId": [m.bulk_id],
                "messageId": [m.message_id],
                "generalStatus": [m.status["groupName"]],
            }
            return all(not filters.get(k) or set(filters[k]) & set(v) for k, v in checks.items())

        return [m.log_entry() for m in found if keep(m)][:limit]

    # --- simulated users -------------------------------------------------------------------------------------

    def inbound(self, options: dict) -> dict:
        """Post one inbound message from a simulated TikTok user (the control endpoint's /sandbox/inbound)."""
        business_id, user_id = str(options.get("sender") or ""), str(options.get("user") or "")
        if not business_id or not user_id:
            raise ValueError("sender (business account id) and user (TikTok user id) are required")
        account = self.accounts.by_sender(business_id)
        if account is None:
            raise ValueError(f"no active account has the sender {business_id}")
        content = inbound_content(
            text=options.get("text", ""),
            image=options.get("image", ""),
            share_post=options.get("share_post", ""),
            reaction=options.get("reaction", ""),
            referral_ad=bool(options.get("referral_ad")),
            tiktok_me=options.get("tiktok_me", ""),
            context_id=options.get("context_id", ""),
        )
        target = self.subscriptions.target(
            account, "inbound", options.get("webhook_url", ""), broken=self.behaviour.subscriptions_broken
        )
        if target is None:
            self.count("webhooks_inbound_unsubscribed")
            return {"messageId": None, "status": None, "error": "no subscription delivers inbound messages"}
        account, url = target, target.webhook_url
        payload, delivery = send_inbound(
            url=url,
            auth=account.auth,
            user_id=user_id,
            business_id=business_id,
            content=content,
            message_id=options.get("message_id", ""),
        )
        self.count(f"webhooks_inbound_{'ok' if delivery.ok else 'failed'}")
        with self.lock:
            self.deliveries.append(
                {
                    "kind": "inbound",
                    "url": url,
                    "message_ids": [payload["results"][0]["messageId"]],
                    "attempt": 1,
                    "status": delivery.status,
                    "error": delivery.error,
                    "at": payloads.infobip_time(),
                }
            )
        return {"messageId": payload["results"][0]["messageId"], "status": delivery.status, "error": delivery.error}

    def conversation(self, options: dict) -> dict:
        """Script a conversation: `users` simulated users each write `messages` lines, `interval_ms` apart."""
        business_id = str(options.get("sender") or "")
        if self.accounts.by_sender(business_id) is None:
            raise ValueError(f"no active account has the sender {business_id!r}")
        users, lines = int(options.get("users", 3)), int(options.get("messages", 2))
        interval_ms = int(options.get("interval_ms", 1000))
        if not (1 <= users <= 1000 and 1 <= lines <= 100 and interval_ms >= 0):
            raise ValueError("users 1-1000, messages 1-100, interval_ms >= 0")
        prefix = str(options.get("user_prefix") or "sim-user")
        rng = random.Random(options.get("seed", 0))
        step = 0
        for _ in range(lines):
            for n in range(users):
                text = rng.choice(DEMO_LINES)
                user = f"{prefix}-{n + 1}"
                self.scheduler.at(
                    step * interval_ms / 1000,
                    lambda user=user, text=text: self._try_inbound({"sender": business_id, "user": user, "text": text}),
                )
                step += 1
        return {"scheduled": users * lines}

    def _try_inbound(self, options: dict) -> None:
        try:
            result = self.inbound(options)
        except ValueError as exc:
            logger.warning("sandbox inbound not sent: %s", exc)
            return
        if result["status"] is None or result["status"] >= 300:
            logger.warning("sandbox inbound to %s answered %s", options["sender"], result["status"])

    def chatter(self, business_id: str, *, every_s: tuple[float, float], users: int = 4, first_s: float = 5) -> None:
        """Demo: a small set of users write in now and then (the first soon), forever."""
        rng = random.Random()

        def tick() -> None:
            user = f"demo-user-{rng.randint(1, users)}"
            self._try_inbound({"sender": business_id, "user": user, "text": rng.choice(DEMO_LINES)})
            self.scheduler.at(rng.uniform(*every_s), tick)

        self.scheduler.at(first_s, tick)

    def state(self) -> dict:
        with self.lock:
            return {
                "behaviour": self.behaviour.as_dict(),
                "counters": dict(self.counters),
                "messages": len(self.messages),
                "unfetched_reports": sum(len(q) for q in self.unfetched_reports.values()),
                "scheduled_jobs": self.scheduler.pending(),
                "idle": self.scheduler.idle,
                "webhooks": list(self.deliveries)[-50:],
                "conversions": list(self.conversions)[-50:],
                "subscriptions": self.subscriptions.summary(),
            }

    def control(self, body: dict) -> dict:
        with self.lock:
            if body.get("reset"):
                self.behaviour.update(self.initial_behaviour)
            self.behaviour.update(body.get("set") or {})
        return self.state()


class ApiFault(Exception):
    """Answer the current API request with this status and Infobip error body."""

    def __init__(self, status: int, body: dict, headers: dict | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def _int_param(query: dict[str, list[str]], name: str, default: int) -> int:
    raw = (query.get(name) or [""])[0]
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 1 <= value <= REPORTS_MAX_LIMIT:
        raise ApiFault(
            400,
            payloads.api_error(
                "E400",
                "Request cannot be processed.",
                BAD_REQUEST_ACTION,
                [{"property": name, "violation": f"must be an integer between 1 and {REPORTS_MAX_LIMIT}"}],
            ),
        )
    return value


class Handler(SandboxHandler):
    server: SandboxServer
    server_version = "InfobipSandbox/1"
    max_body_bytes = MAX_BODY_BYTES

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        logger.debug("%s %s", self.address_string(), format % args)

    # --- plumbing --------------------------------------------------------------------------------------------

    def _send(self, status: int, body: dict | list, headers: dict | None = None) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_body(status, data, "application/json;charset=UTF-8", headers)

    def _json_body(self) -> Any:
        raw = self.read_body(
            lambda: ApiFault(413, payloads.api_error("E413", "Request too large.", "Send a smaller request."))
        )
        try:
            return json.loads(raw or b"null")
        except (ValueError, UnicodeDecodeError):
            raise ApiFault(
                400,
                payloads.api_error(
                    "E400",
                    "Request cannot be processed.",
                    BAD_REQUEST_ACTION,
                    [{"property": "", "violation": "Request body is not valid JSON."}],
                ),
            ) from None

    def _route(self, method: str) -> None:
        path = urlsplit(self.path).path.rstrip("/") or "/"
        routes = {
            ("POST", "/tiktok/1/messages"): self._messages,
            ("POST", "/tiktok/1/events"): self._events,
            ("GET", "/tiktok/1/reports"): self._reports,
            ("GET", "/tiktok/1/logs"): self._logs,
            ("POST", conversions.PATH): self._conversions,
            ("GET", "/sandbox/state"): lambda: self._send(200, self.server.sandbox.state()),
            ("POST", "/sandbox/control"): self._control,
            ("POST", "/sandbox/inbound"): self._inbound,
            ("POST", "/sandbox/conversation"): self._conversation,
        }
        handler = routes.get((method, path))
        try:
            if handler is None and subscriptions_api(self, method, path):
                return
            if handler is None:
                known = {p for _, p in routes}
                raise ApiFault(
                    405 if path in known else 404,
                    payloads.api_error("E404" if path not in known else "E405", "Not found.", "Check the URL."),
                )
            if path.startswith("/sandbox/") and not is_loopback(self.client_address[0]):
                raise ApiFault(403, {"error": "the sandbox's control endpoints answer loopback clients only"})
            if not path.startswith("/sandbox/"):  # every Infobip API route; never the control endpoints
                self._faults()
            handler()
        except ApiFault as fault:
            self._send(fault.status, fault.body, fault.headers)
        except _HoldUnanswered:
            self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self._route("GET")

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        self._route("POST")

    def do_PUT(self) -> None:  # noqa: N802 - the stdlib's name (Subscriptions Management)
        self._route("PUT")

    def do_DELETE(self) -> None:  # noqa: N802 - the stdlib's name (Subscriptions Management)
        self._route("DELETE")

    # --- API -------------------------------------------------------------------------------------------------

    def _faults(self) -> None:
        sandbox = self.server.sandbox
        with sandbox.lock:
            b = sandbox.behaviour
            # One fault per request: a later kind's "next N" is not used up by a request an earlier kind took.
            hold = b.timeout_ms / 1000 if b.take("timeout_next") else None
            fail = hold is None and (b.take("fail_next") or (b.http_error_rate and b.rng.random() < b.http_error_rate))
            fail_status = b.fail_status
            throttle = hold is None and not fail and b.take("throttle_next")
            retry_after, slow = b.retry_after_s, b.slow_ms / 1000
        if hold is not None:
            sandbox.count("fault_timeout")
            # Longer than the client's read timeout: it gives up; then the connection is closed unanswered.
            self.server.stopping.wait(hold)
            raise _HoldUnanswered
        if fail:
            sandbox.count(f"fault_http_{fail_status}")
            raise ApiFault(
                fail_status,
                payloads.api_error(f"E{fail_status}", "Something went wrong.", "Try again later."),
            )
        if throttle:
            sandbox.count("fault_http_429")
            raise ApiFault(
                429,
                payloads.api_error("E429", "Too many requests.", "Slow down and retry after the given time."),
                {"Retry-After": str(retry_after)},
            )
        if slow:
            sandbox.count("slow_held")  # the request has arrived and is being held: tests wait for this
            self.server.stopping.wait(slow)

    def _account(self) -> SandboxAccount:
        scheme, _, key = (self.headers.get("Authorization") or "").partition(" ")
        account = self.server.sandbox.accounts.by_api_key(key.strip()) if scheme == "App" and key.strip() else None
        if account is None or self.server.sandbox.behaviour.refuse_api_key:
            raise ApiFault(
                401,
                payloads.api_error("E401", "Invalid login details.", "Check your API key (Authorization: App <key>)."),
            )
        return account

    def _validated(self, path: str) -> dict:
        body = self._json_body()
        found = spec.violations(spec.request_validator(path), body)
        if found:
            raise ApiFault(
                400,
                payloads.api_error("E400", "Request cannot be processed.", BAD_REQUEST_ACTION, found),
            )
        return body

    def _messages(self) -> None:
        account = self._account()
        body = self._validated("/tiktok/1/messages")
        self._send(200, self.server.sandbox.accept_messages(account, body))

    def _events(self) -> None:
        self._account()
        body = self._validated("/tiktok/1/events")
        self._send(200, self.server.sandbox.accept_events(body))

    def _conversions(self) -> None:
        account = self._account()
        body = self._json_body()
        found = spec.violations(conversions.validator(), body)
        # by_sender reloads the accounts when the id is unknown, so a sender added since the sandbox started counts.
        owner = None if found else self.server.sandbox.accounts.by_sender(body["sourceId"])
        if not found and (owner is None or owner.api_key != account.api_key):
            found = [{"property": "sourceId", "violation": "is not a TikTok business account of this API key"}]
        if found:
            raise ApiFault(400, payloads.api_error("E400", "Request cannot be processed.", BAD_REQUEST_ACTION, found))
        self._send(200, self.server.sandbox.accept_conversions(account, body))

    def _reports(self) -> None:
        account = self._account()
        query = parse_qs(urlsplit(self.path).query)
        limit = _int_param(query, "limit", REPORTS_DEFAULT_LIMIT)
        results = self.server.sandbox.pull_reports(
            account,
            limit=limit,
            bulk_id=(query.get("bulkId") or [""])[0],
            message_id=(query.get("messageId") or [""])[0],
        )
        self._send(200, {"results": results})

    def _logs(self) -> None:
        account = self._account()
        query = parse_qs(urlsplit(self.path).query)
        limit = _int_param(query, "limit", REPORTS_DEFAULT_LIMIT)
        # bulkId and messageId may hold several comma-separated values.
        filters = {k: [v for value in values for v in value.split(",") if v] for k, values in query.items()}
        results = self.server.sandbox.logs(account, filters, limit)
        self._send(200, {"results": results, "cursor": {"limit": limit}})

    # --- control ---------------------------------------------------------------------------------------------

    def _control_body(self) -> dict:
        body = self._json_body()
        if not isinstance(body, dict):
            raise ApiFault(400, {"error": "the body must be a JSON object"})
        return body

    def _control(self) -> None:
        try:
            self._send(200, self.server.sandbox.control(self._control_body()))
        except ValueError as exc:
            self._send(400, {"error": str(exc)})

    def _inbound(self) -> None:
        body = self._control_body()
        if "webhook_url" in body:
            raise ApiFault(
                400,
                {
                    "error": "webhook_url is not accepted over HTTP: the sandbox posts a signed "
                    "message only to its account's own webhook URL"
                },
            )
        try:
            self._send(200, self.server.sandbox.inbound(body))
        except ValueError as exc:
            self._send(400, {"error": str(exc)})

    def _conversation(self) -> None:
        try:
            self._send(200, self.server.sandbox.conversation(self._control_body()))
        except (ValueError, TypeError) as exc:
            self._send(400, {"error": str(exc)})


class _HoldUnanswered(Exception):
    """The timeout fault: close the connection without an answer."""


class SandboxServer(SandboxHTTPServer):
    handler = Handler
    thread_name = "infobip-sandbox"
