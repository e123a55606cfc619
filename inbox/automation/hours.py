"""Business hours per inbox (time zone, weekly schedule, holidays) and the out-of-hours auto-reply."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import IntegrityError, transaction

from inbox.automation.models import InboxRouting, OutOfHoursReply
from inbox.errors import ApplicationError
from inbox.models import Message

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
LOOKBACK_DAYS = 14


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError("invalid_hours", message, status=422, fields={field: [message]})


def clean_hours(*, time_zone: str, weekly_hours, holidays) -> dict:
    """Validate a schedule; returns it normalized (intervals sorted). 422 with the field at fault."""
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise _invalid("time_zone", f"{time_zone!r} is not a time zone name like Europe/Berlin") from None
    if not isinstance(weekly_hours, dict) or set(weekly_hours) - set(DAYS):
        raise _invalid("weekly_hours", f"weekly_hours maps {', '.join(DAYS)} to lists of [start, end]")
    cleaned: dict[str, list[list[str]]] = {}
    for day, intervals in weekly_hours.items():
        if not isinstance(intervals, list):
            raise _invalid("weekly_hours", f"{day}: a list of [start, end]")
        for interval in intervals:
            if (
                not isinstance(interval, list)
                or len(interval) != 2
                or not all(isinstance(v, str) and CLOCK.match(v) for v in interval)
                or interval[0] >= interval[1]
            ):
                raise _invalid("weekly_hours", f'{day}: each interval is ["HH:MM", "HH:MM"], start before end')
        cleaned[day] = sorted(intervals)
    if not isinstance(holidays, list):
        raise _invalid("holidays", "holidays is a list of YYYY-MM-DD dates")
    for holiday in holidays:
        try:
            date.fromisoformat(holiday)
        except (TypeError, ValueError):
            raise _invalid("holidays", f"{holiday!r} is not a YYYY-MM-DD date") from None
    return {"time_zone": time_zone, "weekly_hours": cleaned, "holidays": sorted(set(holidays))}


def _clock(value: str) -> time | None:
    """None stands for 24:00 (the end of the day)."""
    return None if value == "24:00" else time.fromisoformat(value)


def _intervals(routing: InboxRouting, day: date, zone: ZoneInfo) -> list[tuple[datetime, datetime]]:
    if day.isoformat() in (routing.holidays or []):
        return []
    result = []
    for start, end in (routing.weekly_hours or {}).get(DAYS[day.weekday()], []):
        begin = datetime.combine(day, _clock(start) or time(0), tzinfo=zone)
        finish_clock = _clock(end)
        finish = (
            datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
            if finish_clock is None
            else datetime.combine(day, finish_clock, tzinfo=zone)
        )
        result.append((begin, finish))
    return result


def is_open(routing: InboxRouting | None, now: datetime) -> bool:
    if routing is None or not routing.business_hours_enabled:
        return True
    zone = ZoneInfo(routing.time_zone)
    local = now.astimezone(zone)
    return any(begin <= local < finish for begin, finish in _intervals(routing, local.date(), zone))


def inbox_is_open(inbox_id: int, now: datetime) -> bool:
    return is_open(InboxRouting.objects.filter(inbox_id=inbox_id).first(), now)


def closed_period_start(routing: InboxRouting, now: datetime) -> datetime:
    """When the closed period `now` falls in began: the end of the last opening before `now` (looking back two
    weeks at most; before that, the lookback's start stands for "closed for long")."""
    zone = ZoneInfo(routing.time_zone)
    local = now.astimezone(zone)
    for back in range(LOOKBACK_DAYS + 1):
        day = local.date() - timedelta(days=back)
        ends = [finish for _, finish in _intervals(routing, day, zone) if finish <= local]
        if ends:
            return max(ends)
    return datetime.combine(local.date() - timedelta(days=LOOKBACK_DAYS), time(0), tzinfo=zone)


def out_of_hours_reply(
    *, inbox_id: int, conversation_id: int, message_id: int, now: datetime
) -> OutOfHoursReply | None:
    """When a customer writes while the inbox is closed, send its out-of-hours reply once per conversation per
    closed period, through the agents' reply path (window and quota apply; `not_sent` with the reason otherwise).
    Never for our own messages or a reaction."""
    from inbox.automation.rules import automation_user, send_automatic_message

    routing = InboxRouting.objects.filter(inbox_id=inbox_id).first()
    if routing is None or not routing.business_hours_enabled or not routing.out_of_hours_reply.strip():
        return None
    if is_open(routing, now):
        return None
    message = Message.objects.filter(pk=message_id, direction=Message.Direction.IN).first()
    if message is None or message.type == Message.Type.REACTION:
        return None
    try:
        with transaction.atomic():
            claim = OutOfHoursReply.objects.create(
                conversation_id=conversation_id, period_start=closed_period_start(routing, now), outcome="claimed"
            )
    except IntegrityError:
        return None  # already answered in this closed period
    result = send_automatic_message(
        conversation_id=conversation_id, text=routing.out_of_hours_reply, actor=automation_user(), kind="out_of_hours"
    )
    claim.outcome, claim.detail = result["outcome"], result["detail"][:300]
    OutOfHoursReply.objects.filter(pk=claim.pk).update(outcome=claim.outcome, detail=claim.detail)
    return claim
