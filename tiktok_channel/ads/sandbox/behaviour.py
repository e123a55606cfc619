"""The ads sandbox's switches: the uncertain facts (`/work/shared/tiktok/README.md` §11) and the faults, settable at
start and at run time (`POST /sandbox/control {"set": {...}}`). Validation and coercion are the TikTok sandbox's."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from tiktok_channel.sandbox.switches import coerce


@dataclass
class AdsBehaviour:
    # OAuth (§2.2): the auth code lives an hour and is single use; advertiser tokens have no expiry.
    auth_code_ttl_s: int = 3600
    # Custom audiences (§7.6): a file needs this many entries, an audience may not drop below it (0: off).
    audience_min_rows: int = 1000
    # Seconds until a new audience is built (`is_valid` true); TikTok takes 24-48 h.
    audience_build_s: int = 0
    # Review webhooks (§7.7, §11.9): signed with `TikTok-Signature` (the app secret) or not; retried on non-200.
    sign_review_webhooks: bool = True
    webhook_timeout_s: float = 5.0
    webhook_retries: int = 3
    webhook_retry_ms: int = 1000  # then doubled per try
    # A path without its trailing `/` is answered 404 / 40400 (§1, 2nd source).
    strict_trailing_slash: bool = True
    # Rate limit (§9): more than this many API calls in one second answer `throttle_code` (0: no limit).
    rate_limit_qps: int = 0
    # Faults of the API (/open_api/...), one per request, in this order: hold the connection `hold_ms` and close it
    # unanswered; HTTP `fail_status`; HTTP 200 with `throttle_code` (no Retry-After, as TikTok); 40105 whatever the
    # token; otherwise answer after `slow_ms`. `refuse_next_creates` refuses the next N creates (campaign, ad group,
    # ad, image, audience file, audience) with `refuse_code` and `refuse_message`, as TikTok refuses with HTTP 200.
    hold_next: int = 0
    hold_ms: int = 30_000
    fail_next: int = 0
    fail_status: int = 500
    throttle_next: int = 0
    throttle_code: int = 40100
    invalid_token_next: int = 0
    slow_ms: int = 0
    refuse_next_creates: int = 0
    refuse_code: int = 40002
    refuse_message: str = "sandbox refusal"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if not 500 <= self.fail_status <= 599:
            raise ValueError("fail_status must be a 5xx status")
        if self.throttle_code not in (40100, 40132, 61000):
            raise ValueError("throttle_code must be 40100, 40132 or 61000")
        if not 40000 <= self.refuse_code <= 61999:
            raise ValueError("refuse_code must be a Business API code (40000-61999)")
        numbers = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.type in ("int", "float")}
        negative = [name for name, value in numbers.items() if value < 0]
        if negative:
            raise ValueError(f"must not be negative: {', '.join(negative)}")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial update (the control endpoint's `set`); all or nothing, raises ValueError."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        unknown = set(changes) - set(fields)
        if unknown:
            raise ValueError(f"unknown switches: {', '.join(sorted(unknown))}")
        candidate = dataclasses.replace(self)
        for name, value in changes.items():
            setattr(candidate, name, coerce(name, fields[name].type, value))
        candidate.validate()
        for name in changes:
            setattr(self, name, getattr(candidate, name))

    def take(self, counter: str) -> bool:
        """Consume one from a "next N" counter; True if there was one."""
        if getattr(self, counter) > 0:
            setattr(self, counter, getattr(self, counter) - 1)
            return True
        return False
