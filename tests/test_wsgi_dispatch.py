"""config.wsgi.application: providers' webhooks through the short middleware list, every other path through the
full one (config/handlers.py), called as gunicorn calls it."""

from __future__ import annotations

import json

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import RequestFactory

from inbox.models import Message, WebhookEvent
from tests.tiktok_channel.webhooks import encode, fixture, signed_headers, webhook_path


@pytest.fixture
def wsgi():
    """Call the production WSGI app; keep the test's connection (and its transaction) open as the test client does."""
    from config.wsgi import application

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)

    def call(method: str, path: str, body: bytes = b"", headers: dict | None = None, **extra):
        environ = RequestFactory().generic(method, path, body, headers=headers or {}, **extra).environ
        answer: dict = {}

        def start_response(status, response_headers, exc_info=None):
            answer["status"] = int(status.split()[0])
            answer["headers"] = response_headers

        chunks = application(environ, start_response)
        try:
            answer["body"] = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        answer["header"] = {name.lower(): value for name, value in answer["headers"]}
        answer["cookies"] = [value.strip() for name, value in answer["headers"] if name.lower() == "set-cookie"]
        return answer

    yield call
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_the_application_serves_webhooks_through_the_short_list_and_pages_through_the_full_one(settings):
    from config.wsgi import application

    assert settings.WEBHOOK_MIDDLEWARE == ["django.middleware.security.SecurityMiddleware"]
    assert "django.contrib.sessions.middleware.SessionMiddleware" in settings.MIDDLEWARE
    names = {type(m).__name__ for m in _chain(application.webhooks._middleware_chain)}
    assert names == {"SecurityMiddleware"}
    full = {type(m).__name__ for m in _chain(application.full._middleware_chain)}
    assert {"SessionMiddleware", "CsrfViewMiddleware", "AxesMiddleware", "CSPMiddleware"} <= full


def _chain(handler):
    """The middleware instances of a chain built by Django (each wrapped by convert_exception_to_response)."""
    found = []
    while handler is not None:
        instance = getattr(handler, "__wrapped__", handler)
        if hasattr(instance, "get_response"):
            found.append(instance)
            handler = instance.get_response
        else:
            break
    return found


@pytest.mark.django_db
def test_a_signed_webhook_is_stored_and_answered_through_the_short_list(wsgi, account, inbox):
    body = encode(fixture("inbound_text"))
    answer = wsgi(
        "POST", webhook_path(account), body, headers=signed_headers(account, body), content_type="application/json"
    )
    assert answer["status"] == 200, answer["body"]
    assert json.loads(answer["body"])["results"] == 1
    assert WebhookEvent.objects.filter(connection_id=account.pk).count() == 1
    assert Message.objects.filter(direction="in").count() == 1
    # The security headers stay; nothing a page needs is added (no session cookie, no CSP, no frame options).
    assert answer["header"]["x-content-type-options"] == "nosniff"
    assert answer["cookies"] == []
    assert "content-security-policy" not in answer["header"]
    assert "x-frame-options" not in answer["header"]


@pytest.mark.django_db
def test_refusals_keep_their_reasons_through_the_short_list(wsgi, account, inbox):
    body = encode(fixture("inbound_text"))
    forged = wsgi(
        "POST", webhook_path(account), body, headers={"X-Hub-Signature": "forged"}, content_type="application/json"
    )
    assert forged["status"] == 401
    assert json.loads(forged["body"])["code"] == "unauthenticated"
    unknown = wsgi("POST", "/webhooks/infobip/tiktok/no-such-token/", body, content_type="application/json")
    assert unknown["status"] == 404
    assert json.loads(unknown["body"])["code"] == "unknown_webhook"
    nowhere = wsgi("POST", "/webhooks/no-such-provider/", body, content_type="application/json")
    assert nowhere["status"] == 404
    assert json.loads(nowhere["body"])["code"] == "not_found"  # the URLconf's JSON 404, as through the full list
    signed = signed_headers(account, body)
    wrong_type = wsgi("POST", webhook_path(account), body, headers=signed, content_type="text/plain")
    assert wrong_type["status"] == 415
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_pages_still_go_through_the_full_list(wsgi):
    answer = wsgi("GET", "/login/")
    assert answer["status"] == 200
    assert "content-security-policy" in answer["header"]
    assert answer["header"]["x-frame-options"] == "DENY"
    assert any(cookie.startswith("csrftoken=") for cookie in answer["cookies"])


def test_the_short_chain_copies_the_django_release_it_was_written_against():
    """`ShortMiddlewareMixin.load_middleware` is Django's `BaseHandler.load_middleware` (its synchronous case) with
    the list swapped: Django offers no hook to choose the list. This fails when a Django upgrade changes that method,
    so the copy is read again against the new one (and this digest updated) before the upgrade lands."""
    import hashlib
    import inspect

    from django.core.handlers.base import BaseHandler

    source = inspect.getsource(BaseHandler.load_middleware)
    # Django 5.2.19's BaseHandler.load_middleware.
    assert hashlib.sha256(source.encode()).hexdigest() == (
        "a1fb7ee5f8586195da2174d1bbc2bbfc7ca19b9d26ea66412cb434f45bf6d467"
    ), "Django's load_middleware changed: compare config/handlers.py ShortMiddlewareMixin with it"
