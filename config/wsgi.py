"""WSGI entry point: serves HTTP (webhooks, API, pages) in production, see README.

Providers' webhooks (`/webhooks/…`) go through a short middleware list (`WEBHOOK_MIDDLEWARE`), every other path
through the full one: `config.handlers.DispatchingWSGIHandler`.
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
django.setup(set_prefix=False)  # as django.core.wsgi.get_wsgi_application

from config.handlers import DispatchingWSGIHandler  # noqa: E402

application = DispatchingWSGIHandler()
