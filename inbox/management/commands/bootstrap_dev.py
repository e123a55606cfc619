"""First-run convenience for `make run`: an admin and an agent with random passwords, printed once."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from inbox.services import inbox_get_or_create


class Command(BaseCommand):
    help = "Create a development admin and agent (only with DEBUG on, only when no user exists)."

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG:
            raise CommandError("bootstrap_dev only runs with DEBUG on; use createsuperuser in production")
        User = get_user_model()
        if User.objects.exists():
            return
        admin_password, agent_password = secrets.token_urlsafe(9), secrets.token_urlsafe(9)
        with transaction.atomic():
            User.objects.create_superuser("admin", "admin@example.com", admin_password)
            agent = User.objects.create_user("agent", "agent@example.com", agent_password, is_staff=False)
            inbox_get_or_create(name="Demo").members.add(agent)
        self.stdout.write(
            "\n  First run: created users (shown only this once; reset with manage.py changepassword)\n"
            f"    admin / {admin_password}   (Django admin, all inboxes)\n"
            f"    agent / {agent_password}   (agent of the 'Demo' inbox)\n"
        )
