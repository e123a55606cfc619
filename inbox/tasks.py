"""Periodic work of the contact center (thin tasks: they call services)."""

from celery import shared_task

from inbox import services


@shared_task
def wake_snoozed_conversations() -> int:
    """Reopen snoozed conversations whose time has come; returns how many."""
    return len(services.conversations_wake_due())
