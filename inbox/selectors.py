"""Reads of the contact center: the querysets views, the API and consumers use."""

from __future__ import annotations

from datetime import timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import connection
from django.db.models import (
    Case,
    Count,
    DateTimeField,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from inbox.models import CannedResponse, Contact, Conversation, Conversion, Inbox, Label, Message


def inbox_ids_visible_to(user) -> list[int]:
    """Admins see every inbox; an agent only the inboxes they are a member of."""
    return list(inboxes_visible_to(user).values_list("pk", flat=True))


def inboxes_visible_to(user) -> QuerySet[Inbox]:
    return Inbox.objects.all() if user.is_superuser else Inbox.objects.filter(members=user)


def inbox_members(inbox: Inbox) -> QuerySet:
    """Who a conversation of the inbox can be assigned to: its active members (admins assign to anyone)."""
    return inbox.members.filter(is_active=True).order_by("first_name", "username")


def conversations_visible_to(user) -> QuerySet[Conversation]:
    qs = Conversation.objects.all()
    if not user.is_superuser:
        qs = qs.filter(inbox__members=user)
    return qs


def quota_replies(*, conversation, since) -> QuerySet[Message]:
    """The replies that use up a window's quota: outbound, queued since the user's last message, not failed.

    The one definition of the quota, for the list (`replies_left`) and for `reply_queue`'s refusal alike.
    """
    return Message.objects.filter(
        conversation=conversation, direction=Message.Direction.OUT, queued_at__gte=since
    ).exclude(status=Message.Status.FAILED)


def replies_counted_since(last_inbound_at_ref) -> Subquery:
    """How many replies of the outer conversation count against its quota (see quota_replies)."""
    return Subquery(
        quota_replies(conversation=OuterRef("pk"), since=last_inbound_at_ref)
        .order_by()
        .values("conversation")
        .annotate(n=Count("pk"))
        .values("n"),
        output_field=IntegerField(),
    )


def unread_counts(*, user, status: str) -> dict[str, int]:
    """How many conversations of each view (mine, unassigned, all) have messages agents have not read."""
    qs = Conversation.objects.filter(status=status, unread_count__gt=0)
    if not user.is_superuser:
        qs = qs.filter(inbox_id__in=inbox_ids_visible_to(user))
    return qs.aggregate(
        all=Count("pk"),
        mine=Count("pk", filter=Q(assignee=user)),
        unassigned=Count("pk", filter=Q(assignee__isnull=True)),
    )


# The values a list row shows (inbox/api/serializers.py `conversation_rows`, equal to ConversationOut's declared
# fields), read with `.values()`: plain values of four joined tables, no model instances (the list's CPU). The
# backends' `send_blocked` / `capabilities_for` take the provider, kind and the contact's endpoint.
LIST_VALUES = (
    "id",
    "kind",
    "subject_id",
    "subject",
    "status",
    "priority",
    "provider",
    "last_inbound_at",
    "last_activity_at",
    "referral",
    "snoozed_until",
    "version",
    "last_message_id",
    "last_message_at",
    "last_message_direction",
    "last_message_type",
    "last_message_preview",
    "unread_count",
    "inbox_id",
    "inbox__name",
    "contact_id",
    "contact__endpoint_id",
    "contact__channel_user_id",
    "contact__display_name",
    "assignee_id",
    "assignee__username",
    "assignee__first_name",
    "assignee__last_name",
    "team_assignment__team_id",  # routing: the team a rule handed it to
    "team_assignment__team__name",
    "replies_used",
    "first_response_due_at",
    "window_rank",  # the cursor's positions (ordering=window / sla)
    "sla_rank",
)


def with_list_annotations(qs: QuerySet[Conversation]) -> QuerySet[Conversation]:
    """Everything a conversation row shows, for a model instance (the detail view). The newest message and the
    unread count are columns the write path keeps (inbox/services/summary.py); only the reply quota is counted
    here (it depends on the reply window, which time moves)."""
    return (
        qs.select_related("inbox", "contact", "assignee", "team_assignment__team")
        .prefetch_related("labels")
        .annotate(**_list_annotations())
    )


def _list_annotations() -> dict:
    return {
        "replies_used": Coalesce(replies_counted_since(OuterRef("last_inbound_at")), Value(0)),
        "first_response_due_at": F("sla__due_at"),  # routing and automation: the first-response SLA
    }


def label_names_of(conversation_ids: list[int]) -> dict[int, list[str]]:
    """The label names of a page's conversations, sorted, in one query."""
    names: dict[int, list[str]] = {}
    if not conversation_ids:
        return names
    rows = (
        Label.conversations.through.objects.filter(conversation_id__in=conversation_ids)
        .order_by("label__name")
        .values_list("conversation_id", "label__name")
    )
    for conversation_id, name in rows:
        names.setdefault(conversation_id, []).append(name)
    return names


def window_rank_bounds(now) -> tuple:
    """The constants of `window_rank` at `now`: the oldest open window's start, how far a closed window's rank is
    pushed back, and the rank of a conversation the customer never wrote in (the SQL page uses them too)."""
    far = timedelta(days=365 * 100)
    return now - timedelta(hours=settings.REPLY_WINDOW_HOURS), far, now + 2 * far


def window_rank():
    """Sort key for 'reply window closing soonest': open windows first, soonest to close first."""
    cutoff, far, never = window_rank_bounds(timezone.now())
    return Case(
        When(last_inbound_at__gte=cutoff, then=F("last_inbound_at")),
        When(last_inbound_at__isnull=False, then=ExpressionWrapper(F("last_inbound_at") + far, DateTimeField())),
        default=Value(never, output_field=DateTimeField()),
        output_field=DateTimeField(),
    )


def sla_rank_default(now):
    """The SLA rank of a conversation without a first-response deadline: after every real one."""
    return now + timedelta(days=365 * 100)


def sla_rank():
    """Sort key for 'SLA due first': the soonest (or most overdue) first-response deadline first, none last."""
    return Coalesce(F("sla__due_at"), Value(sla_rank_default(timezone.now()), output_field=DateTimeField()))


def teams_visible_to(user, *, inbox: int | None = None):
    """The teams of the inboxes the user sees (or of one of them)."""
    from inbox.automation.models import Team

    qs = Team.objects.filter(inbox__in=inboxes_visible_to(user))
    return qs.filter(inbox_id=inbox) if inbox else qs


def labels_visible_to(user, *, inbox: int | None = None) -> QuerySet[Label]:
    qs = Label.objects.filter(inbox__in=inboxes_visible_to(user)).select_related("inbox")
    return qs.filter(inbox_id=inbox) if inbox else qs


def canned_responses_for(user, *, inbox: int | None = None) -> QuerySet[CannedResponse]:
    """The inbox's shared responses and the user's own, of the inboxes the user sees."""
    qs = CannedResponse.objects.filter(inbox__in=inboxes_visible_to(user)).filter(Q(owner__isnull=True) | Q(owner=user))
    return qs.filter(inbox_id=inbox) if inbox else qs


def conversation_list(**filters):
    """The conversations of a list (`conversation_list_queryset`'s filters and rows), ready for DRF's cursor: on
    PostgreSQL the same page in plain SQL (inbox/pages.py, tested equal: the list's CPU and planning time)."""
    if connection.vendor == "postgresql":
        from inbox.pages import conversation_page_query

        return conversation_page_query(**filters)
    return conversation_list_queryset(**filters)


def conversation_list_queryset(
    *,
    user,
    status: str | None = None,
    assignee: str | None = None,
    inbox: int | None = None,
    q: str | None = None,
    label: str | None = None,
    kind: str | None = None,
    team: int | None = None,
) -> QuerySet:
    """The conversations of a list, as `LIST_VALUES` rows (dicts); the caller orders and pages them.

    The agent's inbox ids first (one small query), not a join on memberships: with the ids as constants
    PostgreSQL walks `conv_inbox_status_activity_id` for the newest conversations of those inboxes instead of the
    newest of every inbox, filtering out other teams' rows (19 ms → <1 ms at 100,000, bench/README.md)."""
    qs = Conversation.objects.all()
    if not user.is_superuser:
        qs = qs.filter(inbox_id__in=inbox_ids_visible_to(user))
    if status:
        qs = qs.filter(status=status)
    if assignee == "me":
        qs = qs.filter(assignee=user)
    elif assignee == "none":
        qs = qs.filter(assignee__isnull=True)
    elif assignee:
        qs = qs.filter(assignee_id=int(assignee))
    if inbox:
        qs = qs.filter(inbox_id=inbox)
    if kind:
        qs = qs.filter(kind=kind)
    if label:
        qs = qs.filter(
            pk__in=Subquery(
                Label.conversations.through.objects.filter(label__name__iexact=label).values("conversation_id")
            )
        )
    if team:
        qs = qs.filter(team_assignment__team_id=team)
    if q:
        matching_messages = Message.objects.filter(conversation=OuterRef("pk"), text__icontains=q)
        qs = qs.filter(
            Q(contact__display_name__icontains=q)
            | Q(contact__channel_user_id__icontains=q)
            | Q(pk__in=Subquery(matching_messages.values("conversation")))
        )
    return qs.annotate(**_list_annotations(), window_rank=window_rank(), sla_rank=sla_rank()).values(*LIST_VALUES)


def messages_visible_to(user) -> QuerySet[Message]:
    qs = Message.objects.all()
    if not user.is_superuser:
        qs = qs.filter(conversation__inbox__members=user)
    return qs


# The columns a thread shows (inbox/api/serializers.py MessageOut): not the raw provider payload, referral or
# keys, nor the author's password hash and dates.
THREAD_COLUMNS = (
    "id",
    "conversation_id",
    "direction",
    "type",
    "text",
    "media_url",
    "embed_url",
    "post_id",
    "reaction_emoji",
    "reaction_action",
    "quoted_provider_message_id",
    "provider_message_id",
    "status",
    "attempt",
    "sent_at",
    "queued_at",
    "accepted_at",
    "delivered_at",
    "seen_at",
    "failed_at",
    "provider_status",
    "error",
    "public_state",  # comments: hidden / deleted, the action under way, a reply by another user
    "action",
    "other_author",
    "conversation__id",  # the provider's per-message actions read the conversation's kind and provider
    "conversation__kind",
    "conversation__provider",
    "conversation__inbox_id",
    "author__id",
    "author__username",
    "author__first_name",
    "author__last_name",
)


# The values a thread shows (inbox/api/serializers.py `message_rows`, equal to MessageOut's declared fields), read
# with `.values()`: no model instances; the conversation's provider and kind come once from the view.
THREAD_VALUES = (
    *(column for column in THREAD_COLUMNS if not column.startswith(("conversation__", "author__"))),
    "author_id",
    "author__username",
    "author__first_name",
    "author__last_name",
    "quoted_message_id",
)


class ThreadConversation(NamedTuple):
    id: int
    provider: str
    kind: str


def thread_conversation(user, pk: int) -> ThreadConversation | None:
    """The conversation of a thread the user sees (what its messages' actions depend on), or None."""
    if not -(2**63) <= pk < 2**63:
        return None  # as the ORM answers an id no bigint can hold: not found
    if connection.vendor == "postgresql":
        from inbox.pages import visible_conversation_facts

        row = visible_conversation_facts(user, pk)
    else:
        row = conversations_visible_to(user).filter(pk=pk).values_list("pk", "provider", "kind").first()
    return ThreadConversation(*row) if row else None


def thread_page(conversation_id: int, *, type: str | None = None):
    """The messages of a thread (`thread_values`, of one `type` or all), ready for DRF's cursor: on PostgreSQL the
    same rows in plain SQL (inbox/pages.py, tested equal)."""
    if connection.vendor == "postgresql":
        from inbox.pages import message_page_query

        return message_page_query(conversation_id, type=type)
    messages = thread_values(conversation_id)
    return messages.filter(type=type) if type else messages


def thread_values(conversation: Conversation | int) -> QuerySet:
    """The messages of a thread as `THREAD_VALUES` rows (dicts); the caller orders and pages them."""
    return messages_of(conversation).values(*THREAD_VALUES)


def messages_of(conversation: Conversation | int) -> QuerySet[Message]:
    quoted = Message.objects.filter(
        conversation=conversation, provider_message_id=OuterRef("quoted_provider_message_id")
    )
    return (
        Message.objects.filter(conversation=conversation)
        .select_related("author", "conversation")
        .only(*THREAD_COLUMNS)
        .annotate(
            # Looked up only for the messages that quote one (a CASE evaluates its subquery lazily).
            quoted_message_id=Case(
                When(quoted_provider_message_id="", then=Value(None)),
                default=Subquery(quoted.values("pk")[:1]),
                output_field=IntegerField(),
            )
        )
    )


def conversions_of(conversation) -> QuerySet[Conversion]:
    return Conversion.objects.filter(conversation=conversation).select_related("author").order_by("-created_at", "-id")


def contacts_visible_to(user) -> QuerySet[Contact]:
    if user.is_superuser:
        return Contact.objects.all()
    return Contact.objects.filter(conversations__inbox__members=user).distinct()


def contact_search(*, user, q: str = "") -> QuerySet[Contact]:
    qs = contacts_visible_to(user)
    if q:
        qs = qs.filter(Q(display_name__icontains=q) | Q(channel_user_id__icontains=q))
    return qs
