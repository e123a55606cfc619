"""The Posts page: a shell the browser fills from /api/v1/videos/ (static/posts/posts.js); staff only."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse


@staff_member_required(login_url="login")
def posts_page(request: HttpRequest) -> HttpResponse:
    config = {
        "api": "/api/v1/videos/",
        "login_url": reverse("login"),
        "home": reverse("inbox:home"),
        "live": "/ws/staff/inboxes/",  # its hints without presence (inbox/consumers.py)
    }
    return render(request, "posts/posts.html", {"posts_config": config})
