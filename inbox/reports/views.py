"""The Reports page: a shell the browser fills from /api/v1/reports/ (static/inbox/js/reports.js)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse


@login_required(login_url="login")
def reports_page(request: HttpRequest) -> HttpResponse:
    """Every signed-in user: the API decides which inboxes' figures they see (their own; admins all)."""
    config = {"api": "/api/v1/reports/", "login_url": reverse("login"), "home": reverse("inbox:home")}
    return render(request, "inbox/reports.html", {"reports_config": config})
