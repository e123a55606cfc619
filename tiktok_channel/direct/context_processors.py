"""What staff must act on, on every page (the admin site and the inbox): connections needing re-authorization.

Generic names (`connection_alerts`: text + link) so templates need not know the provider."""

from __future__ import annotations

from django.db import DatabaseError
from django.http import HttpRequest


def connection_alerts(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_staff:
        return {}

    def alerts() -> list[dict]:
        from tiktok_channel.direct.models import TikTokConnection

        try:
            rows = list(
                TikTokConnection.objects.select_related("app__inbox").filter(
                    state=TikTokConnection.State.REAUTHORIZATION_NEEDED
                )
            )
        except DatabaseError:
            return []
        return [
            {
                "text": f"TikTok account {row} (inbox {row.app.inbox}) must be reconnected: agents cannot reply "
                "there, and their replies wait until it is.",
                "action": "Reconnect",
                "url": row.app.connect_url,
            }
            for row in rows
        ]

    # Lazy: evaluated (one query) only by a template that shows it.
    from django.utils.functional import SimpleLazyObject

    return {"connection_alerts": SimpleLazyObject(alerts)}
