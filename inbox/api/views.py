"""The agents' and integrations' REST API (one view per operation).

Visibility is decided by the selectors: a conversation, message or contact outside the user's
inboxes is simply not found (404), so ids do not leak.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from inbox import selectors, services
from inbox.api import serializers as out
from inbox.errors import ApplicationError
from inbox.models import Conversation, Message
from inbox.uploads import image_prepare


class SafeCursor(CursorPagination):
    """A cursor is decoded by us, but it comes from the client: a forged or stale one (`p=abc`, a bad offset)
    is a 400 `invalid_cursor` with the error shape, never a database conversion error (a 500)."""

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except (exceptions.NotFound, DjangoValidationError, ValueError, TypeError, OverflowError) as exc:
            if request.query_params.get(self.cursor_query_param) is None:
                raise
            message = "Invalid cursor: start again from the first page."
            raise ApplicationError("invalid_cursor", message, fields={"cursor": [message]}) from exc


class ConversationCursor(SafeCursor):
    page_size = 25
    max_page_size = 100
    page_size_query_param = "page_size"
    orderings = {
        "last_activity": ("-last_activity_at", "-id"),
        "window": ("window_rank", "id"),
        "sla": ("sla_rank", "id"),  # first-response SLA due first (inbox/automation/sla.py)
    }

    def get_ordering(self, request, queryset, view):
        return self.orderings[view.filters["ordering"]]


class MessageCursor(SafeCursor):
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"

    def get_ordering(self, request, queryset, view):
        return ("-sent_at", "-id") if view.filters["order"] == "desc" else ("sent_at", "id")


class ConversationFilters(serializers.Serializer):
    status = serializers.ChoiceField(choices=Conversation.Status.choices, required=False)
    assignee = serializers.RegexField(r"^(me|none|\d{1,18})$", required=False, help_text='"me", "none" or a user id')
    inbox = serializers.IntegerField(required=False, min_value=1, max_value=2**62)
    q = serializers.CharField(required=False, max_length=200, help_text="Contact name/id or message text")
    label = serializers.CharField(required=False, max_length=50, help_text="A label's name")
    team = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=2**62,
        help_text="A team's id (GET /api/v1/teams/): the conversations handed to it; 422 invalid_team for a team "
        "of an inbox the caller does not see (or not the `inbox` filter's)",
    )
    kind = serializers.ChoiceField(
        choices=Conversation.Kind.choices, required=False, help_text="message (DMs) or comment (comments on posts)"
    )
    ordering = serializers.ChoiceField(choices=list(ConversationCursor.orderings), default="last_activity")


class MessageFilters(serializers.Serializer):
    order = serializers.ChoiceField(choices=["asc", "desc"], default="asc", help_text="asc: oldest first")
    type = serializers.ChoiceField(
        choices=Message.Type.choices, required=False, help_text="Only this type, e.g. image (the attachments gallery)"
    )


_no_filters: dict[type, dict] = {}


def _parse_filters(serializer_class, request: Request) -> dict:
    # The declared names, not `serializer_class().fields` (a deep copy of every field, per request, only for them).
    names = serializer_class._declared_fields
    data = {k: v for k, v in request.query_params.items() if k in names}
    if not data:
        # The common request (the first page, or a cursor's next): no filter given, so only the defaults, the same
        # for every request; validated once per process instead of deep-copying every field per request.
        defaults = _no_filters.get(serializer_class)
        if defaults is None:
            params = serializer_class(data={})
            params.is_valid(raise_exception=True)
            defaults = _no_filters[serializer_class] = dict(params.validated_data)
        return dict(defaults)
    params = serializer_class(data=data)
    params.is_valid(raise_exception=True)
    return params.validated_data


@extend_schema(parameters=[ConversationFilters])
class ConversationListView(ListAPIView):
    serializer_class = out.ConversationOut
    pagination_class = ConversationCursor

    def get_queryset(self):
        self.filters = _parse_filters(ConversationFilters, self.request)
        if "team" in self.filters:
            teams = selectors.teams_visible_to(self.request.user, inbox=self.filters.get("inbox"))
            if not teams.filter(pk=self.filters["team"]).exists():  # another inbox's team, or none
                raise ApplicationError("invalid_team", "no such team", status=422, fields={"team": ["no such team"]})
        return selectors.conversation_list(
            user=self.request.user,
            status=self.filters.get("status"),
            assignee=self.filters.get("assignee"),
            inbox=self.filters.get("inbox"),
            q=self.filters.get("q"),
            label=self.filters.get("label"),
            kind=self.filters.get("kind"),
            team=self.filters.get("team"),
        )

    def list(self, request: Request, *args, **kwargs) -> Response:
        """A page of `.values()` rows shown by `conversation_rows`: the same payload as ConversationOut's
        declared fields, without a model instance per row (bench/README.md, issue 20)."""
        page = self.paginate_queryset(self.get_queryset())
        if page and "labels" in page[0]:  # the SQL page (PostgreSQL) reads them along
            labels = {row["id"]: row["labels"] for row in page}
        else:
            labels = selectors.label_names_of([row["id"] for row in page])
        return self.get_paginated_response(out.conversation_rows(page, labels=labels, now=timezone.now()))


def visible_conversation(request: Request, pk: int) -> Conversation:
    return get_object_or_404(selectors.with_list_annotations(selectors.conversations_visible_to(request.user)), pk=pk)


class ConversationDetailView(GenericAPIView):
    serializer_class = out.ConversationDetailOut

    def get(self, request: Request, pk: int) -> Response:
        return Response(self.get_serializer(visible_conversation(request, pk)).data)

    @extend_schema(request=out.ConversationChangeIn, responses=out.ConversationDetailOut)
    def patch(self, request: Request, pk: int) -> Response:
        """Set the conversation's labels (names of its inbox's labels; 422 for an unknown one)."""
        conversation = get_object_or_404(selectors.conversations_visible_to(request.user).only("pk"), pk=pk)
        data = out.ConversationChangeIn(data=request.data)
        data.is_valid(raise_exception=True)
        services.conversation_set_labels(
            conversation_id=conversation.pk, names=data.validated_data["labels"], actor=request.user
        )
        return Response(self.get_serializer(visible_conversation(request, pk)).data)


@extend_schema(parameters=[MessageFilters])
class MessageListView(ListAPIView):
    serializer_class = out.MessageOut
    pagination_class = MessageCursor

    def get_queryset(self):
        self.conversation = selectors.thread_conversation(self.request.user, self.kwargs["pk"])
        if self.conversation is None:
            raise Http404
        self.filters = _parse_filters(MessageFilters, self.request)
        return selectors.thread_page(self.conversation.id, type=self.filters.get("type"))

    def list(self, request: Request, *args, **kwargs) -> Response:
        """A page of `.values()` rows shown by `message_rows`: the same payload as MessageOut's declared fields,
        without a model instance per message (bench/README.md, issue 20)."""
        page = self.paginate_queryset(self.get_queryset())
        conversation = self.conversation
        rows = out.message_rows(page, provider=conversation.provider, conversation_kind=conversation.kind)
        return self.get_paginated_response(rows)

    @extend_schema(
        request={"application/json": out.ReplyIn, "multipart/form-data": out.ReplyIn},
        responses={201: out.MessageOut},
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=False,
                description="One key per composed reply (e.g. a UUID). The same key again, by the same agent on "
                "the same conversation, answers the first reply's 201 body and creates nothing. At most 200 "
                "characters.",
            )
        ],
    )
    def post(self, request: Request, pk: int) -> Response:
        """Queue a reply. 409 when the window is closed or the quota used; 422 for invalid input.

        Send an `Idempotency-Key` header so that a repeated request (a double press, a retry after a lost
        answer) does not send the reply twice."""
        conversation = get_object_or_404(selectors.conversations_visible_to(request.user).only("pk"), pk=pk)
        data = out.ReplyIn(data=request.data)
        data.is_valid(raise_exception=True)
        reply = data.validated_data
        media_url = reply["media_url"]
        # An upload is checked now and written by the service only once the reply passed every check.
        pending = image_prepare(reply["image"]) if reply.get("image") is not None else None
        if pending is not None:
            media_url = pending.url
        try:
            message = services.reply_queue(
                conversation_id=conversation.pk,
                author=request.user,
                type=reply["type"],
                text=reply["text"],
                media_url=media_url,
                post_id=reply["post_id"],
                quoted_message_id=reply["quoted_message_id"],
                callback_data=reply["callback_data"],
                idempotency_key=request.headers.get("Idempotency-Key", "").strip(),
                media_store=pending.store if pending is not None else None,
            )
        except Exception:
            if pending is not None:
                pending.discard()  # written, then the transaction failed (e.g. lost the idempotency race)
            raise
        if pending is not None and message.media_url != pending.url:
            pending.discard()  # a replayed Idempotency-Key answers the first reply, with the first file
        return Response(out.MessageOut(selectors.messages_of(message.conversation).get(pk=message.pk)).data, status=201)


class NoteCreateView(GenericAPIView):
    serializer_class = out.MessageOut

    @extend_schema(request=out.NoteIn, responses={201: out.MessageOut})
    def post(self, request: Request, pk: int) -> Response:
        """Add a private note to the thread: agents only, never sent, allowed when the reply window is closed.
        `@username` of an inbox member notifies them (a `note.mentioned` live event)."""
        conversation = get_object_or_404(selectors.conversations_visible_to(request.user).only("pk"), pk=pk)
        data = out.NoteIn(data=request.data)
        data.is_valid(raise_exception=True)
        note = services.note_add(conversation_id=conversation.pk, author=request.user, text=data.validated_data["text"])
        return Response(out.MessageOut(selectors.messages_of(note.conversation).get(pk=note.pk)).data, status=201)


class InboxMembersView(GenericAPIView):
    serializer_class = out.UserSummary

    @extend_schema(responses=out.UserSummary(many=True))
    def get(self, request: Request, pk: int) -> Response:
        """The agents a conversation of this inbox can be assigned to (active members), by name."""
        inbox = get_object_or_404(selectors.inboxes_visible_to(request.user), pk=pk)
        return Response(out.UserSummary(selectors.inbox_members(inbox), many=True).data)


class UnreadFilter(serializers.Serializer):
    status = serializers.ChoiceField(choices=Conversation.Status.choices, default=Conversation.Status.OPEN)


class UnreadCountsView(GenericAPIView):
    serializer_class = out.UnreadCountsOut

    @extend_schema(parameters=[UnreadFilter])
    def get(self, request: Request) -> Response:
        """Conversations with unread customer messages, per view (Mine, Unassigned, All) of one status."""
        filters = _parse_filters(UnreadFilter, request)
        return Response(out.UnreadCountsOut(selectors.unread_counts(user=request.user, status=filters["status"])).data)


class InboxFilter(serializers.Serializer):
    inbox = serializers.IntegerField(required=False, min_value=1, max_value=2**62)


class CannedFilters(InboxFilter):
    conversation = serializers.IntegerField(
        required=False, min_value=1, max_value=2**62, help_text="Fill in the variables for this conversation"
    )


def visible_inbox(request: Request, inbox_id: int):
    inbox = selectors.inboxes_visible_to(request.user).filter(pk=inbox_id).first()
    if inbox is None:
        raise ApplicationError("invalid_inbox", "no such inbox", status=422, fields={"inbox": ["no such inbox"]})
    return inbox


class LabelListView(GenericAPIView):
    serializer_class = out.LabelOut

    @extend_schema(parameters=[InboxFilter], responses=out.LabelOut(many=True))
    def get(self, request: Request) -> Response:
        """The labels of the caller's inboxes (or of one `inbox`), by name."""
        filters = _parse_filters(InboxFilter, request)
        return Response(
            out.LabelOut(selectors.labels_visible_to(request.user, inbox=filters.get("inbox")), many=True).data
        )

    @extend_schema(request=out.LabelIn, responses={201: out.LabelOut})
    def post(self, request: Request) -> Response:
        """Add a label to an inbox (409 when the name is taken, in any case)."""
        data = out.LabelIn(data=request.data)
        data.is_valid(raise_exception=True)
        inbox = visible_inbox(request, data.validated_data["inbox"])
        label = services.label_create(
            inbox_id=inbox.pk, name=data.validated_data["name"], color=data.validated_data["color"], actor=request.user
        )
        return Response(out.LabelOut(label).data, status=201)


