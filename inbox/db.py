"""Statements the ORM writes too slowly for a batch: UPDATE of many rows by primary key in one round trip, and
set-based INSERT / UPDATE of a whole batch in one statement (`insert_rows`, `update_from`)."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence

from django.conf import settings
from django.db import connection
from django.db.models import Model
from django.db.models.base import ModelState
from django.utils import timezone
from psycopg.types.datetime import TimestamptzLoader


def update_rows(model: type[Model], fields: list[str], objects: list[Model], *, where: str = "", params=()) -> None:
    """UPDATE `fields` of each object by primary key: one statement with many parameter sets.

    `where` (SQL, with `params`) is added to every row's condition, e.g. a guard the row must still meet.
    Not `bulk_update`: its CASE WHEN per object and field costs Django and the database time quadratic in
    the batch (8 s for 2,000 conversations in a profile); psycopg pipelines `executemany` in one round trip.
    """
    if not objects:
        return
    quote = connection.ops.quote_name
    columns = [model._meta.get_field(name) for name in fields]
    assignments = ", ".join(f"{quote(column.column)} = %s" for column in columns)
    table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
    sql = f"UPDATE {table} SET {assignments} WHERE {pk} = %s"  # noqa: S608 - identifiers from the model, quoted
    if where:
        sql += f" AND ({where})"
    rows = [
        [column.get_db_prep_save(getattr(obj, column.attname), connection) for column in columns]
        + [obj.pk, *(param(obj) if callable(param) else param for param in params)]
        for obj in objects
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def times_in_c(cursor) -> None:
    """Read this cursor's timestamptz values with psycopg's C loader instead of Django's (a Python subclass of
    psycopg's Python loader that replaces the time zone by the connection's: ~15 µs a value — 130 on a list page, 4
    per conversation an inbound batch locks). Django sets the session's TimeZone to the connection's, and the C
    loader returns times in the session's zone, so the values are the same (tests/inbox/test_list_pages.py and the
    inbound equivalence test compare them with the ORM's). PostgreSQL only; `cursor` is Django's wrapper."""
    if settings.USE_TZ:
        cursor.cursor.adapters.register_loader("timestamptz", TimestamptzLoader)


# --- Set-based statements: one statement for a whole batch, one array per column (PostgreSQL) -----------------


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def _column(model: type[Model], name: str):
    return model._meta.get_field(name)


def recordset(columns: dict[str, tuple[str, list]], alias: str = "v") -> tuple[str, str]:
    """A batch as a table in one parameter: (SQL, parameter) for `FROM` / `IN (SELECT …)`, a subquery named `alias`
    with the rows of `columns` (name → (SQL type, one value per row)) (PostgreSQL).

    One JSON string (serialized by the json module's C encoder, escaped once by libpq) instead of one array
    parameter per column: psycopg quotes each element of an array client-side in Python (a regular expression per
    string). The string holds one JSON array per column, spread side by side by `ROWS FROM` (each value cast to its
    column's type; a jsonb column takes a nested value as it is): not an object per row for `json_to_recordset`,
    whose per-row dicts and repeated keys were a third of a batch's Python (the encoder's share included) and whose
    parsing cost PostgreSQL ~4 × as much (bench/README.md, "Set-based intake", eighth session)."""
    quote = connection.ops.quote_name
    data, selected, functions = [], [], []
    for i, (name, (sql_type, values)) in enumerate(columns.items()):
        if sql_type.startswith("timestamp"):
            values = _isoformats(values)  # noqa: PLW2901 - the JSON form
        data.append(values)
        if sql_type in ("jsonb", "json"):
            functions.append(f"jsonb_array_elements(p.j -> {i})")
            selected.append(f"NULLIF(x.c{i}, 'null')::{sql_type} AS {quote(name)}")  # JSON null: SQL NULL
        else:
            functions.append(f"jsonb_array_elements_text(p.j -> {i})")
            # Without a length (varchar(200) → varchar): an explicit cast would cut a longer value silently, the
            # column's own assignment refuses it, as `json_to_recordset` did.
            selected.append(f"x.c{i}::{_LENGTH.sub('', sql_type)} AS {quote(name)}")
    names = ", ".join(f"c{i}" for i in range(len(data)))
    # Names quoted, types from the fields, every value in the one parameter.
    sql = (
        f"(SELECT {', '.join(selected)} FROM (SELECT %s::jsonb AS j) p, "  # noqa: S608
        f"ROWS FROM ({', '.join(functions)}) AS x({names})) AS {alias}"
    )
    return sql, json.dumps(data)


_LENGTH = re.compile(r"\(\d+(,\s*\d+)?\)$")


def _isoformats(values: list) -> list:
    """Each time's ISO form, computed once per distinct time: a batch's columns repeat times (its `created_at`, events
    sent in the same second), and `isoformat` was most of the record sets' cost after the JSON encoder. Equal aware
    times are the same instant, whatever their zones: either form is the same `timestamptz`."""
    known: dict = {None: None}
    out = []
    for value in values:
        text = known.get(value, _MISSING)
        if text is _MISSING:
            text = known[value] = value.isoformat()
        out.append(text)
    return out


_MISSING = object()


@functools.cache
def _db_type(field) -> str:
    """A field's SQL type, computed once per process: `db_type` rebuilds it from the field's parameters on every
    call, a tenth of a single-event batch's Python in a profile (bench/README.md, "Ingest 1/POST: the fixed cost")."""
    return field.db_type(connection)


def _field_column(field, values: list) -> tuple[str, list]:
    """A field's (SQL type, values) for `recordset`."""
    if field.get_internal_type() == "JSONField" and field.encoder is not None:
        values = [None if v is None else json.loads(json.dumps(v, cls=field.encoder)) for v in values]
    return _db_type(field), values


def _keep_given_times(model: type[Model], columns: dict[str, list], objects: list) -> None:
    """`bulk_create` (SQLite) sets every `auto_now(_add)` field to its own now, over a given value: store the given
    ones, as PostgreSQL's statement does (one UPDATE per distinct value; a batch usually has one)."""
    for name in columns:
        field = _column(model, name)
        if not (getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)):
            continue
        by_value: dict = {}
        for obj, value in zip(objects, columns[name], strict=True):
            setattr(obj, field.attname, value)
            by_value.setdefault(value, []).append(obj.pk)
        for value, pks in by_value.items():
            model.objects.filter(pk__in=pks).update(**{field.attname: value})


