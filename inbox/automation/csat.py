"""CSAT: when a conversation is resolved (per inbox), the customer gets a link to a public rating page.

The message goes through the agents' reply path (outbox, window, quota) without reopening the conversation;
when the channel does not allow it, the survey row records `not_sent` and the reason. The link's token is signed
(django.core.signing), expires after CSAT_LINK_DAYS and is single-use (a stored rating refuses it).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from inbox import domain_events
from inbox.automation.models import CsatSurvey, InboxRouting
from inbox.errors import ApplicationError
from inbox.models import AuditLog, Conversation

SALT = "inbox.csat"
COMMENT_MAX_CHARS = 2000


def survey_token(survey: CsatSurvey) -> str:
    return signing.dumps({"survey": survey.pk}, salt=SALT, compress=False)


def survey_url(survey: CsatSurvey) -> str:
    return settings.PUBLIC_BASE_URL + reverse("inbox:csat", args=[survey_token(survey)])


def csat_send(*, inbox_id: int, conversation_id: int, resolved_version: int) -> CsatSurvey | None:
    """Ask for a rating of this resolution (once per resolution) when the inbox has CSAT on."""
    from inbox.automation.rules import automation_user, send_automatic_message

    routing = InboxRouting.objects.filter(inbox_id=inbox_id, csat_enabled=True).first()
    if routing is None:
        return None
    if Conversation.objects.filter(pk=conversation_id, kind=Conversation.Kind.COMMENT).exists():
        return None  # a survey link is not posted publicly under the customer's comment
    try:
        with transaction.atomic():
            survey = CsatSurvey.objects.create(
                conversation_id=conversation_id,
                resolved_version=resolved_version,
                outcome="claimed",
                expires_at=timezone.now() + timedelta(days=settings.CSAT_LINK_DAYS),
            )
    except IntegrityError:
        return None  # this resolution was asked already
    text = routing.csat_message.replace("{link}", survey_url(survey))
    if "{link}" not in routing.csat_message:
        text = f"{text} {survey_url(survey)}"
    result = send_automatic_message(
        conversation_id=conversation_id, text=text, actor=automation_user(), kind="csat", reopens=False
    )
    survey.outcome, survey.detail = result["outcome"], result["detail"][:300]
    CsatSurvey.objects.filter(pk=survey.pk).update(outcome=survey.outcome, detail=survey.detail)
    return survey


class SurveyUnavailable(ApplicationError):
    pass


def survey_for_token(token: str) -> CsatSurvey:
    """The open survey a token names: 404 for a forged or unknown token, 410 once expired or already rated."""
    try:
        data = signing.loads(token, salt=SALT)
        survey = CsatSurvey.objects.select_related("conversation__inbox").get(pk=int(data["survey"]))
    except (signing.BadSignature, CsatSurvey.DoesNotExist, KeyError, TypeError, ValueError):
        raise SurveyUnavailable("invalid_link", "This link is not valid.", status=404) from None
    if survey.rated_at is not None:
        raise SurveyUnavailable("already_rated", "Thanks, this conversation has been rated already.", status=410)
    if timezone.now() >= survey.expires_at:
        raise SurveyUnavailable("link_expired", "This link has expired.", status=410)
    return survey


def csat_rate(*, token: str, rating, comment: str = "") -> CsatSurvey:
    """Store the customer's rating (1 to 5) and comment once; pushed live to the inbox's agents."""
    try:
        rating = int(rating)
    except (TypeError, ValueError):
        rating = 0
    if not 1 <= rating <= 5:
        raise ApplicationError("invalid_rating", "Choose 1 to 5 stars.", status=422, fields={"rating": ["1 to 5"]})
    comment = (comment or "").strip()
    if len(comment) > COMMENT_MAX_CHARS:
        raise ApplicationError(
            "comment_too_long",
            f"A comment is at most {COMMENT_MAX_CHARS} characters.",
            status=422,
            fields={"comment": [f"at most {COMMENT_MAX_CHARS} characters"]},
        )
    survey_id = survey_for_token(token).pk
    with transaction.atomic():
        survey = CsatSurvey.objects.select_for_update().select_related("conversation").get(pk=survey_id)
        if survey.rated_at is not None:  # a second tab submitting at the same moment
            raise SurveyUnavailable("already_rated", "Thanks, this conversation has been rated already.", status=410)
        survey.rating, survey.comment, survey.rated_at = rating, comment, timezone.now()
        survey.save(update_fields=["rating", "comment", "rated_at"])
        AuditLog.objects.create(
            actor_kind=AuditLog.ActorKind.SYSTEM,
            action="csat.rated",
            conversation=survey.conversation,
            after={"rating": rating, "survey": survey.pk},
        )
        domain_events.emit(
            domain_events.CsatRated(
                inbox_id=survey.conversation.inbox_id,
                conversation_id=survey.conversation_id,
                survey_id=survey.pk,
                rating=rating,
            )
        )
    return survey
