"""Customer-file identifiers, normalized as TikTok documents them (§7.6) and SHA-256 hashed here, in the product.

The raw values live only in the memory of one request: nothing here logs, stores or returns them. A row that does
not hold a plausible email or phone number is counted as bad (never echoed back: its text is an identifier too).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field

from django.conf import settings

EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
CALCULATE_TYPES = {"email": "EMAIL_SHA256", "phone": "PHONE_SHA256"}
HEADERS = {"email": "EMAIL_SHA256", "phone": "PHONE_SHA256"}
HEADER_WORDS = {"email", "e-mail", "mail", "phone", "phone_number", "phone number", "mobile", "number"}


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def norm_email(raw: str, *, strip_dots: bool) -> str | None:
    value = raw.strip().lower()
    if not EMAIL_PATTERN.fullmatch(value):
        return None
    local, _, domain = value.partition("@")
    local = local.split("+", 1)[0]
    if strip_dots:
        local = local.replace(".", "")
    if not local:
        return None
    return f"{local}@{domain}"


def norm_phone(raw: str, *, default_country_code: str) -> str | None:
    """Digits with the country code and no `+` (TikTok's worked hash). A number written without `+` or `00` is
    taken as national: its leading zeros dropped and the default country code added (none set: bad row)."""
    value = raw.strip()
    international = value.startswith("+") or value.startswith("00")
    digits = re.sub(r"\D", "", value)
    if value.startswith("00"):
        digits = digits[2:]
    elif not international:
        digits = digits.lstrip("0")
        if not default_country_code:
            return None
        digits = f"{default_country_code}{digits}"
    digits = digits.lstrip("0")
    if not 8 <= len(digits) <= 15:
        return None
    return digits


@dataclass
class HashedFile:
    kind: str
    hashes: list[str] = field(default_factory=list)
    rows_total: int = 0
    rows_bad: int = 0

    @property
    def rows_valid(self) -> int:
        return len(self.hashes)

    def content(self) -> bytes:
        """The file TikTok takes: a header naming the ID type, one hash a line (§7.6)."""
        return ("\n".join([HEADERS[self.kind], *self.hashes]) + "\n").encode()


def hash_csv(raw: bytes, kind: str) -> HashedFile:
    """Hash the first column of every row of a CSV of emails or phone numbers; a header row is skipped, repeats
    count once. Raises ValueError (with a reason that names no identifier) when the file is not text."""
    if kind not in CALCULATE_TYPES:
        raise ValueError("the kind is email or phone")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("the file is not UTF-8 text") from None
    result = HashedFile(kind=kind)
    seen: set[str] = set()
    strip_dots = settings.TIKTOK_ADS_EMAIL_STRIP_DOTS
    country = settings.TIKTOK_ADS_DEFAULT_COUNTRY_CODE
    for index, row in enumerate(csv.reader(io.StringIO(text))):
        cell = (row[0] if row else "").strip()
        if index == 0 and cell.lower() in HEADER_WORDS | {h.lower() for h in HEADERS.values()}:
            continue
        if not cell and len(row) <= 1:
            continue  # a blank line is no row
        result.rows_total += 1
        normal = (
            norm_email(cell, strip_dots=strip_dots)
            if kind == "email"
            else norm_phone(cell, default_country_code=country)
        )
        if normal is None:
            result.rows_bad += 1
            continue
        digest = sha256_hex(normal)
        if digest not in seen:
            seen.add(digest)
            result.hashes.append(digest)
    return result
