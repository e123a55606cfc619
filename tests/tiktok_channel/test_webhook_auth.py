import base64

import pytest
from django.http.request import HttpHeaders

from tiktok_channel.webhook_auth import HMAC_ALGORITHMS, AuthError, WebhookAuth, hmac_signature, sign, verify

BODY = b'{"results":[{"messageId":"abc"}]}'


def headers(d: dict) -> HttpHeaders:
    return HttpHeaders({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in d.items()})


@pytest.mark.parametrize("algorithm", sorted(HMAC_ALGORITHMS))
@pytest.mark.parametrize("encoding", ["hex", "base64"])
@pytest.mark.parametrize("prefix", ["", "sha256="])
def test_hmac_signed_body_verifies(algorithm, encoding, prefix):
    auth = WebhookAuth(
        mode="hmac",
        secret="s3cret",
        hmac_algorithm=algorithm,
        signature_encoding=encoding,
        signature_prefix=prefix,
        signature_header="X-Sig",
    )
    verify(auth, headers(sign(auth, BODY)), BODY)


def test_hmac_matches_an_independent_computation():
    import hashlib
    import hmac

    auth = WebhookAuth(mode="hmac", secret="k", hmac_algorithm="HMAC_SHA_512", signature_encoding="base64")
    expected = base64.b64encode(hmac.new(b"k", BODY, hashlib.sha512).digest()).decode()
    assert hmac_signature(auth, BODY) == expected


def test_hmac_rejects_tampered_body_wrong_secret_and_missing_header():
    auth = WebhookAuth(mode="hmac", secret="s3cret", signature_header="X-Sig")
    signed = headers(sign(auth, BODY))
    with pytest.raises(AuthError, match="does not match"):
        verify(auth, signed, BODY + b" ")
    with pytest.raises(AuthError, match="does not match"):
        verify(WebhookAuth(mode="hmac", secret="other", signature_header="X-Sig"), signed, BODY)
    with pytest.raises(AuthError, match="missing signature header"):
        verify(auth, headers({}), BODY)


def test_hex_signature_is_case_insensitive():
    auth = WebhookAuth(mode="hmac", secret="s3cret", signature_header="X-Sig")
    verify(auth, headers({"X-Sig": hmac_signature(auth, BODY).upper()}), BODY)


def test_basic():
    auth = WebhookAuth(mode="basic", username="infobip", password="p:ss")
    verify(auth, headers(sign(auth, BODY)), BODY)
    wrong = base64.b64encode(b"infobip:nope").decode()
    with pytest.raises(AuthError, match="wrong Basic"):
        verify(auth, headers({"Authorization": f"Basic {wrong}"}), BODY)
    with pytest.raises(AuthError, match="malformed"):
        verify(auth, headers({"Authorization": "Basic !!!"}), BODY)
    with pytest.raises(AuthError, match="missing Basic"):
        verify(auth, headers({"Authorization": "Bearer x"}), BODY)


def test_static_header():
    auth = WebhookAuth(mode="header", secret="letmein", signature_header="X-Webhook-Secret")
    verify(auth, headers({"X-Webhook-Secret": "letmein"}), BODY)
    with pytest.raises(AuthError, match="wrong secret"):
        verify(auth, headers({"X-Webhook-Secret": "letmeout"}), BODY)
    with pytest.raises(AuthError, match="missing secret header"):
        verify(auth, headers({}), BODY)


def test_repr_never_shows_secrets():
    auth = WebhookAuth(mode="basic", secret="topsecret", username="u", password="hunter2")
    assert "topsecret" not in repr(auth) and "hunter2" not in repr(auth)


@pytest.mark.parametrize(
    ("auth", "headers_"),
    [
        (WebhookAuth(mode="hmac", secret="s", signature_header="X-Sig"), {"X-Sig": "00"}),
        (
            WebhookAuth(mode="basic", username="u", password="p"),
            {"Authorization": "Basic " + base64.b64encode(b"u:x").decode()},
        ),
        (WebhookAuth(mode="header", secret="s", signature_header="X-Secret"), {"X-Secret": "x"}),
    ],
)
def test_every_mode_compares_in_constant_time(auth, headers_, monkeypatch):
    """Every secret comparison goes through hmac.compare_digest (timing-safe), never ==."""
    import hmac as hmac_module

    calls = []
    real = hmac_module.compare_digest
    monkeypatch.setattr(hmac_module, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    with pytest.raises(AuthError):
        verify(auth, headers(headers_), BODY)
    assert calls
