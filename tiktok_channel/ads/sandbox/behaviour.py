"""The ads sandbox's switches: the uncertain facts (`/work/shared/tiktok/README.md` §11) and the faults, settable at
start and at run time (`POST /sandbox/control {"set": {...}}`). TikTok's API faults, webhook retries and the
trailing-slash rule are the TikTok sandboxes' shared `TikTokSwitches`; updates, flags and coercion the sandboxes'
shared `Switches`."""

from __future__ import annotations

from dataclasses import dataclass

from tiktok_channel.direct.sandbox.behaviour import TikTokSwitches


@dataclass
class AdsBehaviour(TikTokSwitches):
    # OAuth (§2.2): the auth code lives an hour and is single use; advertiser tokens have no expiry.
    auth_code_ttl_s: int = 3600
    # Custom audiences (§7.6): a file needs this many entries, an audience may not drop below it (0: off).
    audience_min_rows: int = 1000
    # Seconds until a new audience is built (`is_valid` true); TikTok takes 24-48 h.
    audience_build_s: int = 0
    # Review webhooks (§7.7, §11.9): signed with `TikTok-Signature` (the app secret) or not; retried on non-200
    # (`webhook_timeout_s`, `webhook_retries`, `webhook_retry_ms`).
    sign_review_webhooks: bool = True
    # Rate limit (§9): more than this many API calls in one second answer `throttle_code` (0: no limit).
    rate_limit_qps: int = 0
    # Faults of the API: TikTok's (`hold_next` … `slow_ms`), and `refuse_next_creates` refuses the next N creates
    # (campaign, ad group, ad, image, audience file, audience) with `refuse_code` and `refuse_message`, as TikTok
    # refuses with HTTP 200.
    refuse_next_creates: int = 0
    refuse_code: int = 40002
    refuse_message: str = "sandbox refusal"

    def validate(self) -> None:
        if not 40000 <= self.refuse_code <= 61999:
            raise ValueError("refuse_code must be a Business API code (40000-61999)")
        super().validate()
