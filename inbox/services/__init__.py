"""Writes of the contact center, by topic. Views, serializers, consumers and tasks call these, never .save().

The names below are re-exported so callers can write `from inbox.services import reply_queue`.
"""

from inbox.services.common import (
    STATUS_RANK,
    StatusOutcome,
    inbox_get_or_create,
    message_version,
    new_provider_message_id,
)
from inbox.services.content import content_changed
from inbox.services.conversations import (
    TYPING_THROTTLE_SECONDS,
    conversation_assign,
    conversation_mark_read,
    conversation_set_priority,
    conversation_set_status,
    conversation_set_team,
    conversation_typing,
    conversation_unassign,
    typing_throttle_key,
)
from inbox.services.conversions import conversion_report, conversion_result_record
from inbox.services.inbound import conversation_take_inbound, inbound_message, message_receive, messages_receive
from inbox.services.replies import (
    CALLBACK_DATA_MAX_CHARS,
    MEDIA_URL_MAX_CHARS,
    POST_ID_MAX_CHARS,
    REPLY_TEXT_MAX_CHARS,
    REPLY_TYPES,
    message_retry,
    reply_queue,
)
from inbox.services.statuses import (
    message_send_failed,
    message_status_apply,
    message_statuses_apply,
    messages_send_failed,
)

__all__ = [
    "CALLBACK_DATA_MAX_CHARS",
    "MEDIA_URL_MAX_CHARS",
    "POST_ID_MAX_CHARS",
    "REPLY_TEXT_MAX_CHARS",
    "REPLY_TYPES",
    "STATUS_RANK",
    "TYPING_THROTTLE_SECONDS",
    "StatusOutcome",
    "content_changed",
    "conversation_assign",
    "conversation_mark_read",
    "conversation_set_priority",
    "conversation_set_status",
    "conversation_set_team",
    "conversation_take_inbound",
    "conversation_typing",
    "conversation_unassign",
    "conversion_report",
    "conversion_result_record",
    "inbound_message",
    "inbox_get_or_create",
    "message_receive",
    "message_retry",
    "message_send_failed",
    "message_status_apply",
    "message_statuses_apply",
    "messages_send_failed",
    "message_version",
    "messages_receive",
    "new_provider_message_id",
    "reply_queue",
    "typing_throttle_key",
]
from inbox.services.notes import mentioned_usernames, note_add  # noqa: E402
from inbox.services.replies import NOTE_TEXT_MAX_CHARS, reply_blocked, reply_limits  # noqa: E402

__all__ += ["NOTE_TEXT_MAX_CHARS", "mentioned_usernames", "note_add", "reply_blocked", "reply_limits"]
from inbox.services.conversations import (  # noqa: E402
    conversation_snooze,
    conversations_connection_changed,
    conversations_wake_due,
)

__all__ += ["conversation_snooze", "conversations_connection_changed", "conversations_wake_due"]
from inbox.services.labels import (  # noqa: E402
    conversation_set_labels,
    label_create,
    label_delete,
    label_update,
)

__all__ += ["conversation_set_labels", "label_create", "label_delete", "label_update"]
from inbox.services.canned import canned_create, canned_delete, canned_render, canned_update  # noqa: E402

__all__ += ["canned_create", "canned_delete", "canned_render", "canned_update"]
from inbox.services.contacts import contact_update  # noqa: E402

__all__ += ["contact_update"]
from inbox.services.message_actions import (  # noqa: E402
    message_action_request,
    message_action_result,
    message_actions_allowed,
    message_actions_allowed_for,
    messages_public_state_apply,
)

__all__ += [
    "message_action_request",
    "message_action_result",
    "message_actions_allowed",
    "message_actions_allowed_for",
    "messages_public_state_apply",
]
from inbox.services.subjects import conversation_subjects_update  # noqa: E402

__all__ += ["conversation_subjects_update"]