def _default(field, now):
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return now
    return field.get_default()


def insert_rows(
    model: type[Model],
    columns: dict[str, list],
    *,
    returning: Sequence[str] = ("id",),
    ignore_conflicts: bool = False,
) -> list[tuple]:
    """INSERT one row per position of `columns` (attname → one value per row); every other column takes its
    field's default (one value for all rows, `auto_now(_add)`: now). Returns `returning` per inserted row, in
    order; with `ignore_conflicts` the rows a unique constraint skipped are absent — and on databases other than
    PostgreSQL every row may be: the caller looks up what it did not get back.

    PostgreSQL: one `INSERT … SELECT … FROM (the batch's record set) RETURNING …` (`recordset`): no model instances,
    no `get_db_prep_save` per value, one parameter (Django's `bulk_create` uses `unnest` of one array per column,
    but through both: most of a batch's Python). Elsewhere (SQLite in development): `bulk_create`.
    """
    names = list(columns)
    rows = len(columns[names[0]]) if names else 0
    if not rows:
        return []
    now = timezone.now()
    if not is_postgresql():
        objects = [model(**{name: columns[name][i] for name in names}) for i in range(rows)]
        model.objects.bulk_create(objects, ignore_conflicts=ignore_conflicts)
        if ignore_conflicts:
            return []
        _keep_given_times(model, columns, objects)
        return [tuple(getattr(obj, name) for name in returning) for obj in objects]
    quote = connection.ops.quote_name
    given = [_column(model, name) for name in names]
    given_columns = {field.column for field in given}
    defaults = [
        field for field in model._meta.concrete_fields if field.column not in given_columns and not field.primary_key
    ]
    table, payload = recordset(
        {field.column: _field_column(field, columns[name]) for field, name in zip(given, names, strict=True)}
    )
    default_params = [field.get_db_prep_save(_default(field, now), connection) for field in defaults]
    target = ", ".join(quote(field.column) for field in [*given, *defaults])
    select = ", ".join([*(f"v.{quote(field.column)}" for field in given), *(["%s"] * len(defaults))])
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({target}) SELECT {select} FROM {table}"  # noqa: S608
    if ignore_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    sql += " RETURNING " + ", ".join(quote(_column(model, name).column) for name in returning)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*default_params, payload])
        return cursor.fetchall()