class LabelDetailView(GenericAPIView):
    serializer_class = out.LabelOut

    @extend_schema(request=out.LabelChangeIn, responses=out.LabelOut)
    def patch(self, request: Request, pk: int) -> Response:
        """Rename or recolour a label."""
        label = get_object_or_404(selectors.labels_visible_to(request.user), pk=pk)
        data = out.LabelChangeIn(data=request.data)
        data.is_valid(raise_exception=True)
        label = services.label_update(label_id=label.pk, actor=request.user, **data.validated_data)
        return Response(out.LabelOut(label).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        """Delete a label (it leaves every conversation)."""
        label = get_object_or_404(selectors.labels_visible_to(request.user), pk=pk)
        services.label_delete(label_id=label.pk, actor=request.user)
        return Response(status=204)


class CannedResponseListView(GenericAPIView):
    serializer_class = out.CannedResponseOut

    @extend_schema(parameters=[CannedFilters], responses=out.CannedResponseOut(many=True))
    def get(self, request: Request) -> Response:
        """The inbox's shared responses and the caller's own; with `conversation`, each also `rendered` for it
        (and only those of its inbox)."""
        filters = _parse_filters(CannedFilters, request)
        inbox_id, variables = filters.get("inbox"), None
        if filters.get("conversation"):
            conversation = get_object_or_404(
                selectors.conversations_visible_to(request.user).select_related("contact"), pk=filters["conversation"]
            )
            inbox_id = conversation.inbox_id
            contact = conversation.contact
            variables = {
                "contact_name": contact.display_name or contact.channel_user_id,
                "agent_name": request.user.get_full_name() or request.user.get_username(),
            }
        canned = selectors.canned_responses_for(request.user, inbox=inbox_id)
        return Response(out.CannedResponseOut(canned, many=True, context={"variables": variables}).data)

    @extend_schema(request=out.CannedResponseIn, responses={201: out.CannedResponseOut})
    def post(self, request: Request) -> Response:
        """Save a response for the inbox (shared) or for me (`personal`); 409 when the short code is taken."""
        data = out.CannedResponseIn(data=request.data)
        data.is_valid(raise_exception=True)
        inbox = visible_inbox(request, data.validated_data["inbox"])
        canned = services.canned_create(
            inbox_id=inbox.pk,
            owner=request.user if data.validated_data["personal"] else None,
            short_code=data.validated_data["short_code"],
            text=data.validated_data["text"],
        )
        return Response(out.CannedResponseOut(canned).data, status=201)


class CannedResponseDetailView(GenericAPIView):
    serializer_class = out.CannedResponseOut

    @extend_schema(request=out.CannedResponseChangeIn, responses=out.CannedResponseOut)
    def patch(self, request: Request, pk: int) -> Response:
        canned = get_object_or_404(selectors.canned_responses_for(request.user), pk=pk)
        data = out.CannedResponseChangeIn(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(out.CannedResponseOut(services.canned_update(canned_id=canned.pk, **data.validated_data)).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        canned = get_object_or_404(selectors.canned_responses_for(request.user), pk=pk)
        services.canned_delete(canned_id=canned.pk)
        return Response(status=204)


class LimitsView(GenericAPIView):
    serializer_class = out.LimitsOut

    def get(self, request: Request) -> Response:
        """What the composer must respect: text lengths, image size and types, the reply window and quota."""
        return Response(out.LimitsOut(services.reply_limits()).data)


class MessageDetailView(GenericAPIView):
    serializer_class = out.MessageOut

    def get(self, request: Request, pk: int) -> Response:
        """One message, as in its conversation's thread (what a live `message.*` event points at)."""
        message = get_object_or_404(selectors.messages_visible_to(request.user).only("pk", "conversation_id"), pk=pk)
        return Response(self.get_serializer(selectors.messages_of(message.conversation).get(pk=message.pk)).data)


class MessageRetryView(GenericAPIView):
    serializer_class = out.MessageOut

    @extend_schema(request=None, responses=out.MessageOut)
    def post(self, request: Request, pk: int) -> Response:
        """Send a failed reply again as a new attempt (while the reply window is open)."""
        visible = selectors.messages_visible_to(request.user)
        message = get_object_or_404(visible.only("pk"), pk=pk)
        message = services.message_retry(message_id=message.pk, author=request.user)
        return Response(out.MessageOut(selectors.messages_of(message.conversation).get(pk=message.pk)).data)


class MessageActionView(GenericAPIView):
    """`POST /api/v1/messages/{id}/hide/`, `/unhide/`, `/delete/`: one URL per action, as `/retry/`, because each
    is a request to the provider (performed by a task; our row stays, its `public_state` follows), not a REST
    delete of the row."""

    serializer_class = out.MessageOut
    action_name = ""

    @extend_schema(request=None, responses={202: out.MessageOut})
    def post(self, request: Request, pk: int) -> Response:
        """Ask the provider to hide, show again or delete a public comment; answered 202 with the message, its
        `action` pending. The result arrives live (`message.updated`): `public_state`, or `action.error`."""
        visible = selectors.messages_visible_to(request.user)
        message = get_object_or_404(visible.only("pk"), pk=pk)
        message = services.message_action_request(message_id=message.pk, action=self.action_name, author=request.user)
        data = out.MessageOut(selectors.messages_of(message.conversation).get(pk=message.pk)).data
        return Response(data, status=202)


class _ConversationAction(GenericAPIView):
    serializer_class = out.ConversationDetailOut

    def respond(self, request: Request, pk: int) -> Response:
        return Response(self.get_serializer(visible_conversation(request, pk)).data)

    def check(self, request: Request, pk: int) -> Conversation:
        return get_object_or_404(selectors.conversations_visible_to(request.user).only("pk", "inbox_id"), pk=pk)


class AssignView(_ConversationAction):
    @extend_schema(request=out.AssignIn, responses=out.ConversationDetailOut)
    def post(self, request: Request, pk: int) -> Response:
        conversation = self.check(request, pk)
        data = out.AssignIn(data=request.data)
        data.is_valid(raise_exception=True)
        value = data.validated_data["assignee"]
        user_model = get_user_model()
        if value == "me":
            assignee = request.user
        elif value.isdigit() and len(value) <= 18:
            assignee = user_model.objects.filter(pk=int(value)).first()
        else:
            assignee = None
        services.conversation_assign(conversation_id=conversation.pk, assignee=assignee, actor=request.user)
        return self.respond(request, pk)


class UnassignView(_ConversationAction):
    @extend_schema(request=None, responses=out.ConversationDetailOut)
    def post(self, request: Request, pk: int) -> Response:
        services.conversation_unassign(conversation_id=self.check(request, pk).pk, actor=request.user)
        return self.respond(request, pk)


class ResolveView(_ConversationAction):
    @extend_schema(request=None, responses=out.ConversationDetailOut)
    def post(self, request: Request, pk: int) -> Response:
        services.conversation_set_status(
            conversation_id=self.check(request, pk).pk, status=Conversation.Status.RESOLVED, actor=request.user
        )
        return self.respond(request, pk)


class ReopenView(_ConversationAction):
    @extend_schema(request=None, responses=out.ConversationDetailOut)
    def post(self, request: Request, pk: int) -> Response:
        services.conversation_set_status(
            conversation_id=self.check(request, pk).pk, status=Conversation.Status.OPEN, actor=request.user
        )
        return self.respond(request, pk)


class SnoozeView(_ConversationAction):
    @extend_schema(request=out.SnoozeIn, responses=out.ConversationDetailOut)
    def post(self, request: Request, pk: int) -> Response:
        """Set aside as pending until `until`: it reopens then, or as soon as the customer writes."""
        conversation = self.check(request, pk)
        data = out.SnoozeIn(data=request.data)
        data.is_valid(raise_exception=True)
        services.conversation_snooze(
            conversation_id=conversation.pk, until=data.validated_data["until"], actor=request.user
        )
        return self.respond(request, pk)


class PriorityView(_ConversationAction):
    @extend_schema(request=out.PriorityIn, responses=out.ConversationDetailOut)
    def post(self, request: Request, pk: int) -> Response:
        conversation = self.check(request, pk)
        data = out.PriorityIn(data=request.data)
        data.is_valid(raise_exception=True)
        services.conversation_set_priority(
            conversation_id=conversation.pk, priority=data.validated_data["priority"], actor=request.user
        )
        return self.respond(request, pk)


class ReadView(_ConversationAction):
    @extend_schema(request=None, responses=out.ConversationDetailOut)
    def post(self, request: Request, pk: int) -> Response:
        services.conversation_mark_read(conversation_id=self.check(request, pk).pk, actor=request.user)
        return self.respond(request, pk)


class TypingView(GenericAPIView):
    serializer_class = out.TypingOut

    @extend_schema(request=None, responses={202: out.TypingOut})
    def post(self, request: Request, pk: int) -> Response:
        """The agent is typing: show the user a typing indicator (throttled; 409 when the window is closed)."""
        conversation = get_object_or_404(selectors.conversations_visible_to(request.user).only("pk"), pk=pk)
        queued = services.conversation_typing(conversation_id=conversation.pk, actor=request.user)
        return Response(out.TypingOut({"queued": queued}).data, status=202)


class ConversionListView(GenericAPIView):
    serializer_class = out.ConversionOut

    @extend_schema(responses=out.ConversionOut(many=True))
    def get(self, request: Request, pk: int) -> Response:
        """Ads conversions reported on the conversation, newest first."""
        conversation = get_object_or_404(selectors.conversations_visible_to(request.user).only("pk"), pk=pk)
        return Response(out.ConversionOut(selectors.conversions_of(conversation), many=True).data)

    @extend_schema(request=out.ConversionIn, responses={202: out.ConversionOut})
    def post(self, request: Request, pk: int) -> Response:
        """Report a Direct Messaging Ads conversion (sent in the background; 409 `not_from_ad` unless the
        conversation came from an ad; 422 for invalid input)."""
        conversation = get_object_or_404(selectors.conversations_visible_to(request.user).only("pk"), pk=pk)
        data = out.ConversionIn(data=request.data)
        data.is_valid(raise_exception=True)
        conversion = services.conversion_report(
            conversation_id=conversation.pk, author=request.user, **data.validated_data
        )
        return Response(out.ConversionOut(conversion).data, status=202)


class ContactCursor(SafeCursor):
    page_size = 50
    ordering = ("-id",)


class ContactFilters(serializers.Serializer):
    q = serializers.CharField(required=False, max_length=200, help_text="Name or TikTok user id")


@extend_schema(parameters=[ContactFilters])
class ContactListView(ListAPIView):
    serializer_class = out.ContactOut
    pagination_class = ContactCursor

    def get_queryset(self):
        filters = _parse_filters(ContactFilters, self.request)
        return selectors.contact_search(user=self.request.user, q=filters.get("q", ""))


class ContactDetailView(GenericAPIView):
    serializer_class = out.ContactDetailOut

    def get(self, request: Request, pk: int) -> Response:
        contact = get_object_or_404(selectors.contacts_visible_to(request.user), pk=pk)
        conversations = (
            selectors.conversations_visible_to(request.user)
            .filter(contact=contact)
            .select_related("inbox")
            .order_by("-last_activity_at")
        )
        return Response(self.get_serializer(contact, context={"conversations": conversations}).data)

    @extend_schema(request=out.ContactChangeIn, responses=out.ContactDetailOut)
    def patch(self, request: Request, pk: int) -> Response:
        """Edit the contact: name, email, phone, notes, custom attributes (only the fields sent change)."""
        contact = get_object_or_404(selectors.contacts_visible_to(request.user), pk=pk)
        data = out.ContactChangeIn(data=request.data)
        data.is_valid(raise_exception=True)
        services.contact_update(contact_id=contact.pk, actor=request.user, **data.validated_data)
        return self.get(request, pk)
