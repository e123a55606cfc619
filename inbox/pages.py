"""The conversation list's and the thread's pages in plain SQL, on PostgreSQL (issue 20, bench/README.md "Lists and
threads").

`selectors.conversation_list_queryset` and `selectors.thread_values` are the definition (the ORM, and the path on
SQLite); this is the same page for the hot path: the same filters, sort keys and rows, tested equal
(tests/inbox/test_list_pages.py). Two costs of the ORM query are gone: building and compiling the queryset per
request (~8 ms of CPU for the list: here the SQL is a few string joins) and PostgreSQL planning the list's join of
seven relations (3-9 ms warm, more under load: here the page is read from the conversation and its SLA row alone,
and what a row shows of its contact, assignee, inbox, team and labels comes from small correlated subqueries,
planned separately and run only for the page's rows; the thread's author likewise).

DRF's CursorPagination drives it as it would a queryset: `order_by(...)`, `filter(<first ordering key>__lt/__gt=
position)` and a slice, so cursors, offsets and links are DRF's own.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, replace
from typing import ClassVar

from django.contrib.auth import get_user_model
from django.db import connection, models
from django.utils import timezone

from inbox import selectors
from inbox.db import times_in_c
from inbox.models import Contact, Conversation, Inbox, Label, Message


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


@functools.cache
def _tables() -> dict[str, str]:
    """The quoted table names, once per process (the filters' statements are built per request)."""
    from inbox.automation.models import ConversationSla, ConversationTeam, Team

    return {
        "conversation": _table(Conversation),
        "contact": _table(Contact),
        "inbox": _table(Inbox),
        "user": _table(get_user_model()),
        "team": _table(Team),
        "conversation_team": _table(ConversationTeam),
        "sla": _table(ConversationSla),
        "label": _table(Label),
        "conversation_labels": _table(Label.conversations.through),
        "members": _table(Inbox.members.through),
        "message": _table(Message),
    }


# The reply quota's count: `selectors.quota_replies` (outbound, queued since the user's last message, not failed).
_REPLIES_USED = (
    'COALESCE((SELECT COUNT(m."id") FROM {message} m WHERE m."conversation_id" = c."id" '
    'AND m."direction" = \'out\' AND m."queued_at" >= c."last_inbound_at" AND NOT (m."status" = \'failed\')), 0)'
)
# `selectors.window_rank`: open windows first, soonest to close first; closed ones after, then none.
_WINDOW_RANK = (
    'CASE WHEN c."last_inbound_at" >= %s THEN c."last_inbound_at" '
    'WHEN c."last_inbound_at" IS NOT NULL THEN c."last_inbound_at" + %s ELSE %s END'
)
_SLA_RANK = 'COALESCE(s."due_at", %s)'  # `selectors.sla_rank`

# The selected values, in order, under `selectors.LIST_VALUES`' names (`conversation_rows` reads them).
_COLUMNS = (
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
    "contact_id",
    "assignee_id",
)
_CONVERSATION_FROM = " FROM {conversation} c"
_MEMBER_OF_ANY = 'c."inbox_id" = ANY(%s::bigint[])'
_SELECT = (
    "SELECT "  # noqa: S608 - our SQL: fixed names, values as parameters
    + ", ".join(f'c."{column}"' for column in _COLUMNS)
    + ', (SELECT i."name" FROM {inbox} i WHERE i."id" = c."inbox_id")'
    + ', (SELECT ARRAY[ct."endpoint_id", ct."channel_user_id", ct."display_name"] FROM {contact} ct '
    'WHERE ct."id" = c."contact_id")'
    + ', (SELECT ARRAY[u."username", u."first_name", u."last_name"] FROM {user} u WHERE u."id" = c."assignee_id")'
    + ', (SELECT ARRAY[t."id"::text, t."name"] FROM {conversation_team} ta INNER JOIN {team} t '
    'ON t."id" = ta."team_id" WHERE ta."conversation_id" = c."id")'
    + ', ARRAY(SELECT l."name" FROM {conversation_labels} cl INNER JOIN {label} l ON l."id" = cl."label_id" '
    'WHERE cl."conversation_id" = c."id" ORDER BY l."name")'
    + ", "
    + _REPLIES_USED
    + ', s."due_at", '
    + _WINDOW_RANK
    + ' AS "window_rank", '
    + _SLA_RANK
    + ' AS "sla_rank"'
    + _CONVERSATION_FROM
    + ' LEFT OUTER JOIN {sla} s ON s."conversation_id" = c."id"'
)
_sql_cache: dict[str, str] = {}


def _sql(name: str, template: str) -> str:
    """A statement with its table names filled in, once per process."""
    sql = _sql_cache.get(name)
    if sql is None:
        sql = _sql_cache[name] = template.format(**_tables())
    return sql


def inbox_ids_of(user) -> list[int]:
    """The inboxes an agent is a member of (`selectors.inbox_ids_visible_to` for a non-admin), in one statement;
    for an admin, every inbox."""
    with connection.cursor() as cursor:
        if user.is_superuser:
            cursor.execute(_sql("inboxes", 'SELECT "id" FROM {inbox} ORDER BY "id"'))
        else:
            cursor.execute(_sql("members", 'SELECT "inbox_id" FROM {members} WHERE "user_id" = %s'), [user.pk])
        return [row[0] for row in cursor.fetchall()]


@dataclass(frozen=True)
class _PageQuery:
    """What DRF's CursorPagination asks of a queryset: `order_by`, `filter(<sort key>__lt / __gt=position)` and a
    slice (or iterating, every row). Subclasses say their sort keys and how a page is read."""

    where: tuple[str, ...]
    params: tuple
    ordering: tuple[str, ...] = ()
    position: tuple[str, str, object] | None = None  # (sort key, "lt" / "gt", value)

    sort_keys: ClassVar[dict[str, str | None]] = {}  # name → SQL (None: a selected alias, see `_sort_key`)

    def order_by(self, *fields: str):
        for field in fields:
            if field.lstrip("-") not in self.sort_keys:
                raise ValueError(f"cannot order by {field}")
        return replace(self, ordering=fields)

    def filter(self, **lookups):
        [(lookup, value)] = lookups.items()
        key, _, op = lookup.rpartition("__")
        if key not in self.sort_keys or op not in ("lt", "gt"):
            raise ValueError(f"cannot filter by {lookup}")
        # As the ORM prepares a value compared to a DateTimeField (a cursor's position is a string from the
        # client): a malformed one raises ValidationError, which the paginator answers 400.
        field = models.BigIntegerField() if key == "id" else models.DateTimeField()
        return replace(self, position=(key, op, field.get_prep_value(value)))

    def _sort_key(self, key: str, params: list) -> str:
        return self.sort_keys[key]

    def __iter__(self):
        return iter(self[:])

    def __getitem__(self, page: slice) -> list[dict]:
        if not isinstance(page, slice) or page.step is not None:
            raise TypeError("a page is a slice [start:stop]")
        start = page.start or 0
        where, where_params = list(self.where), list(self.params)
        if self.position is not None:
            key, op, value = self.position
            where.append(f"{self._sort_key(key, where_params)} {'<' if op == 'lt' else '>'} %s")
            where_params.append(value)
        order = []
        for field in self.ordering:
            key = field.lstrip("-")
            sql = f'"{key}"' if self.sort_keys[key] is None else self.sort_keys[key]
            order.append(sql + (" DESC" if field.startswith("-") else " ASC"))
        sql, params = self._statement(where, where_params, order, start, page.stop)
        with connection.cursor() as cursor:
            times_in_c(cursor)
            cursor.execute(sql, params)
            return [self._row(values) for values in cursor.fetchall()]

    def _statement(self, where: list[str], where_params: list, order: list[str], start: int, stop) -> tuple[str, list]:
        select, select_params = self._select()
        sql = select
        if where:
            sql += " WHERE " + " AND ".join(where)
        if order:
            sql += " ORDER BY " + ", ".join(order)
        if stop is not None:
            sql += f" LIMIT {int(stop) - int(start)}"
        if start:
            sql += f" OFFSET {int(start)}"
        return sql, select_params + where_params

    def _select(self) -> tuple[str, list]:
        raise NotImplementedError

    def _row(self, values: tuple) -> dict:
        raise NotImplementedError


@dataclass(frozen=True)
class ConversationPageQuery(_PageQuery):
    """The conversations of a list (`selectors.conversation_list`'s filters), as `LIST_VALUES` rows with their
    `labels`."""

    now: object = None
    inboxes: tuple[int, ...] = ()  # an agent of several inboxes: read each inbox's page by its own index, merged
    statuses: tuple[str, ...] = ()  # no status asked for: read each status's page by its own index, merged
    sort_keys: ClassVar[dict[str, str | None]] = {
        "last_activity_at": 'c."last_activity_at"',
        "id": 'c."id"',
        "window_rank": None,
        "sla_rank": None,
    }

    def _statement(self, where: list[str], where_params: list, order: list[str], start: int, stop) -> tuple[str, list]:
        by_activity = [field.lstrip("-") for field in self.ordering] == ["last_activity_at", "id"]
        # `inbox_id = ANY(array)` cannot take the order from the (inbox, status, activity, id) index, nor can a
        # list of every status: PostgreSQL would walk the index of every inbox or status and sort, or filter. Instead
        # each (inbox, status) the list covers gives its first `stop` rows by that index (the same conditions
        # inside), and the page is the first of those, in the same order.
        # The membership's `= ANY(...)` is not repeated in the branches (each is one of its inboxes): beside it the
        # index scan loses its order. It is the first condition, with the first parameter (`conversation_list`).
        by_inbox = bool(self.inboxes) and bool(where) and where[0] == _MEMBER_OF_ANY
        if not (by_activity and stop is not None and (by_inbox or self.statuses)):
            return super()._statement(where, where_params, order, start, stop)
        if by_inbox:
            where, where_params = where[1:], where_params[1:]
        select, select_params = self._select()
        head, tail = select.rsplit(_sql("conversation-from", _CONVERSATION_FROM), 1)
        # One branch per inbox and status, each a constant (a value from a LATERAL list is not: the index would give
        # no order).
        dimensions = [('c."inbox_id" = %s', self.inboxes)] if by_inbox else []
        if self.statuses:
            dimensions.append(('c."status" = %s', self.statuses))
        branch = (
            _sql("conversation-branch", "SELECT c.* FROM {conversation} c WHERE ")  # noqa: S608
            + " AND ".join([condition for condition, _ in dimensions] + where)
            + " ORDER BY "
            + ", ".join(order)
            + f" LIMIT {int(stop)}"
        )
        branch_keys = list(itertools.product(*(values for _, values in dimensions)))
        branches = " UNION ALL ".join(f"({branch})" for _ in branch_keys)
        sql = f"{head} FROM ({branches}) c {tail}"
        sql += " ORDER BY " + ", ".join(order) + f" LIMIT {int(stop) - int(start)}"
        if start:
            sql += f" OFFSET {int(start)}"
        params = list(select_params)
        for values in branch_keys:
            params += [*values, *where_params]
        return sql, params

    def _sort_key(self, key: str, params: list) -> str:
        if key == "window_rank":
            params.extend(_window_rank_params(self.now))
            return _WINDOW_RANK
        if key == "sla_rank":
            params.append(_sla_rank_default(self.now))
            return _SLA_RANK
        return self.sort_keys[key]

    def _select(self) -> tuple[str, list]:
        return _sql("page", _SELECT), [*_window_rank_params(self.now), _sla_rank_default(self.now)]

    def _row(self, values: tuple) -> dict:
        return _row(values)


def _window_rank_params(now) -> list:
    from inbox import selectors

    return list(selectors.window_rank_bounds(now))


def _sla_rank_default(now):
    from inbox import selectors

    return selectors.sla_rank_default(now)


_subject = Conversation._meta.get_field("subject")
_referral = Conversation._meta.get_field("referral")


def _json(field, value):
    """A JSON column's value as the field reads it; the empty object most rows hold without a decoder's call."""
    if value == "{}":
        return {}
    return field.from_db_value(value, None, connection)


def _row(values: tuple) -> dict:
    row = dict(zip(_COLUMNS, values[: len(_COLUMNS)], strict=True))
    inbox_name, contact, assignee, team, labels, replies_used, due_at, window_rank, sla_rank = values[len(_COLUMNS) :]
    row["subject"] = _json(_subject, row["subject"])
    row["referral"] = _json(_referral, row["referral"])
    row["inbox__name"] = inbox_name
    row["contact__endpoint_id"], row["contact__channel_user_id"], row["contact__display_name"] = contact
    row["assignee__username"], row["assignee__first_name"], row["assignee__last_name"] = assignee or (None,) * 3
    row["team_assignment__team_id"], row["team_assignment__team__name"] = (
        (int(team[0]), team[1]) if team else (None, None)
    )
    row["replies_used"] = replies_used
    row["first_response_due_at"] = due_at
    row["window_rank"] = window_rank
    row["sla_rank"] = sla_rank
    row["labels"] = labels
    return row


def conversation_page_query(
    *,
    user,
    status: str | None = None,
    assignee: str | None = None,
    inbox: int | None = None,
    q: str | None = None,
    label: str | None = None,
    kind: str | None = None,
    team: int | None = None,
) -> ConversationPageQuery:
    """`selectors.conversation_list_queryset`'s filters in SQL (the same conditions; tested equal)."""
    t = _tables()
    where: list[str] = []
    params: list = []
    inboxes: tuple[int, ...] = ()
    # An admin sees every inbox, read as an agent of all of them is: each inbox's page by its own (inbox, activity)
    # index, merged. So no index of the activity alone is needed, one entry fewer for every inbound message to write
    # (bench/README.md "Set-based intake", eighth session). Asked for one inbox, the admin reads just that one.
    if not (user.is_superuser and inbox):
        member_of = inbox_ids_of(user)
        if len(member_of) == 1:
            # One inbox (the usual agent): a plain equality, so the (inbox, activity) index gives the page's order.
            # With `= ANY(array)` PostgreSQL cannot take the order from that index and walked the activity index
            # of every inbox instead, filtering out the others' newer conversations (37,121 of them, 11 ms, in the
            # seventh session's full bench run).
            where.append('c."inbox_id" = %s')
            params.append(member_of[0])
        else:
            where.append(_MEMBER_OF_ANY)
            params.append(member_of)
            inboxes = tuple(member_of)
    statuses: tuple[str, ...] = ()
    if status:
        where.append('c."status" = %s')
        params.append(status)
    else:
        statuses = tuple(Conversation.Status.values)
    if assignee == "me":
        where.append('c."assignee_id" = %s')
        params.append(user.pk)
    elif assignee == "none":
        where.append('c."assignee_id" IS NULL')
    elif assignee:
        where.append('c."assignee_id" = %s')
        params.append(int(assignee))
    if inbox:
        where.append('c."inbox_id" = %s')
        params.append(inbox)
    if kind:
        where.append('c."kind" = %s')
        params.append(kind)
    if label:
        where.append(
            f'c."id" IN (SELECT cl."conversation_id" FROM {t["conversation_labels"]} cl INNER JOIN {t["label"]} l '  # noqa: S608
            'ON l."id" = cl."label_id" WHERE UPPER(l."name"::text) = UPPER(%s))'
        )
        params.append(connection.ops.prep_for_iexact_query(label))
    if team:
        where.append(
            f'EXISTS (SELECT 1 FROM {t["conversation_team"]} ta WHERE ta."conversation_id" = c."id" '  # noqa: S608
            'AND ta."team_id" = %s)'
        )
        params.append(team)
    if q:
        pattern = f"%{connection.ops.prep_for_like_query(q)}%"
        where.append(
            f'(EXISTS (SELECT 1 FROM {t["contact"]} ct WHERE ct."id" = c."contact_id" AND '  # noqa: S608
            '(UPPER(ct."display_name"::text) LIKE UPPER(%s) OR UPPER(ct."channel_user_id"::text) LIKE UPPER(%s))) '
            f'OR c."id" IN (SELECT m."conversation_id" FROM {t["message"]} m WHERE m."conversation_id" = c."id" '
            'AND UPPER(m."text"::text) LIKE UPPER(%s)))'
        )
        params.extend([pattern, pattern, pattern])
    return ConversationPageQuery(
        where=tuple(where), params=tuple(params), now=timezone.now(), inboxes=inboxes, statuses=statuses
    )


# The thread: `selectors.THREAD_VALUES` (MessageOut's columns) of one conversation, its author's names and the
# quoted message's id (looked up only for a message that quotes one), from the message table alone.
# The message table's own columns of THREAD_COLUMNS (the related ones are read by the statement's subqueries).
_MESSAGE_COLUMNS = (*(column for column in selectors.THREAD_COLUMNS if "__" not in column), "author_id")
_MESSAGE_JSON = {name: Message._meta.get_field(name) for name in ("provider_status", "error", "action")}
_THREAD_SELECT = (
    "SELECT "  # noqa: S608 - our SQL: fixed names, values as parameters
    + ", ".join(f'm."{column}"' for column in _MESSAGE_COLUMNS)
    + ', (SELECT ARRAY[u."username", u."first_name", u."last_name"] FROM {user} u WHERE u."id" = m."author_id")'
    + ', CASE WHEN m."quoted_provider_message_id" = \'\' THEN NULL ELSE (SELECT q."id" FROM {message} q '
    'WHERE q."conversation_id" = m."conversation_id" AND q."provider_message_id" = m."quoted_provider_message_id" '
    "LIMIT 1) END FROM {message} m"
)


def visible_conversation_facts(user, pk: int) -> tuple[int, str, str] | None:
    """(id, provider, kind) of a conversation the user sees (`selectors.conversations_visible_to`), or None."""
    sql = 'SELECT c."id", c."provider", c."kind" FROM {conversation} c WHERE c."id" = %s'
    params = [pk]
    if not user.is_superuser:
        sql += ' AND c."inbox_id" IN (SELECT mb."inbox_id" FROM {members} mb WHERE mb."user_id" = %s)'
        params.append(user.pk)
    with connection.cursor() as cursor:
        cursor.execute(_sql("visible" if user.is_superuser else "visible-member", sql), params)
        return cursor.fetchone()


@dataclass(frozen=True)
class MessagePageQuery(_PageQuery):
    """The messages of a thread (`selectors.thread_values`), as `THREAD_VALUES` rows."""

    sort_keys: ClassVar[dict[str, str | None]] = {"sent_at": 'm."sent_at"', "id": 'm."id"'}

    def _select(self) -> tuple[str, list]:
        return _sql("thread", _THREAD_SELECT), []

    def _row(self, values: tuple) -> dict:
        row = dict(zip(_MESSAGE_COLUMNS, values[: len(_MESSAGE_COLUMNS)], strict=True))
        author, quoted = values[len(_MESSAGE_COLUMNS) :]
        for name, field in _MESSAGE_JSON.items():
            row[name] = _json(field, row[name])
        row["author__username"], row["author__first_name"], row["author__last_name"] = author or (None,) * 3
        row["quoted_message_id"] = quoted
        return row


def message_page_query(conversation_id: int, *, type: str | None = None) -> MessagePageQuery:
    """`selectors.thread_values` (and the view's `type` filter) in SQL; tested equal."""
    where, params = ['m."conversation_id" = %s'], [conversation_id]
    if type:
        where.append('m."type" = %s')
        params.append(type)
    return MessagePageQuery(where=tuple(where), params=tuple(params))
