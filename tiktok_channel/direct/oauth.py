"""The Connect round trip: a staff user → TikTok's consent page → back on the redirect URI with `code` and `state`.

The `state` is signed (Django's signing, its own salt), expires (TIKTOK_DIRECT_OAUTH_STATE_MAX_AGE_SECONDS), is
bound to the staff user's session (a nonce kept there) and single use (the nonce is taken out on the way back,
whatever the outcome). Every ending is an admin message; a failure stores nothing.
"""

from __future__ import annotations

import logging
import secrets
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse

from tiktok_channel.direct import tokens
from tiktok_channel.direct.models import TikTokApp

logger = logging.getLogger(__name__)

STATE_SALT = "tiktok_channel.direct.oauth.state"
SESSION_KEY = "tiktok_direct_oauth_nonces"
# Connect rounds one session may have open at once (several tabs); older ones are dropped.
MAX_OPEN_ROUNDS = 5


def authorize_url(app: TikTokApp, state: str) -> str:
    params = {
        "client_key": app.client_key,
        "response_type": "code",
        "scope": ",".join(settings.TIKTOK_DIRECT_SCOPES),
        "redirect_uri": app.redirect_uri(),
        "state": state,
    }
    return f"{app.auth_base_url.rstrip('/')}{settings.TIKTOK_DIRECT_AUTHORIZE_PATH}?{urlencode(params)}"


@staff_member_required
def connect(request: HttpRequest, app_id: int) -> HttpResponse:
    app = get_object_or_404(TikTokApp, pk=app_id, active=True)
    nonce = secrets.token_urlsafe(16)
    open_rounds = dict(list(request.session.get(SESSION_KEY, {}).items())[-(MAX_OPEN_ROUNDS - 1) :])
    open_rounds[nonce] = app.pk
    request.session[SESSION_KEY] = open_rounds
    state = signing.dumps({"app": app.pk, "nonce": nonce}, salt=STATE_SALT)
    return HttpResponseRedirect(authorize_url(app, state))


def _back(request: HttpRequest, level: int, text: str, app: TikTokApp | None = None) -> HttpResponse:
    messages.add_message(request, level, text)
    if app is not None:
        return HttpResponseRedirect(reverse("admin:tiktok_channel_tiktokapp_change", args=[app.pk]))
    return HttpResponseRedirect(reverse("admin:index"))


@staff_member_required
def callback(request: HttpRequest) -> HttpResponse:
    try:
        claims = signing.loads(
            request.GET.get("state", ""), salt=STATE_SALT, max_age=settings.TIKTOK_DIRECT_OAUTH_STATE_MAX_AGE_SECONDS
        )
    except signing.SignatureExpired:
        return _back(request, messages.ERROR, "Connecting TikTok took too long: the request expired. Connect again.")
    except signing.BadSignature:
        return _back(request, messages.ERROR, "TikTok's answer did not carry a valid state: nothing was connected.")
    open_rounds = dict(request.session.get(SESSION_KEY, {}))
    app_id = open_rounds.pop(str(claims.get("nonce")), None) if isinstance(claims, dict) else None
    request.session[SESSION_KEY] = open_rounds
    if app_id is None or app_id != claims.get("app"):
        return _back(
            request,
            messages.ERROR,
            "This TikTok answer was already used, or was started in another browser session: nothing was connected.",
        )
    app = TikTokApp.objects.filter(pk=app_id).first()
    if app is None:
        return _back(request, messages.ERROR, "The TikTok app no longer exists: nothing was connected.")
    if request.GET.get("error") or request.GET.get("error_code"):
        reason = request.GET.get("error_description") or request.GET.get("error") or request.GET.get("error_code")
        return _back(
            request, messages.ERROR, f"TikTok did not grant access ({reason[:200]}): nothing was connected.", app
        )
    code = request.GET.get("code") or request.GET.get("auth_code")
    if not code:
        return _back(
            request, messages.ERROR, "TikTok's answer carried no authorization code: nothing was connected.", app
        )
    try:
        connection = tokens.connect(app=app, code=code, user=request.user)
    except tokens.ConnectError as exc:
        return _back(request, messages.ERROR, f"{exc} Nothing was connected.", app)
    messages.success(request, f"TikTok account {connection} is connected: its messages arrive in {app.inbox}.")
    return HttpResponseRedirect(reverse("admin:tiktok_channel_tiktokconnection_change", args=[connection.pk]))
