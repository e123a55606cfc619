"""The login lockout holds behind the real servers, whatever `X-Forwarded-For` a guesser sends (issue 21, item 1).

uvicorn trusts forwarded headers from 127.0.0.1 by default; the `Procfile` tells it to trust none unless
`FORWARDED_ALLOW_IPS` names the proxy. gunicorn never takes the client address from a header. Either way the
lock counts failures per username, so a new address per guess does not reset it; and when no proxy is trusted,
every attempt is recorded with the peer's own address.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Iterator

import pytest
import requests
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model

from scripts.embedded import free_port
from tests.e2e.conftest import ROOT, Process, Stack, wait_for

pytestmark = pytest.mark.e2e

PASSWORD = "right-pass-123"


def procfile_web_command() -> str:
    """The `web:` line of the Procfile, as `make run` and a Procfile-based deployment start it."""
    line = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    command = line.removeprefix("web:").strip()
    assert command.startswith("python "), command
    return shlex.quote(sys.executable) + command.removeprefix("python")


def server_command(kind: str) -> list[str]:
    if kind.startswith("uvicorn"):
        return ["sh", "-c", procfile_web_command()]
    # The README's deployment: gunicorn's WSGI workers for HTTP.
    return [sys.executable, "-m", "gunicorn", "config.wsgi", "--workers", "1", "--bind", "127.0.0.1:$PORT"]


TRUSTING = "uvicorn (Procfile) trusting a proxy on 127.0.0.1"


@pytest.fixture(params=["uvicorn (Procfile)", "gunicorn", TRUSTING])
def server(request, stack: Stack) -> Iterator[str]:
    kind = request.param
    port = free_port()
    env = {**stack.env(), "HOST": "127.0.0.1", "PORT": str(port)}
    env.pop("FORWARDED_ALLOW_IPS", None)  # the default: no proxy named
    if kind == TRUSTING:  # a deployment that names its proxy: the header is believed, the lock still holds
        env["FORWARDED_ALLOW_IPS"] = "127.0.0.1"
    command = [part.replace("$PORT", str(port)) for part in server_command(kind)]
    name = re.sub(r"\W+", "-", kind).strip("-")
    process = Process(name, command, env, stack.log_dir / f"{name}.log")
    process.start()
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert process.alive, f"{kind} exited:\n{process.log()[-2000:]}"
        try:
            return requests.get(f"{url}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_for(healthy, 30, f"{kind} to answer /healthz")
        yield url
    finally:
        process.stop()


def login(session: requests.Session, url: str, password: str, forwarded_for: str) -> requests.Response:
    page = session.get(f"{url}/login/", timeout=10)
    assert page.status_code == 200
    token = session.cookies["csrftoken"]
    return session.post(
        f"{url}/login/",
        data={"username": "guessed", "password": password, "csrfmiddlewaretoken": token},
        headers={"X-Forwarded-For": forwarded_for, "Referer": f"{url}/login/"},
        allow_redirects=False,
        timeout=10,
    )


def test_rotating_forwarded_for_does_not_reset_the_lock(server, stack, request):
    get_user_model().objects.create_user("guessed", password=PASSWORD)
    session = requests.Session()
    limit = settings.AXES_FAILURE_LIMIT

    answers = [login(session, server, "wrong", f"203.0.113.{n + 1}").status_code for n in range(12)]

    # Refused with the form until the limit, then locked — though every guess came "from" a new address.
    assert answers[: limit - 1] == [200] * (limit - 1)
    assert answers[limit - 1 :] == [429] * (12 - limit + 1)
    # The right password from a fresh address is refused too.
    assert login(session, server, PASSWORD, "198.51.100.7").status_code == 429
    recorded = set(AccessAttempt.objects.filter(username="guessed").values_list("ip_address", flat=True))
    if request.node.callspec.params["server"] == TRUSTING:
        assert "127.0.0.1" not in recorded and "203.0.113.1" in recorded  # the proxy's header was believed
    else:  # no forwarded header was trusted: every attempt carries the peer's own address
        assert recorded == {"127.0.0.1"}
