"""The report roll-ups (imported by inbox/models.py: they belong to the `inbox` app).

Everything here is derived from raw rows (conversations, messages, audit log, conversions) by
`inbox.reports.rollups`; `manage.py rebuild_reports` recreates it. `agent_id` 0 means "no agent".
"""

from __future__ import annotations

import json

from django.db import models

# Source kinds of a conversation cycle (from the referral its first message carried).
SOURCE_ORGANIC = "organic"
SOURCE_AD = "ad"
SOURCE_TIKTOK_ME = "tiktok_me"
SOURCE_OTHER = "other"


class ReportState(models.Model):
    """What one conversation contributes to the day and hour roll-ups now: the subscriber recomputes a touched
    conversation and applies the difference, so a redelivery or an out-of-order event can never count twice."""

    conversation = models.OneToOneField(
        "inbox.Conversation", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    contributions = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"report state of conversation {self.conversation_id}"


class ReportMarkBatch(models.Model):
    """The conversations one event batch changed the figures of, not refreshed yet by the deferred roll-ups
    (REPORTS_ROLLUPS = "deferred"): one row per batch, not one per conversation (a row write and an index entry at
    ingest, and its delete at the drain, per conversation were most of what marking cost).

    `rollups.drain` takes whole rows in chunks and refreshes each conversation once however many rows name it
    (`rollups.marks_merged`)."""

    marked_at = models.DateTimeField()
    size = models.PositiveIntegerField(help_text="How many conversations `conversations` lists")
    conversations = models.JSONField(
        help_text="[conversation id, full, opened, [new customer message ids]] per conversation: full False, only "
        "those new messages since (the fast path); opened, those messages opened it (it had no figures before them)"
    )

    def __str__(self) -> str:
        return f"{self.size} conversations to refresh"


class ReportCycle(models.Model):
    """One cycle of a conversation (opened, or reopened, until resolved): the samples of first response and
    resolution times, kept whole so medians and 90th percentiles are exact for any filter."""

    inbox = models.ForeignKey("inbox.Inbox", on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey("inbox.Conversation", on_delete=models.CASCADE, related_name="+")
    seq = models.PositiveIntegerField(help_text="0 for the first cycle, then one more per reopening")
    opened_at = models.DateTimeField()
    opened_day = models.DateField()
    agent_id = models.BigIntegerField(default=0, help_text="Assignee at resolution (open: now); 0 none")
    source_kind = models.CharField(max_length=16, default=SOURCE_ORGANIC)
    source_id = models.CharField(max_length=200, blank=True, default="")
    source_name = models.CharField(max_length=300, blank=True, default="")
    first_inbound_at = models.DateTimeField(null=True, blank=True)
    first_response_at = models.DateTimeField(null=True, blank=True)
    first_response_day = models.DateField(null=True, blank=True)
    first_response_seconds = models.BigIntegerField(null=True, blank=True)
    responder_id = models.BigIntegerField(default=0)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_day = models.DateField(null=True, blank=True)
    resolution_seconds = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["conversation", "seq"], name="reportcycle_once_per_seq")]
        indexes = [
            # Covering: the percentiles read their samples from the index alone.
            models.Index(
                fields=["inbox", "first_response_day"],
                include=["first_response_seconds", "responder_id"],
                name="reportcycle_frt_day",
            ),
            models.Index(
                fields=["inbox", "resolved_day"],
                include=["resolution_seconds", "agent_id"],
                name="reportcycle_resolved_day",
            ),
            models.Index(fields=["inbox", "opened_day"], name="reportcycle_opened_day"),
            # The sources chart's names: the latest cycle of each source, one probe each.
            models.Index(
                fields=["source_kind", "source_id", "-opened_at", "-id"],
                include=["inbox", "source_name"],
                # Named cycles only: an organic source has no name, and its probe walked every organic cycle.
                condition=~models.Q(source_name=""),
                name="reportcycle_source_name",
            ),
        ]

    def __str__(self) -> str:
        return f"cycle {self.seq} of conversation {self.conversation_id}"


