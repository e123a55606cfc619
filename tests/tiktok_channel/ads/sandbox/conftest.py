from __future__ import annotations

import hashlib
import io
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.tiktok_channel.sandbox_helpers import RunningTikTok
from tiktok_channel.ads.sandbox.behaviour import AdsBehaviour
from tiktok_channel.ads.sandbox.server import AdsSandboxServer
from tiktok_channel.ads.sandbox.state import AdsSandbox

APP_ID = "7300000000000000001"
SECRET = "ads-sandbox-secret-0123456789"
REDIRECT_URI = "https://inbox.example/ads/callback/"
ADVERTISER = "7012345678901234567"
OTHER_ADVERTISER = "7012345678901234999"
API = "/open_api/v1.3"


def png(width: int = 2, height: int = 2) -> bytes:
    """A valid PNG of the given size (one grey pixel row repeated)."""
    row = b"\x00" + b"\x80" * width
    raw = zlib.compress(row * height)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def sha256_rows(n: int, start: int = 0) -> list[str]:
    return [hashlib.sha256(f"user{i}@example.com".encode()).hexdigest() for i in range(start, start + n)]


@dataclass
class Running(RunningTikTok):
    server: AdsSandboxServer

    @property
    def sandbox(self) -> AdsSandbox:
        return self.server.sandbox

    def get(self, path: str, params: dict | None = None, *, token: str | None = None) -> dict:
        headers = {"Access-Token": token} if token else {}
        response = requests.get(f"{self.url}{API}{path}", params=params, headers=headers, timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, body: dict, *, token: str | None = None) -> dict:
        headers = {"Access-Token": token} if token else {}
        response = requests.post(f"{self.url}{API}{path}", json=body, headers=headers, timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    def upload(self, path: str, fields: dict, files: dict, *, token: str) -> dict:
        response = requests.post(
            f"{self.url}{API}{path}", data=fields, files=files, headers={"Access-Token": token}, timeout=10
        )
        assert response.status_code == 200, response.text
        return response.json()

    def control(self, path: str = "/sandbox/control", **body) -> dict:
        response = requests.post(f"{self.url}{path}", json=body, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def consent(self, decision: str = "authorize", advertisers: list[str] | None = None, state: str = "st-1") -> dict:
        """Open the consent page and answer it as its form does; returns the redirect's query."""
        params = {"app_id": APP_ID, "state": state, "redirect_uri": REDIRECT_URI}
        page = requests.get(f"{self.url}/portal/auth", params=params, timeout=5)
        assert page.status_code == 200, page.text
        form = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
        offered = re.findall(r'name="advertiser_id" value="([^"]+)"', page.text)
        data = [*form.items(), ("decision", decision)]
        data += [("advertiser_id", a) for a in (offered if advertisers is None else advertisers)]
        answer = requests.post(f"{self.url}/portal/auth", data=data, allow_redirects=False, timeout=5)
        assert answer.status_code == 302, answer.text
        location = answer.headers["Location"]
        assert location.startswith(REDIRECT_URI)
        return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}

    def connect(self, advertisers: list[str] | None = None) -> str:
        code = self.consent(advertisers=advertisers)["auth_code"]
        answer = self.post("/oauth2/access_token/", {"app_id": APP_ID, "secret": SECRET, "auth_code": code})
        assert answer["code"] == 0, answer
        return answer["data"]["access_token"]


@pytest.fixture
def running(receiver) -> Iterator[Running]:
    sandbox = AdsSandbox(AdsBehaviour(webhook_retry_ms=50, webhook_timeout_s=2))
    sandbox.add_app({"app_id": APP_ID, "secret": SECRET, "name": "Acme Ads", "redirect_uri": REDIRECT_URI})
    sandbox.add_advertiser({"advertiser_id": ADVERTISER, "advertiser_name": "Acme Shop"})
    sandbox.add_advertiser({"advertiser_id": OTHER_ADVERTISER, "advertiser_name": "Acme Outlet", "currency": "EUR"})
    server = AdsSandboxServer(sandbox)
    server.start()
    yield Running(server, receiver)
    server.stop()


@dataclass
class Connected:
    running: Running
    token: str

    def campaign(self, **overrides) -> dict:
        body = {
            "advertiser_id": ADVERTISER,
            "campaign_name": "Spring leads",
            "objective_type": "LEAD_GENERATION",
            "budget_mode": "BUDGET_MODE_DAY",
            "budget": 100.0,
            **overrides,
        }
        return self.running.post("/campaign/create/", body, token=self.token)

    def adgroup(self, campaign_id: str, **overrides) -> dict:
        body = {
            "advertiser_id": ADVERTISER,
            "campaign_id": campaign_id,
            "adgroup_name": "UK 18-34",
            "placement_type": "PLACEMENT_TYPE_AUTOMATIC",
            "location_ids": ["2635167"],
            "budget_mode": "BUDGET_MODE_DAY",
            "budget": 50.0,
            "schedule_type": "SCHEDULE_FROM_NOW",
            "schedule_start_time": "2026-12-01 00:00:00",
            "optimization_goal": "LEAD_GENERATION",
            "billing_event": "OCPM",
            "pacing": "PACING_MODE_SMOOTH",
            **overrides,
        }
        return self.running.post("/adgroup/create/", body, token=self.token)

    def image(self, data: bytes | None = None, file_name: str = "creative.png") -> dict:
        data = png() if data is None else data
        fields = {
            "advertiser_id": ADVERTISER,
            "upload_type": "UPLOAD_BY_FILE",
            "image_signature": hashlib.md5(data).hexdigest(),
            "file_name": file_name,
        }
        return self.running.upload(
            "/file/image/ad/upload/", fields, {"image_file": (file_name, io.BytesIO(data))}, token=self.token
        )

    def ad(self, adgroup_id: str, image_id: str, **creative) -> dict:
        body = {
            "advertiser_id": ADVERTISER,
            "adgroup_id": adgroup_id,
            "creatives": [
                {
                    "ad_name": "Image A",
                    "ad_format": "SINGLE_IMAGE",
                    "ad_text": "Ask us anything",
                    "identity_type": "CUSTOMIZED_USER",
                    "identity_id": "7000000000000000001",
                    "image_ids": [image_id],
                    "call_to_action": "LEARN_MORE",
                    "landing_page_url": "https://example.com/",
                    **creative,
                }
            ],
        }
        return self.running.post("/ad/create/", body, token=self.token)

    def tree(self) -> tuple[str, str, str]:
        """A campaign, an ad group and an image ad; their ids."""
        campaign_id = self.campaign()["data"]["campaign_id"]
        adgroup_id = self.adgroup(campaign_id)["data"]["adgroup_id"]
        image_id = self.image()["data"]["image_id"]
        answer = self.ad(adgroup_id, image_id)
        assert answer["code"] == 0, answer
        return campaign_id, adgroup_id, answer["data"]["ad_ids"][0]

    def audience_file(self, rows: list[str], calculate_type: str = "EMAIL_SHA256", header: str = "email_sha256"):
        data = ("\n".join([header, *rows]) + "\n").encode()
        fields = {
            "advertiser_id": ADVERTISER,
            "calculate_type": calculate_type,
            "file_signature": hashlib.md5(data).hexdigest(),
        }
        return self.running.upload(
            "/dmp/custom_audience/file/upload/", fields, {"file": ("audience.csv", io.BytesIO(data))}, token=self.token
        )


@pytest.fixture
def connected(running) -> Connected:
    return Connected(running, running.connect())
