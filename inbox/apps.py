from django.apps import AppConfig


class InboxConfig(AppConfig):
    name = "inbox"
    verbose_name = "Inbox"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_out
        from django.db.models.signals import m2m_changed, post_save, pre_save

        from config import log_filters
        from inbox import domain_events, live
        from inbox.automation import subscriber as automation
        from inbox.automation import tasks as automation_tasks  # noqa: F401 - registers the Celery tasks
        from inbox.models import Inbox
        from inbox.reports import rollups

        # The live layer is the first subscriber of the domain events; automation, CSAT and reports subscribe too.
        domain_events.subscribe(live.on_domain_events)
        domain_events.subscribe(rollups.on_domain_events)  # report roll-ups (inbox/reports/)
        domain_events.subscribe_before_commit(rollups.mark_touched)  # their marks, with the change when it can
        pre_save.connect(rollups.on_inbox_saving, sender=Inbox, dispatch_uid="inbox.reports.time_zone")
        domain_events.subscribe(automation.on_domain_events)

        # Open websockets lose what their user may no longer see (inbox/live.py: sockets_revoke).
        user_logged_out.connect(live.on_user_logged_out, dispatch_uid="inbox.live.logout")
        post_save.connect(live.on_user_saved, sender=get_user_model(), dispatch_uid="inbox.live.user_saved")
        m2m_changed.connect(live.on_members_changed, sender=Inbox.members.through, dispatch_uid="inbox.live.members")
        log_filters.install()  # webhook tokens masked in access logs