class ReportDay(models.Model):
    """Counts per inbox, local day (the inbox's time zone), agent and source."""

    inbox = models.ForeignKey("inbox.Inbox", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    agent_id = models.BigIntegerField(default=0)
    source_kind = models.CharField(max_length=16, default=SOURCE_ORGANIC)
    source_id = models.CharField(max_length=200, blank=True, default="")
    opened = models.IntegerField(default=0)
    replied = models.IntegerField(default=0, help_text="Cycles opened this day that got an agent's reply")
    opened_resolved = models.IntegerField(
        default=0, db_default=0, help_text="Cycles opened this day that are resolved (since)"
    )
    resolved = models.IntegerField(default=0)
    messages_in = models.IntegerField(default=0)
    messages_out = models.IntegerField(default=0)
    conversions = models.IntegerField(default=0)
    first_response_count = models.IntegerField(default=0)
    first_response_seconds = models.BigIntegerField(default=0, help_text="Sum, for averages")
    resolution_count = models.IntegerField(default=0)
    resolution_seconds = models.BigIntegerField(default=0, help_text="Sum, for averages")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["inbox", "day", "agent_id", "source_kind", "source_id"], name="reportday_unique_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.inbox_id} {self.day} agent {self.agent_id} {self.source_kind}"


class IntegerListField(models.Field):
    """A list of integers: `integer[]` on PostgreSQL (SQL unnests it: the charts merge histograms in the database),
    JSON text elsewhere (SQLite, `make run`'s zero-setup default)."""

    description = "A list of integers"

    def db_type(self, connection) -> str:
        return "integer[]" if connection.vendor == "postgresql" else "text"

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None:
            return None
        value = [int(v) for v in value]
        return value if connection.vendor == "postgresql" else json.dumps(value)

    def from_db_value(self, value, expression, connection):
        return json.loads(value) if isinstance(value, str) else value

    def to_python(self, value):
        return json.loads(value) if isinstance(value, str) else value


class ReportHistogram(models.Model):
    """The first response or resolution times of an inbox, local day and agent, as the reports show them: how many
    samples (`samples[i]`) took each duration in tenths of a minute (`tenths[i]`, ascending, no zero counts).
    Durations are shown in minutes with one decimal, and rounding keeps the order, so percentile_disc over these
    shown values is exactly the rounded percentile_disc of the samples — read from a row per inbox, day, agent and
    metric instead of a row per cycle. Two integer arrays (not a JSON map): PostgreSQL merges them per chart group
    with `unnest` … `GROUP BY`, so a chart receives one merged histogram per day or agent, not every row's.

    The day and agent are those the charts filter on: first response — the responder and their reply's day;
    resolution — the cycle's agent and the resolution's day."""

    FIRST_RESPONSE = "first_response"
    RESOLUTION = "resolution"

    inbox = models.ForeignKey("inbox.Inbox", on_delete=models.CASCADE, related_name="+")
    metric = models.CharField(max_length=16, choices=[(FIRST_RESPONSE, "First response"), (RESOLUTION, "Resolution")])
    day = models.DateField()
    agent_id = models.BigIntegerField(default=0)
    tenths = IntegerListField(default=list, help_text="Durations shown, tenths of a minute, ascending")
    samples = IntegerListField(default=list, help_text="How many samples took each of `tenths` (none zero)")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["inbox", "metric", "day", "agent_id"], name="reporthistogram_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.inbox_id} {self.day} agent {self.agent_id} {self.metric}"

    @property
    def counts(self) -> dict[int, int]:
        """{tenths of a minute: samples}."""
        return dict(zip(self.tenths, self.samples, strict=True))


class ReportHour(models.Model):
    """Conversations opened per inbox, local day and local hour (the heatmap), and agent."""

    inbox = models.ForeignKey("inbox.Inbox", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    hour = models.PositiveSmallIntegerField()
    agent_id = models.BigIntegerField(default=0)
    opened = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["inbox", "day", "hour", "agent_id"], name="reporthour_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.inbox_id} {self.day} {self.hour}h"


class ReportCsat(models.Model):
    """CSAT ratings per inbox, local day of the rating, agent of the rated resolution, and rating (1 to 5)."""

    inbox = models.ForeignKey("inbox.Inbox", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    agent_id = models.BigIntegerField(default=0)
    rating = models.PositiveSmallIntegerField()
    responses = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["inbox", "day", "agent_id", "rating"], name="reportcsat_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.inbox_id} {self.day} agent {self.agent_id}: {self.responses} × {self.rating}"


DAY_KEY = ["inbox_id", "day", "agent_id", "source_kind", "source_id"]
DAY_COUNTS = [
    "opened",
    "replied",
    "resolved",
    "messages_in",
    "messages_out",
    "conversions",
    "first_response_count",
    "first_response_seconds",
    "resolution_count",
    "resolution_seconds",
]
# Counts of ReportDay that come from the cycles ("c" of the contributions), not from the day entries ("d").
DAY_CYCLE_COUNTS = ["opened_resolved"]
HISTOGRAM_KEY = ["inbox_id", "metric", "day", "agent_id"]
HOUR_KEY = ["inbox_id", "day", "hour", "agent_id"]
HOUR_COUNTS = ["opened"]
CSAT_KEY = ["inbox_id", "day", "agent_id", "rating"]
CSAT_COUNTS = ["responses"]
