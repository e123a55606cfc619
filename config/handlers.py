"""Providers' webhooks through a short middleware list; everything else through the full one.

A webhook request (`WEBHOOK_PATH_PREFIXES`, `/webhooks/`) is a provider POSTing JSON with a secret in its URL, a
header or a signature: it has no session, no CSRF token, no user, no messages, and its answer is never framed or
rendered as a page. The full `MIDDLEWARE` list (whitenoise, CSP, sessions, CSRF, auth, messages, clickjacking, axes)
costs it about as much CPU as the bare view itself, so `config.wsgi.application` hands such paths to a Django handler
built from `WEBHOOK_MIDDLEWARE` (SecurityMiddleware: HSTS, nosniff, the SSL redirect, referrer and
cross-origin-opener policies) — the same URLconf, views, error handlers (JSON 404 / 500), signals and logging.

The test suite's client dispatches the same way (tests/conftest.py), so every webhook test runs through the short
list, and every page test through the full one.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.utils.module_loading import import_string


def is_webhook_path(path: str) -> bool:
    """Whether a request's path (PATH_INFO) is a provider's webhook, served through `WEBHOOK_MIDDLEWARE`."""
    return path.startswith(tuple(settings.WEBHOOK_PATH_PREFIXES))


class ShortMiddlewareMixin:
    """A handler whose middleware chain comes from `WEBHOOK_MIDDLEWARE` instead of `MIDDLEWARE`.

    Django's `BaseHandler.load_middleware` reads `settings.MIDDLEWARE` only; this builds the same synchronous chain
    (WSGI, every listed middleware sync-capable) from the short list, with the same hooks registered. A copy of
    Django's method: tests/test_wsgi_dispatch.py fails when a Django upgrade changes the original, so it is re-read."""

    def load_middleware(self, is_async: bool = False) -> None:
        if is_async:  # WSGI only: the ASGI app serves websockets (and HTTP in development, through the full list)
            raise RuntimeError("the webhook handler is synchronous")
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response)
        for middleware_path in reversed(settings.WEBHOOK_MIDDLEWARE):
            middleware = import_string(middleware_path)
            if not getattr(middleware, "sync_capable", True):
                raise RuntimeError(f"{middleware_path} is not sync-capable")
            try:
                instance = middleware(handler)
            except MiddlewareNotUsed:
                continue
            if hasattr(instance, "process_view"):
                self._view_middleware.insert(0, instance.process_view)
            if hasattr(instance, "process_template_response"):
                self._template_response_middleware.append(instance.process_template_response)
            if hasattr(instance, "process_exception"):
                self._exception_middleware.append(instance.process_exception)
            handler = convert_exception_to_response(instance)
        self._middleware_chain = handler


class WebhookHandler(ShortMiddlewareMixin, WSGIHandler):
    """The WSGI handler of webhook requests."""


class DispatchingWSGIHandler:
    """The WSGI application: webhook paths to `WebhookHandler`, every other path to Django's own handler."""

    def __init__(self) -> None:
        self.full = WSGIHandler()
        self.webhooks = WebhookHandler()
        self.prefixes = tuple(settings.WEBHOOK_PATH_PREFIXES)

    def __call__(self, environ, start_response):
        handler = self.webhooks if environ.get("PATH_INFO", "").startswith(self.prefixes) else self.full
        return handler(environ, start_response)


def client_handler(enforce_csrf_checks: bool = False, *, webhooks_only: bool = False):
    """A handler for Django's test client that dispatches as `DispatchingWSGIHandler` (the test suite's `client`,
    bench/ingest_cost.py); with `webhooks_only`, every path through the short list (the bench's second floor)."""
    from django.test.client import ClientHandler

    class WebhookClientHandler(ShortMiddlewareMixin, ClientHandler):
        pass

    if webhooks_only:
        return WebhookClientHandler(enforce_csrf_checks)

    class DispatchingClientHandler(ClientHandler):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.webhooks = WebhookClientHandler(*args, **kwargs)

        def __call__(self, environ):
            if is_webhook_path(environ.get("PATH_INFO", "")):
                return self.webhooks(environ)
            return super().__call__(environ)

    return DispatchingClientHandler(enforce_csrf_checks)
