from django.apps import AppConfig


class InboxConfig(AppConfig):
    name = "inbox"
    verbose_name = "Inbox"

    def ready(self) -> None:
        from inbox import domain_events, live

        # The live layer is the first subscriber of the domain events; automation, CSAT and reports subscribe too.
        domain_events.subscribe(live.on_domain_events)
