"""How Infobip authenticates the requests it sends to our webhook, both ways round.

`verify()` checks an incoming request; `sign()` produces the headers Infobip (or our sandbox,
or a test) would send. Keeping both in one place keeps them from drifting apart.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

HMAC_ALGORITHMS = {
    "HMAC_MD5": hashlib.md5,
    "HMAC_SHA_1": hashlib.sha1,
    "HMAC_SHA_224": hashlib.sha224,
    "HMAC_SHA_256": hashlib.sha256,
    "HMAC_SHA_384": hashlib.sha384,
    "HMAC_SHA_512": hashlib.sha512,
}


@dataclass(frozen=True)
class WebhookAuth:
    """One account's webhook security settings (plaintext secrets; never log this object)."""

    mode: str  # "hmac" | "basic" | "header"
    secret: str = ""
    hmac_algorithm: str = "HMAC_SHA_256"
    signature_header: str = "X-Hub-Signature"
    signature_encoding: str = "hex"  # "hex" | "base64"
    signature_prefix: str = ""
    username: str = ""
    password: str = ""

    def __repr__(self) -> str:
        return f"WebhookAuth(mode={self.mode!r}, header={self.signature_header!r})"


class AuthError(Exception):
    """Authentication failed; the message is safe to return to the caller."""


def hmac_signature(auth: WebhookAuth, body: bytes) -> str:
    digest = hmac.new(auth.secret.encode(), body, HMAC_ALGORITHMS[auth.hmac_algorithm]).digest()
    encoded = digest.hex() if auth.signature_encoding == "hex" else base64.b64encode(digest).decode()
    return auth.signature_prefix + encoded


def sign(auth: WebhookAuth, body: bytes) -> dict[str, str]:
    """Headers that authenticate `body` for this account."""
    if auth.mode == "hmac":
        return {auth.signature_header: hmac_signature(auth, body)}
    if auth.mode == "basic":
        token = base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}
    if auth.mode == "header":
        return {auth.signature_header: auth.secret}
    raise ValueError(f"unknown webhook auth mode {auth.mode!r}")


def _equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def verify(auth: WebhookAuth, headers: Mapping[str, str], body: bytes) -> None:
    """Raise AuthError unless the request carries valid credentials. Constant-time comparisons.

    `headers` must be case-insensitive (Django's request.headers is).
    """
    if (auth.mode in ("hmac", "header") and not auth.secret) or (auth.mode == "basic" and not auth.password):
        # An account saved with just its API key, before Set up generated the secret: nothing can be accepted.
        raise AuthError("the account has no webhook secret yet (run Set up)")
    if auth.mode == "hmac":
        given = headers.get(auth.signature_header)
        if not given:
            raise AuthError(f"missing signature header {auth.signature_header}")
        expected = hmac_signature(auth, body)
        if auth.signature_encoding == "hex":  # hex digests are case-insensitive on the wire
            given, expected = given.lower(), expected.lower()
        if not _equal(given.strip(), expected):
            raise AuthError("signature does not match the body")
        return
    if auth.mode == "basic":
        header = headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic" or not value:
            raise AuthError("missing Basic credentials")
        try:
            username, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise AuthError("malformed Basic credentials") from None
        user_ok = _equal(username, auth.username)
        password_ok = _equal(password, auth.password)
        if not (user_ok and password_ok):
            raise AuthError("wrong Basic credentials")
        return
    if auth.mode == "header":
        given = headers.get(auth.signature_header)
        if not given:
            raise AuthError(f"missing secret header {auth.signature_header}")
        if not _equal(given, auth.secret):
            raise AuthError("wrong secret header")
        return
    raise AuthError("account has no usable webhook authentication")
