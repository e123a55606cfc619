"""CSAT: asked on resolve (per inbox), through the reply path, answered on a public page with a signed, single-use,
expiring link; stored on the conversation and pushed live to the agents."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from inbox import domain_events as de
from inbox.automation.models import CsatSurvey, InboxRouting
from inbox.models import Conversation, Message
from tests.inbox.automation.helpers import user_writes
from tests.inbox.helpers import api

pytestmark = pytest.mark.django_db


@pytest.fixture
def csat_on(inbox):
    return InboxRouting.objects.create(inbox=inbox, csat_enabled=True)


def resolve(agent, conversation, capture):
    with capture(execute=True):
        response = api(agent).post(f"/api/v1/conversations/{conversation.pk}/resolve/")
    assert response.status_code == 200


def link_path(message: Message) -> str:
    return re.search(r"https?://[^/]+(/csat/[^/\s]+/)", message.text).group(1)


def test_resolving_sends_the_link_and_the_customer_rates_without_login(
    client, account, agent, csat_on, live_events, domain_events, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        conversation = user_writes(client, account, "u1", "thanks, all good")
    resolve(agent, conversation, django_capture_on_commit_callbacks)
    question = Message.objects.get(conversation=conversation, direction="out")
    assert question.status == "queued" and question.author.username == "automation"
    assert "How did we do?" in question.text
    assert Conversation.objects.get(pk=conversation.pk).status == "resolved"  # the question does not reopen it
    path = link_path(question)

    client.logout()
    page = client.get(path)
    assert page.status_code == 200 and b'name="rating"' in page.content and b"Support" in page.content
    bad = client.post(path, {"rating": "9"})
    assert bad.status_code == 422 and b"Choose 1 to 5" in bad.content
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(path, {"rating": "4", "comment": "Quick and friendly"})
    assert done.status_code == 200 and b"Thank you" in done.content
    survey = CsatSurvey.objects.get(conversation=conversation)
    assert (survey.rating, survey.comment, survey.outcome) == (4, "Quick and friendly", "queued")
    rated = [e for e in domain_events if isinstance(e, de.CsatRated)]
    assert [(e.conversation_id, e.rating) for e in rated] == [(conversation.pk, 4)]
    assert (
        f"inbox.{conversation.inbox_id}",
        {"type": "csat.rated", "conversation_id": conversation.pk, "rating": 4},
    ) in live_events
    listed = api(agent).get(f"/api/v1/conversations/{conversation.pk}/csat/").json()
    assert listed[0]["rating"] == 4 and listed[0]["comment"] == "Quick and friendly"

    again = client.post(path, {"rating": "1"})  # single use
    assert again.status_code == 410 and b"rated already" in again.content
    assert CsatSurvey.objects.get().rating == 4
    assert client.get(path.replace("/csat/", "/csat/x")).status_code == 404  # forged


def test_an_expired_link_is_refused(client, account, agent, csat_on, settings, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        conversation = user_writes(client, account, "u1", "bye")
    resolve(agent, conversation, django_capture_on_commit_callbacks)
    path = link_path(Message.objects.get(conversation=conversation, direction="out"))
    with time_machine.travel(timezone.now() + timedelta(days=settings.CSAT_LINK_DAYS, minutes=1), tick=True):
        response = client.post(path, {"rating": "5"})
    assert response.status_code == 410 and b"expired" in response.content
    assert CsatSurvey.objects.get().rating is None


def test_not_sent_when_the_window_is_closed_and_nothing_when_csat_is_off(
    client, account, agent, inbox, csat_on, settings, django_capture_on_commit_callbacks
):
    old = timezone.now() - timedelta(hours=settings.REPLY_WINDOW_HOURS + 1)
    with django_capture_on_commit_callbacks(execute=True):
        conversation = user_writes(client, account, "u1", "late", at=old)
    resolve(agent, conversation, django_capture_on_commit_callbacks)
    survey = CsatSurvey.objects.get(conversation=conversation)
    assert survey.outcome == "not_sent" and "reply_window_closed" in survey.detail
    assert not Message.objects.filter(conversation=conversation, direction="out").exists()

    csat_on.csat_enabled = False
    csat_on.save()
    with django_capture_on_commit_callbacks(execute=True):
        other = user_writes(client, account, "u2", "hi")
    resolve(agent, other, django_capture_on_commit_callbacks)
    assert not CsatSurvey.objects.filter(conversation=other).exists()


def test_a_comment_conversation_gets_no_public_survey(
    client, account, agent, csat_on, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        conversation = user_writes(client, account, "u1", "nice video")
    Conversation.objects.filter(pk=conversation.pk).update(kind=Conversation.Kind.COMMENT, subject_id="7312")
    resolve(agent, conversation, django_capture_on_commit_callbacks)
    assert Conversation.objects.get(pk=conversation.pk).status == "resolved"
    assert not CsatSurvey.objects.filter(conversation=conversation).exists()
    assert not Message.objects.filter(conversation=conversation, direction="out").exists()
