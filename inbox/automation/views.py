"""Pages of routing and automation: the public CSAT page (no login) and the automation rules page."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from inbox import selectors
from inbox.automation import csat, rules
from inbox.automation.models import AutomationRule
from inbox.errors import ApplicationError
from inbox.models import Conversation

CHOICES = [(1, "Very bad"), (2, "Bad"), (3, "OK"), (4, "Good"), (5, "Excellent")]


@require_http_methods(["GET", "POST"])
def csat_page(request: HttpRequest, token: str) -> HttpResponse:
    context: dict = {"choices": CHOICES, "comment_max": csat.COMMENT_MAX_CHARS, "rating": None, "comment": ""}
    try:
        survey = csat.survey_for_token(token)
    except csat.SurveyUnavailable as error:
        return render(request, "automation/csat.html", {**context, "unavailable": error.message}, status=error.status)
    context["inbox_name"] = survey.conversation.inbox.name
    if request.method == "GET":
        return render(request, "automation/csat.html", context)
    try:
        csat.csat_rate(token=token, rating=request.POST.get("rating"), comment=request.POST.get("comment", ""))
    except csat.SurveyUnavailable as error:
        return render(request, "automation/csat.html", {**context, "unavailable": error.message}, status=error.status)
    except ApplicationError as error:
        rating = request.POST.get("rating")
        context.update(
            error=error.message,
            rating=int(rating) if (rating or "").isdigit() else None,
            comment=request.POST.get("comment", "")[: csat.COMMENT_MAX_CHARS],
        )
        return render(request, "automation/csat.html", context, status=error.status)
    return render(request, "automation/csat.html", {**context, "done": True})


@login_required(login_url="login")
def automation_page(request: HttpRequest) -> HttpResponse:
    """The rules of the agent's inboxes with their latest runs; admins create, pause and delete rules here."""
    config = {
        "is_admin": request.user.is_superuser,
        "api": "/api/v1/",
        "login_url": reverse("login"),
        "events": [{"value": value, "label": label} for value, label in AutomationRule.Event.choices],
        "conditions": {attribute: list(operators) for attribute, operators in rules.CONDITIONS.items()},
        "actions": list(rules.ACTIONS),
        "priorities": list(Conversation.Priority.values),
        "inboxes": [{"id": inbox.pk, "name": inbox.name} for inbox in selectors.inboxes_visible_to(request.user)],
    }
    return render(request, "automation/rules.html", {"automation_config": config})