def update_from(model: type[Model], columns: dict[str, list], *, where: str = "") -> int:
    """UPDATE the rows whose primary keys are `columns["id"]`: each other column of `columns` (attname → one
    value per row) set to its row's value. `where` (SQL) is added to every row's condition; it may name the
    stored row as `t` and the new values as `v` (e.g. `t.seen IS NULL OR t.seen < v.seen`). Returns the rows
    updated.

    PostgreSQL: one `UPDATE … FROM (the batch's record set)` (`recordset`). Elsewhere: the same statement with
    `FROM (SELECT %s …)` per row, in one `executemany`.
    """
    ids = columns["id"]
    if not ids:
        return 0
    quote = connection.ops.quote_name
    names = [name for name in columns if name != "id"]
    fields = [_column(model, name) for name in names]
    pk = model._meta.pk
    aliases = [quote(pk.column), *(quote(field.column) for field in fields)]
    assignments = ", ".join(f"{quote(field.column)} = v.{quote(field.column)}" for field in fields)
    table = quote(model._meta.db_table)
    condition = f"t.{quote(pk.column)} = v.{quote(pk.column)}" + (f" AND ({where})" if where else "")
    pairs = list(zip(fields, names, strict=True))
    with connection.cursor() as cursor:
        if is_postgresql():
            table_v, payload = recordset(
                {
                    pk.column: (pk.rel_db_type(connection), ids),
                    **{field.column: _field_column(field, columns[name]) for field, name in pairs},
                }
            )
            cursor.execute(
                f"UPDATE {table} AS t SET {assignments} FROM {table_v} WHERE {condition}",  # noqa: S608
                [payload],
            )
            return cursor.rowcount
        select = ", ".join(f"%s AS {alias}" for alias in aliases)
        cursor.executemany(
            f"UPDATE {table} AS t SET {assignments} FROM (SELECT {select}) AS v WHERE {condition}",  # noqa: S608
            [
                [
                    pk.get_db_prep_save(ids[i], connection),
                    *(field.get_db_prep_save(columns[name][i], connection) for field, name in pairs),
                ]
                for i in range(len(ids))
            ],
        )
        return cursor.rowcount


def stored_instance(model: type[Model], values: dict, *, using: str = "default") -> Model:
    """The model instance of a row just stored, from its column values (attname → value; every concrete field not
    in `values` gets its default), without `Model.__init__`'s per-field work (a fifth of a 5,000-event batch's
    Python in a profile). Only for models with no `pre_init` / `post_init` receivers: none is sent."""
    static, dynamic = model_defaults(model)
    obj = model.__new__(model)
    obj.__dict__.update(static)
    for attname, default in dynamic:
        obj.__dict__[attname] = default()
    obj.__dict__.update(values)
    obj._state = ModelState()
    obj._state.adding = False
    obj._state.db = using
    return obj


@functools.cache
def model_defaults(model: type[Model]) -> tuple[dict, list]:
    """A model's field defaults: (attname → value for constant ones, [(attname, callable)] for the others)."""
    static, dynamic = {}, []
    for field in model._meta.concrete_fields:
        if field.has_default() and callable(field.default):
            dynamic.append((field.attname, field.default))
        else:
            static[field.attname] = field.get_default()
    return static, dynamic


def allocate_ids(counts: Sequence[tuple[type[Model], int]]) -> list[list[int]]:
    """Primary keys for rows not inserted yet, `n` per model (ascending), from the models' own sequences, in one
    statement (PostgreSQL): so rows that refer to each other can be written complete, each once.

    Ids a transaction takes and does not use (it rolls back, a row turns out to exist) are gaps, as with any
    sequence."""
    if not any(n for _, n in counts):
        return [[] for _ in counts]
    selects = ", ".join("ARRAY(SELECT nextval(%s::regclass) FROM generate_series(1, %s))" for _ in counts)
    params = []
    for model, n in counts:
        params += [_sequence(connection.alias, model._meta.db_table, model._meta.pk.column), n]
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + selects, params)
        return [sorted(ids) for ids in cursor.fetchone()]


@functools.cache
def _sequence(alias: str, table: str, column: str) -> str:
    """The sequence behind a serial / identity column, looked up once per process: `pg_get_serial_sequence` in the
    allocating statement itself ran once per id (a catalog lookup each: most of that statement's time)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [table, column])
        return cursor.fetchone()[0]
