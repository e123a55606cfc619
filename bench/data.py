"""Bench fixtures: the account, inboxes and agents, and bulk data (COPY on PostgreSQL), repeatable (fixed seed).

Runs in the orchestrator's process against the bench database (Django set up with the stack's settings).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection, models, transaction
from django.utils import timezone

SEED = 20260101
BUSINESS_ID = "bench-business"
SECRET_HEADER = "X-Bench-Secret"


@dataclass
class Fixtures:
    token: str  # webhook token
    secret: str  # static secret header value
    inbox_id: int
    agent_token: str  # REST API token of agent 0
    session_keys: list[str]
    reads_inbox_id: int = 0
    reads_token: str = ""


def setup_base(*, sandbox_url: str, agents: int) -> Fixtures:
    from rest_framework.authtoken.models import Token

    from inbox.models import Inbox
    from tiktok_channel.models import InfobipAccount, TikTokSender

    secret = "bench-" + "s" * 32
    with transaction.atomic():
        inbox = Inbox.objects.create(name="Bench")
        account = InfobipAccount.objects.create(
            name="Bench (sandbox)",
            base_url=sandbox_url,
            api_key="bench-api-key",
            webhook_auth=InfobipAccount.AuthMode.HEADER,
            signature_header=SECRET_HEADER,
            webhook_secret=secret,
        )
        TikTokSender.objects.create(account=account, business_account_id=BUSINESS_ID, inbox=inbox)
        User = get_user_model()
        users = User.objects.bulk_create(
            [User(username=f"bench-agent-{i}", password="!", is_active=True) for i in range(agents)]
        )
        inbox.members.add(*users)
        token = Token.objects.create(user=users[0])
        session_keys = [session_for(user) for user in users]
    return Fixtures(
        token=account.webhook_token,
        secret=secret,
        inbox_id=inbox.pk,
        agent_token=token.key,
        session_keys=session_keys,
    )


def session_for(user) -> str:
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


# --- bulk rows ---------------------------------------------------------------------------------------


def _columns(model: type[models.Model]) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields]


def _defaults(model: type[models.Model], now) -> dict[str, object]:
    values = {}
    for f in _columns(model):
        default = f.get_default()
        if default is None and not f.null and isinstance(f, models.DateTimeField):
            default = now
        values[f.attname] = default
    return values


def _cell(value):
    return json.dumps(value) if isinstance(value, dict | list) else value


def bulk_insert(model: type[models.Model], rows: Iterable[dict], *, now) -> int:
    """Insert rows (dicts of attname → value, ids included) with COPY (PostgreSQL) or executemany."""
    fields = _columns(model)
    defaults = _defaults(model, now)
    names = [f.column for f in fields]
    table = model._meta.db_table
    count = 0

    def tuples() -> Iterator[tuple]:
        nonlocal count
        for row in rows:
            count += 1
            yield tuple(_cell(row.get(f.attname, defaults[f.attname])) for f in fields)

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            columns = ", ".join(f'"{n}"' for n in names)
            with cursor.cursor.copy(f'COPY "{table}" ({columns}) FROM STDIN') as copy:
                for values in tuples():
                    copy.write_row(values)
        else:
            placeholders = ", ".join(["%s"] * len(names))
            columns = ", ".join(f'"{n}"' for n in names)
            insert = f'INSERT INTO "{table}" ({columns}) VALUES ({placeholders})'  # noqa: S608 - our names
            batch: list[tuple] = []
            for values in tuples():
                batch.append(values)
                if len(batch) >= 5000:
                    cursor.executemany(insert, batch)
                    batch.clear()
            if batch:
                cursor.executemany(insert, batch)
    return count


def _new_ids(model: type[models.Model], n: int) -> list[int]:
    """`n` ids nobody else will use: the web workers and the Celery worker may be inserting meanwhile."""
    if connection.vendor != "postgresql":
        first = (model.objects.aggregate(m=models.Max("pk"))["m"] or 0) + 1
        return list(range(first, first + n))
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [f'"{table}"', n]
        )
        return [row[0] for row in cursor.fetchall()]


def conversations_with_messages(
    *, inbox_id: int, conversations: int, messages_per: int, prefix: str, outbound_status: str = "accepted"
) -> dict[str, object]:
    """`conversations` contacts + open conversations (reply window open) with `messages_per` messages each,
    alternating inbound / outbound (outbound ones `outbound_status`, provider id `<prefix>-out-<c>-<k>`).
    Returns the conversation id range and the outbound provider ids, in creation order."""
    from inbox.models import Contact, Conversation, Message
    from inbox.services.summary import conversations_summary_rebuild
    from tiktok_channel.models import CHANNEL, PROVIDER

    rng = random.Random(SEED)
    now = timezone.now()
    words = ["hello", "order", "refund", "where", "is", "my", "parcel", "thanks", "size", "colour", "price"]
    with transaction.atomic():
        contact_ids = _new_ids(Contact, conversations)
        conversation_ids = _new_ids(Conversation, conversations)
        message_ids = _new_ids(Message, conversations * messages_per)
        bulk_insert(
            Contact,
            (
                {
                    "id": contact_ids[i],
                    "channel": CHANNEL,
                    "endpoint_id": BUSINESS_ID,
                    "channel_user_id": f"{prefix}-user-{i}",
                    "display_name": f"User {prefix} {i}",
                    "first_seen_at": now - timedelta(days=30),
                    "last_seen_at": now,
                }
                for i in range(conversations)
            ),
            now=now,
        )
        bulk_insert(
            Conversation,
            (
                {
                    "id": conversation_ids[i],
                    "inbox_id": inbox_id,
                    "contact_id": contact_ids[i],
                    "provider": PROVIDER,
                    "provider_conversation_id": f"{prefix}-user-{i}",
                    # Spread over a month so list ordering and windows are realistic; recent ones reply-able.
                    "last_inbound_at": now - timedelta(seconds=i * 20),
                    "last_activity_at": now - timedelta(seconds=i * 20),
                    "agent_last_seen_at": now - timedelta(seconds=i * 20 + rng.randint(-600, 600)),
                }
                for i in range(conversations)
            ),
            now=now,
        )
        out_ids: list[str] = []

        def message_rows() -> Iterator[dict]:
            n = 0
            for c in range(conversations):
                base = now - timedelta(seconds=c * 20 + messages_per * 60)
                for k in range(messages_per):
                    inbound = k % 2 == 0
                    row = {
                        "id": message_ids[n],
                        "conversation_id": conversation_ids[c],
                        "direction": "in" if inbound else "out",
                        "type": "text",
                        "text": " ".join(rng.choice(words) for _ in range(rng.randint(2, 12))),
                        "channel": CHANNEL,
                        "sent_at": base + timedelta(seconds=k * 60),
                    }
                    if inbound:
                        row["provider_message_id"] = f"{prefix}-in-{c}-{k}"
                        row["status"] = ""
                    else:
                        pid = f"{prefix}-out-{c}-{k}"
                        out_ids.append(pid)
                        row.update(
                            provider_message_id=pid,
                            status=outbound_status,
                            queued_at=row["sent_at"],
                            accepted_at=row["sent_at"],
                        )
                    n += 1
                    yield row

        bulk_insert(Message, message_rows(), now=now)
        # The list-row columns the write path keeps (newest message, unread count), recomputed for the bulk rows.
        summary_started = time.perf_counter()
        conversations_summary_rebuild(
            Conversation.objects.filter(inbox_id=inbox_id, pk__gte=min(conversation_ids), pk__lte=max(conversation_ids))
        )
        summary_seconds = time.perf_counter() - summary_started
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # VACUUM as well as ANALYZE: left to autovacuum, the new rows (and the rebuild's dead row versions) were
            # vacuumed 0–60 s later, while the reads scenario's wrk ran (bench/README.md, seventh session).
            # (VACUUM cannot run inside a transaction: a caller's atomic block gets the ANALYZE alone.)
            cursor.execute("ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)")
    return {
        "conversation_ids": conversation_ids,
        "outbound_ids": out_ids,
        "summary_seconds": summary_seconds,
    }


def reads_user(*, inbox_name: str) -> tuple[int, str]:
    """A second inbox with its own agent (and API token): the reads scenario lists only its data."""
    from rest_framework.authtoken.models import Token

    from inbox.models import Inbox

    inbox = Inbox.objects.create(name=inbox_name)
    user = get_user_model().objects.create(username=f"bench-reader-{inbox.pk}", password="!")
    inbox.members.add(user)
    return inbox.pk, Token.objects.create(user=user).key


# --- reporting (the report charts) ---------------------------------------------------------------------------


def _insert_select(model: type[models.Model], expressions: dict[str, str], source: str, params: list) -> str:
    """`INSERT INTO <model's table> (every column) SELECT …`: `expressions` (column → SQL over `source`) for the
    columns given, the model's default (a parameter) for every other, so a column added later needs no change here.
    Returns the statement; `params` is extended with the defaults, in order."""
    now = timezone.now()
    defaults = _defaults(model, now)
    columns, values = [], []
    for f in _columns(model):
        columns.append(connection.ops.quote_name(f.column))
        if f.column in expressions:
            values.append(expressions[f.column].replace("%", "%%"))  # SQL's modulo, not a parameter
        elif f.primary_key:
            values.append(f"nextval(pg_get_serial_sequence('{model._meta.db_table}', '{f.column}'))")
        else:
            values.append(f"%s::{f.db_type(connection)}")
            params.append(_cell(defaults[f.attname]))
    return (
        f'INSERT INTO "{model._meta.db_table}" ({", ".join(columns)}) '  # noqa: S608 - names from the model
        f"SELECT {', '.join(values)} FROM {source.replace('%', '%%')}"
    )


def report_history(*, inbox_id: int, agent_ids: list[int], conversations: int, messages_per: int, days: int) -> None:
    """`conversations` conversations of `messages_per` messages spread evenly over the last `days` days, as the
    report roll-ups see them: agents' replies with authors, first responses spread over seconds from 1 to 37
    minutes (60–2,220 s, every whole second equally often), 70 % resolved (an audit row each; resolution times
    spread as well), assignments audited, one in five from one of 40 ads and one in ten from one of 10 TikTok.me
    links (the first message's referral), every third resolution rated (CSAT).

    PostgreSQL only, and set-based: every table is one `INSERT … SELECT` over `generate_series` (no row is built
    in Python, none updated after), ids drawn from the tables' sequences so the stack may write meanwhile."""
    from inbox.models import AuditLog, Contact, Conversation, Message
    from tiktok_channel.models import CHANNEL, PROVIDER

    now = timezone.now()
    # Conversation i opens at start + i × step; its message k comes k × gap later, gap = 60 + (i × 1336) mod 2161
    # seconds: 2,161 is prime, so each 2,161 consecutive conversations take every second of 60–2,220 once, and the
    # multiplier (≈ 2,161 / golden ratio) scatters neighbours over the range (real response times spread over
    # seconds; whole minutes would leave the report histograms only 37 values each). The last message of the
    # latest conversation (and its resolution, 10 minutes after) is still in the past.
    spread = (messages_per - 1) * 37 * 60 + 3600
    start = now - timedelta(days=days)
    step = (days * 86400 - spread) / conversations
    agents = "ARRAY[" + ",".join(str(int(pk)) for pk in agent_ids) + "]::bigint[]"
    words = "(ARRAY['hello','order','refund','where','is','my','parcel','thanks','size','colour','price'])"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""CREATE TEMP TABLE rep_c ON COMMIT DROP AS
              SELECT g.i, nextval(pg_get_serial_sequence('inbox_contact', 'id')) AS contact_id,
                     nextval(pg_get_serial_sequence('inbox_conversation', 'id')) AS id,
                     %s::timestamptz + g.i * %s * interval '1 second' AS opened_at,
                     (60 + (g.i * 1336) %% 2161) * interval '1 second' AS gap,
                     ({agents})[1 + g.i %% %s] AS agent,
                     g.i %% 10 < 7 AS resolved
              FROM generate_series(0, %s - 1) AS g(i)""",  # noqa: S608 - only our own integers
            [start, step, len(agent_ids), conversations],
        )
        last = f"(rep_c.opened_at + {messages_per - 1} * rep_c.gap)"
        params: list = []
        sql = _insert_select(
            Contact,
            {
                "id": "rep_c.contact_id",
                "channel": f"'{CHANNEL}'",
                "endpoint_id": f"'{BUSINESS_ID}'",
                "channel_user_id": "'rep-h-user-' || rep_c.i",
                "display_name": "'User rep-h ' || rep_c.i",
                "first_seen_at": "rep_c.opened_at",
                "last_seen_at": last,
                "created_at": "rep_c.opened_at",
            },
            "rep_c",
            params,
        )
        cursor.execute(sql, params)
        params = []
        sql = _insert_select(
            Conversation,
            {
                "id": "rep_c.id",
                "inbox_id": str(int(inbox_id)),
                "contact_id": "rep_c.contact_id",
                "provider": f"'{PROVIDER}'",
                "provider_conversation_id": "'rep-h-user-' || rep_c.i",
                "status": "CASE WHEN rep_c.resolved THEN 'resolved' ELSE 'open' END",
                "assignee_id": "rep_c.agent",
                "created_at": "rep_c.opened_at",
                "updated_at": last,
                "last_inbound_at": f"(rep_c.opened_at + {(messages_per - 1) // 2 * 2} * rep_c.gap)",
                "last_activity_at": last,
                "agent_last_seen_at": last,
            },
            "rep_c",
            params,
        )
        cursor.execute(sql, params)
        params = []
        at = "(rep_c.opened_at + g.k * rep_c.gap)"
        inbound = "g.k % 2 = 0"
        sql = _insert_select(
            Message,
            {
                "conversation_id": "rep_c.id",
                "direction": f"CASE WHEN {inbound} THEN 'in' ELSE 'out' END",
                "type": "'text'",
                "text": f"{words}[1 + (rep_c.i + g.k) % 11] || ' ' || {words}[1 + (rep_c.i * 7 + g.k) % 11]",
                "channel": f"'{CHANNEL}'",
                "endpoint_id": f"'{BUSINESS_ID}'",
                "provider_message_id": f"'rep-h-' || CASE WHEN {inbound} THEN 'in-' ELSE 'out-' END "
                "|| rep_c.i || '-' || g.k",
                "status": f"CASE WHEN {inbound} THEN '' ELSE 'seen' END",
                "queued_at": f"CASE WHEN {inbound} THEN NULL ELSE {at} END",
                "accepted_at": f"CASE WHEN {inbound} THEN NULL ELSE {at} END",
                "delivered_at": f"CASE WHEN {inbound} THEN NULL ELSE {at} + interval '2 seconds' END",
                "seen_at": f"CASE WHEN {inbound} THEN NULL ELSE {at} + interval '5 seconds' END",
                "author_id": f"CASE WHEN {inbound} THEN NULL ELSE rep_c.agent END",
                "sent_at": at,
                "created_at": at,
                "referral": """CASE
                  WHEN g.k = 0 AND rep_c.i % 5 = 0 THEN jsonb_build_object(
                    'source', 'ad', 'ad_id', 'ad-' || (rep_c.i % 40), 'ad_name', 'Bench ad ' || (rep_c.i % 40))
                  WHEN g.k = 0 AND rep_c.i % 10 = 1 THEN jsonb_build_object(
                    'source', 'tiktok_me', 'ref', 'link-' || (rep_c.i % 10))
                  ELSE '{}'::jsonb END""",
            },
            f"rep_c CROSS JOIN generate_series(0, {int(messages_per) - 1}) AS g(k) ORDER BY rep_c.id, g.k",
            params,
        )
        cursor.execute(sql, params)
        params = []
        resolved_at = f"({last} + interval '10 minutes')"
        sql = _insert_select(
            AuditLog,
            {
                "actor_id": "rep_c.agent",
                "actor_kind": "'agent'",
                "action": "e.action",
                "conversation_id": "rep_c.id",
                "before": """CASE WHEN e.action = 'conversation.assigned' THEN '{"assignee": null}'::jsonb
                             ELSE '{"status": "open"}'::jsonb END""",
                "after": """CASE WHEN e.action = 'conversation.assigned'
                            THEN jsonb_build_object('assignee', rep_c.agent)
                            ELSE '{"status": "resolved"}'::jsonb END""",
                "created_at": f"""CASE WHEN e.action = 'conversation.assigned'
                                  THEN rep_c.opened_at + interval '30 seconds' ELSE {resolved_at} END""",
            },
            "rep_c CROSS JOIN (VALUES ('conversation.assigned'), ('conversation.resolved')) AS e(action) "
            "WHERE e.action = 'conversation.assigned' OR rep_c.resolved",
            params,
        )
        cursor.execute(sql, params)
        # CSAT: every third resolution rated (a survey made a second after it, rated up to two hours later),
        # ratings skewed towards 4 and 5 as in real inboxes.
        cursor.execute(
            f"""INSERT INTO inbox_csatsurvey (conversation_id, resolved_version, outcome, detail, rating, comment,
                                             rated_at, expires_at, created_at)
              SELECT rep_c.id, 1, 'queued', '', (ARRAY[5, 5, 4, 5, 3, 4, 5, 2, 4, 1])[1 + rep_c.i % 10], '',
                     {resolved_at} + interval '1 second' + (rep_c.i % 120) * interval '1 minute',
                     {resolved_at} + interval '7 days', {resolved_at} + interval '1 second'
              FROM rep_c WHERE rep_c.resolved AND rep_c.i % 3 = 0"""  # noqa: S608 - our own expressions
        )
        cursor.execute("ANALYZE")
