"""The public CSAT page (no login): the signed link from the CSAT message opens it."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from inbox.automation import csat
from inbox.errors import ApplicationError

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
