"""The sandbox's switches: report timing, message failures and HTTP faults, settable at start and at run time."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from tiktok_channel.sandbox.payloads import FAILURES
from tiktok_channel.sandbox.switches import Switches


@dataclass
class Behaviour(Switches):
    # Reports: the delivery report this long after the send, the seen report this long after delivery.
    delivery_delay_ms: int = 1000
    seen_delay_ms: int = 3000
    send_seen: bool = True
    # A share of messages (0..1, drawn from `seed`) and/or the next N messages end in one of `failure_kinds`.
    failure_rate: float = 0.0
    fail_next_messages: int = 0
    failure_kinds: list[str] = field(default_factory=lambda: list(FAILURES))
    seed: int = 0
    # Refused in the send's own answer (HTTP 200, that message's entry REJECTED, no report follows), each message of
    # a request on its own: a share (0..1, drawn from `seed`) and/or the next N messages. Others of the same
    # request are accepted.
    refuse_rate: float = 0.0
    refuse_next_messages: int = 0
    # Reports posted twice; the seen report posted before the delivery report.
    duplicate_reports: bool = False
    reorder_reports: bool = False
    # Delivery and seen reports are not posted (lost on the way); the status still shows in logs and pulls.
    withhold_reports: bool = False
    # HTTP faults of the API (every Infobip route, never /sandbox/...), checked in this order: hold the connection
    # `timeout_ms` and close it unanswered; answer `fail_status`; answer 429 with Retry-After; otherwise answer
    # after `slow_ms`.
    timeout_next: int = 0
    timeout_ms: int = 30_000
    fail_next: int = 0
    http_error_rate: float = 0.0
    fail_status: int = 503
    throttle_next: int = 0
    retry_after_s: int = 1
    slow_ms: int = 0
    # Posting webhooks: per-try timeout; failed tries are repeated after retry_ms * (1 + n²), as Infobip does
    # with minutes.
    webhook_timeout_s: float = 5.0
    webhook_retries: int = 3
    webhook_retry_ms: int = 1000
    # Subscriptions Management (sandbox/subscriptions.py): every API call refused as a wrong key (401); creating or
    # updating a subscription answers this status (0: off; 400: "channel not supported"); subscriptions that exist
    # but deliver nothing.
    refuse_api_key: bool = False
    subscription_fail_status: int = 0
    subscriptions_broken: bool = False

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        super().__post_init__()

    def validate(self) -> None:
        if not all(0 <= rate <= 1 for rate in (self.failure_rate, self.http_error_rate, self.refuse_rate)):
            raise ValueError("failure_rate, http_error_rate and refuse_rate must be between 0 and 1")
        unknown = set(self.failure_kinds) - set(FAILURES)
        if unknown or not self.failure_kinds:
            raise ValueError(f"failure_kinds must be a non-empty subset of {sorted(FAILURES)}")
        if not 400 <= self.fail_status <= 599:
            raise ValueError("fail_status must be an HTTP error status (400-599)")
        if self.subscription_fail_status and not 400 <= self.subscription_fail_status <= 599:
            raise ValueError("subscription_fail_status must be 0 (off) or an HTTP error status (400-599)")
        super().validate()

    def updated(self, names: set[str]) -> None:
        if "seed" in names:
            self.rng = random.Random(self.seed)

    def message_refused(self) -> bool:
        """Is a new message refused in the send's answer?"""
        return self.take("refuse_next_messages") or bool(self.refuse_rate and self.rng.random() < self.refuse_rate)

    def message_failure(self) -> str | None:
        """The final status group a new message ends in, if it fails."""
        if self.take("fail_next_messages") or (self.failure_rate and self.rng.random() < self.failure_rate):
            return self.rng.choice(self.failure_kinds)
        return None
