"""Publishing against the TikTok sandbox: a real HTTP server in this process (the external boundary), an app and a
connection made through our own OAuth code path with the posting scope granted."""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from django.conf import settings

from tiktok_channel.direct import tokens
from tiktok_channel.direct.models import TikTokApp, TikTokConnection
from tiktok_channel.direct.sandbox.behaviour import Behaviour
from tiktok_channel.direct.sandbox.server import SandboxServer
from tiktok_channel.direct.sandbox.state import Sandbox

BUSINESS = "-000publish-shop"
CLIENT_KEY = "publish-app"
SCOPES = ["user.info.basic", "message.list.read", "message.list.send", "message.list.manage", "video.publish"]
MB = 1024 * 1024


def mp4_bytes(size: int, seconds: float = 12.0, *, brand: bytes = b"isom") -> bytes:
    """A file shaped as an MP4 (ftyp, moov/mvhd with the duration, mdat) of exactly `size` bytes of real data."""
    ftyp = struct.pack(">I4s4sI4s", 20, b"ftyp", brand, 0x200, b"isom")
    mvhd_payload = bytes(4) + struct.pack(">IIII", 0, 0, 1000, int(seconds * 1000)) + bytes(80)
    mvhd = struct.pack(">I4s", 8 + len(mvhd_payload), b"mvhd") + mvhd_payload
    moov = struct.pack(">I4s", 8 + len(mvhd), b"moov") + mvhd
    head = ftyp + moov
    payload = os.urandom(size - len(head) - 8)
    return head + struct.pack(">I4s", 8 + len(payload), b"mdat") + payload


JPEG = b"\xff\xd8\xff\xe0" + bytes(60) + b"\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(60)


@dataclass
class PostingSandbox:
    server: SandboxServer
    app: TikTokApp

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def sandbox(self) -> Sandbox:
        return self.server.sandbox

    def set(self, **switches) -> None:
        response = requests.post(f"{self.url}/sandbox/control", json={"set": switches}, timeout=10)
        assert response.status_code == 200, response.text

    def posts(self) -> list[dict]:
        return requests.get(f"{self.url}/sandbox/state", timeout=10).json()["posts"]

    def counter(self, name: str) -> int:
        return requests.get(f"{self.url}/sandbox/state", timeout=10).json()["counters"].get(name, 0)

    def connect(self, scopes=SCOPES) -> TikTokConnection:
        code = self.sandbox.issue_code(
            app=self.sandbox.apps[CLIENT_KEY],
            open_id=BUSINESS,
            scope=list(scopes),
            redirect_uri=self.app.redirect_uri(),
        )
        return tokens.connect(app=self.app, code=code, user=None)


def start_sandbox(inbox, **switches) -> tuple[SandboxServer, TikTokApp]:
    server = SandboxServer(Sandbox(Behaviour(post_processing_ms=150, post_moderation_ms=150, **switches)))
    server.start()
    app = TikTokApp.objects.create(
        name="Publish app",
        client_key=CLIENT_KEY,
        client_secret="publish-secret-0123456789",
        api_base_url=server.url,
        auth_base_url=server.url,
        inbox=inbox,
    )
    server.sandbox.add_app(
        {
            "client_key": CLIENT_KEY,
            "client_secret": "publish-secret-0123456789",
            "name": "Publish app",
            "redirect_uri": app.redirect_uri(),
            "webhook_url": app.webhook_url,
        }
    )
    server.sandbox.add_account({"open_id": BUSINESS, "username": "shop", "display_name": "The Shop"})
    return server, app


@pytest.fixture
def posting(db, inbox) -> Iterator[PostingSandbox]:
    server, app = start_sandbox(inbox)
    yield PostingSandbox(server, app)
    server.stop()


@pytest.fixture
def connection(posting) -> TikTokConnection:
    return posting.connect()


@pytest.fixture(autouse=True)
def _clean_post_media() -> Iterator[None]:
    yield
    shutil.rmtree(Path(settings.MEDIA_ROOT) / "posts", ignore_errors=True)
