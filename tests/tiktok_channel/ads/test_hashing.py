"""Customer-file normalization and hashing, checked against TikTok's own worked hashes (§7.6)."""

from __future__ import annotations

import pytest

from tiktok_channel.ads import hashing


def test_tiktoks_worked_email_hash():
    normal = hashing.norm_email(" JaneDoe@Gmail.com ", strip_dots=False)
    assert hashing.sha256_hex(normal) == "d6117306485ed0e50afab3ac871e98f81699151f30281527d63ff5f233656c69"


def test_tiktoks_worked_phone_hash_has_no_plus():
    normal = hashing.norm_phone("+374 93 828222", default_country_code="")
    assert normal == "37493828222"
    assert hashing.sha256_hex(normal) == "65b7e6dcf6f4310f8d7cbfbd78289a753062fb054d6664fb9aaac5df66a422d4"


def test_email_plus_tag_and_the_dots_switch():
    assert hashing.norm_email("First.Last+promo@Example.com", strip_dots=False) == "first.last@example.com"
    assert hashing.norm_email("First.Last+promo@Example.com", strip_dots=True) == "firstlast@example.com"
    assert hashing.norm_email("not an email", strip_dots=False) is None
    assert hashing.norm_email("+tag@example.com", strip_dots=False) is None


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("(657)777-0000", "1", "16577770000"),  # TikTok's example: the country code added even in the US
        ("0044 20 7946 0018", "", "442079460018"),
        ("07700 900123", "44", "447700900123"),  # national: leading zero dropped, default code added
        ("07700 900123", "", None),  # national without a default code: bad row
        ("12", "", None),  # too short
    ],
)
def test_phone_normalization(raw, country, expected):
    assert hashing.norm_phone(raw, default_country_code=country) == expected


def test_hash_csv_counts_bad_rows_skips_header_and_blank_lines_and_holds_no_raw_value(settings):
    settings.TIKTOK_ADS_EMAIL_STRIP_DOTS = False
    raw = b"email\nJaneDoe@Gmail.com\n\nnot-an-email\nsam@example.org,extra\njanedoe@gmail.com\n"
    hashed = hashing.hash_csv(raw, "email")
    assert (hashed.rows_total, hashed.rows_bad, hashed.rows_valid) == (4, 1, 2)  # the repeat is one hash
    content = hashed.content().decode()
    assert content.splitlines()[0] == "EMAIL_SHA256"
    assert "d6117306485ed0e50afab3ac871e98f81699151f30281527d63ff5f233656c69" in content
    assert "@" not in content and "sam" not in content


def test_hash_csv_refuses_binary():
    with pytest.raises(ValueError, match="UTF-8"):
        hashing.hash_csv(b"\xff\xfe\x00bad", "email")
