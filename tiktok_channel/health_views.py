"""Staff pages for the health of each Infobip connection (also shown on the account's admin page)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from tiktok_channel.health import account_health
from tiktok_channel.models import InfobipAccount
from tiktok_channel.setup import webhook_test


def _staff(request: HttpRequest) -> None:
    if not request.user.is_staff:
        raise PermissionDenied("staff only")


@login_required
def connections_health(request: HttpRequest) -> HttpResponse:
    _staff(request)
    accounts = InfobipAccount.objects.filter(active=True).prefetch_related("senders")
    rows = [{"account": account, "health": account_health(account)} for account in accounts]
    return render(request, "tiktok_channel/health.html", {"rows": rows})


@login_required
@require_POST
def connection_test(request: HttpRequest, account_id: int) -> HttpResponse:
    _staff(request)
    account = get_object_or_404(InfobipAccount, pk=account_id)
    outcome = webhook_test(account.pk)
    level = messages.SUCCESS if outcome["ok"] else messages.ERROR
    infobip, ours = outcome["infobip"]["result"], outcome["ours"]["result"]
    messages.add_message(request, level, f"{account.name}: Infobip's test {infobip}, our signed request {ours}")
    return redirect("connections-health")
