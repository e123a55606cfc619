"""The TikTok sandbox's switches: the uncertain facts of the README (§11) and the faults, settable at start and
at run time (`POST /sandbox/control {"set": {...}}`). `TikTokSwitches` holds those the Marketing API's sandbox
(`ads/sandbox/behaviour.py`) has too: TikTok's API faults, webhook retries, the trailing-slash rule."""

from __future__ import annotations

from dataclasses import dataclass, field

from tiktok_channel.sandbox.switches import Switches


@dataclass
class TikTokSwitches(Switches):
    """The switches of both TikTok sandboxes (Business Messaging and the Marketing API): one wire convention."""

    # OAuth: how long an authorization code lives (each sandbox has its own default).
    auth_code_ttl_s: int = 600
    # Webhooks (§3.5, §7.7): per-try timeout; a non-200 answer is tried again after webhook_retry_ms × 2^(n-1).
    webhook_timeout_s: float = 5.0
    webhook_retries: int = 3
    webhook_retry_ms: int = 1000  # then doubled per try
    # Routes: a path without its trailing `/` is answered 404 / 40400 (reported, 2nd source).
    strict_trailing_slash: bool = True
    # Faults of the API (/open_api/...), checked in this order, one per request: hold the connection `hold_ms` and
    # close it unanswered; answer HTTP `fail_status`; answer HTTP 200 with `throttle_code` (TikTok sends no
    # Retry-After); answer `invalid_token_next` calls with 40105 whatever the token; otherwise answer after `slow_ms`.
    hold_next: int = 0
    hold_ms: int = 30_000
    fail_next: int = 0
    fail_status: int = 500
    throttle_next: int = 0
    throttle_code: int = 40100
    invalid_token_next: int = 0
    slow_ms: int = 0

    def validate(self) -> None:
        if not 500 <= self.fail_status <= 599:
            raise ValueError("fail_status must be a 5xx status")
        if self.throttle_code not in (40100, 40132, 61000):
            raise ValueError("throttle_code must be 40100, 40132 or 61000")
        super().validate()


@dataclass
class Behaviour(TikTokSwitches):
    # OAuth (§2.1, §11.1-3). Lifetimes are what the token answers say; the sources disagree, so they are switches.
    access_token_ttl_s: int = 86_400
    refresh_token_ttl_s: int = 31_536_000  # and auth_code_ttl_s (600)
    # The callback's code parameter: "code" (Chatwoot) or "auth_code" (a third-party spec).
    callback_code_param: str = "code"
    # Whether refresh rotates the refresh token (the old one then stops working) (§11.2: assume it does).
    refresh_rotates: bool = True
    # The deny redirect: `error=access_denied&error_code=<this>&error_description=...` (the value is a guess).
    deny_error_code: str = "10001"
    # Business Messaging rules (§3.1, §11.6-7); 0 turns a cap off.
    reply_window_s: int = 48 * 3600
    max_messages_before_reply: int = 10
    max_messages_after_window: int = 3
    text_max_chars: int = 6000
    image_max_bytes: int = 3 * 1024 * 1024
    image_types: list[str] = field(default_factory=lambda: ["image/jpeg", "image/png"])
    media_ttl_s: int = 30 * 86_400
    image_send_capable: bool = True
    # Webhooks (§3.5, §10, §11.4-5): read events after `read_delay_ms`; echoes (`im_send_msg`) of API sends after
    # `echo_delay_ms`, or before the send is answered (`echo_first`, as Chatwoot saw happen).
    send_read: bool = True
    read_delay_ms: int = 2000
    echo_api_sends: bool = True
    echo_delay_ms: int = 0
    echo_first: bool = False
    create_time_ms: bool = False
    signature_skew_s: int = 0  # sign with a timestamp this much in the past (a replay, for the receiver to refuse)
    # Posts (videos.py): every account added gets `seed_videos` posts; the Accounts API answers 40100 past
    # `accounts_api_qpm` calls per account and minute (§9: 40; 0 is off); `short_pages` returns pages shorter
    # than asked while has_more stays true (§6.1 says TikTok may).
    seed_videos: int = 0
    accounts_api_qpm: int = 0
    short_pages: bool = False
    # Content Posting (§4, posting.py): what creator_info answers, the chunk rules, how long processing and
    # moderation take, and its faults.
    privacy_level_options: list[str] = field(
        default_factory=lambda: ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]
    )
    creator_comment_disabled: bool = False
    creator_duet_disabled: bool = False
    creator_stitch_disabled: bool = False
    max_video_post_duration_sec: int = 600
    creator_info_error: str = ""  # e.g. spam_risk_too_many_posts: creator_info answers HTTP 200 with this error
    upload_min_chunk_bytes: int = 5 * 1024 * 1024
    upload_max_chunk_bytes: int = 64 * 1024 * 1024
    upload_max_last_chunk_bytes: int = 128 * 1024 * 1024
    post_processing_ms: int = 1500
    post_moderation_ms: int = 1000
    post_fail_next: int = 0
    post_fail_reason: str = "spam_risk_text"
    post_rate_limit_next: int = 0
    chunk_reject_next: int = 0
    chunk_reject_status: int = 500
    chunk_delay_ms: int = 0
    # Comment moderation (§6.2): refuse the next N hide / unhide / delete calls with this code and reason.
    refuse_comment_action_next: int = 0
    refuse_comment_action_code: int = 40002
    refuse_comment_action_reason: str = "This comment cannot be changed right now"

    def validate(self) -> None:
        if self.callback_code_param not in ("code", "auth_code"):
            raise ValueError("callback_code_param must be code or auth_code")
        if self.chunk_reject_status not in (400, 500, 502, 503):
            raise ValueError("chunk_reject_status must be 400, 500, 502 or 503")
        unknown = set(self.image_types) - {"image/jpeg", "image/png", "image/webp"}
        if unknown or not self.image_types:
            raise ValueError("image_types must be a non-empty subset of image/jpeg, image/png, image/webp")
        super().validate()
