"""The agents' pages: login/logout and the inbox (a shell the browser fills from the REST API)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from inbox import selectors, services
from inbox.models import Conversation


class LoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True
    next_page = "inbox:home"


class LogoutView(auth_views.LogoutView):
    next_page = "login"


def inbox_config(request: HttpRequest, conversation_id: int | None) -> dict:
    """What the inbox script needs to start, handed over as JSON (no inline script under the CSP)."""
    user = request.user
    return {
        "user": {"id": user.pk, "username": user.get_username(), "name": user.get_full_name() or user.get_username()},
        "is_admin": user.is_superuser,
        "api": "/api/v1/",
        "ws_path": "/ws/inbox/",
        "home": reverse("inbox:home"),
        "conversation_url": reverse("inbox:conversation", args=[0]),
        "login_url": reverse("login"),
        "conversation_id": conversation_id,
        "reply_window_hours": settings.REPLY_WINDOW_HOURS,
        "reply_quota": settings.REPLY_QUOTA_PER_WINDOW,
        "limits": services.reply_limits(),
        "priorities": [{"value": value, "label": label} for value, label in Conversation.Priority.choices],
    }


@login_required(login_url="login")
def inbox_page(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """The inbox, optionally with one conversation open: 404 for a conversation outside the agent's inboxes."""
    if pk is not None and not selectors.conversations_visible_to(request.user).filter(pk=pk).exists():
        raise Http404("no such conversation")
    return render(request, "inbox/inbox.html", {"inbox_config": inbox_config(request, pk)})
