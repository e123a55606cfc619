"""Statements the ORM writes too slowly for a batch: UPDATE of many rows by primary key in one round trip, and
set-based INSERT / UPDATE of a whole batch in one statement (`insert_rows`, `update_from`)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from django.db import connection
from django.db.models import Model
from django.utils import timezone


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


# --- Set-based statements: one statement for a whole batch, one array per column (PostgreSQL) -----------------


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def _column(model: type[Model], name: str):
    return model._meta.get_field(name)


def _array(field, values: list) -> tuple[str, list]:
    """The placeholder and value of one column as one array. JSON goes as text (serialized here, parsed by the
    server) so the client quotes one string per row instead of adapting nested objects."""
    if field.get_internal_type() == "JSONField":
        return "%s::text[]", [None if v is None else json.dumps(v, cls=field.encoder) for v in values]
    return f"%s::{field.db_type(connection)}[]", values


def _from_array(field, alias: str) -> str:
    column = f"{alias}.{connection.ops.quote_name(field.column)}"
    return f"{column}::jsonb" if field.get_internal_type() == "JSONField" else column


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

    PostgreSQL: one `INSERT … SELECT FROM unnest(<one array per column>) RETURNING …`, so the client adapts one
    array per column instead of a parameter per value (Django's `bulk_create` does that too, but through model
    instances and `get_db_prep_save` per value: most of a batch's Python). Elsewhere (SQLite in development):
    `bulk_create`.
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
        return [tuple(getattr(obj, name) for name in returning) for obj in objects]
    quote = connection.ops.quote_name
    given = [_column(model, name) for name in names]
    given_columns = {field.column for field in given}
    defaults = [
        field for field in model._meta.concrete_fields if field.column not in given_columns and not field.primary_key
    ]
    placeholders, params = [], []
    for field, name in zip(given, names, strict=True):
        placeholder, value = _array(field, columns[name])
        placeholders.append(placeholder)
        params.append(value)
    default_params = [field.get_db_prep_save(_default(field, now), connection) for field in defaults]
    target = ", ".join(quote(field.column) for field in [*given, *defaults])
    select = ", ".join([*(_from_array(field, "v") for field in given), *(["%s"] * len(defaults))])
    alias = ", ".join(quote(field.column) for field in given)
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({target}) "  # noqa: S608 - identifiers from the model, quoted
        f"SELECT {select} FROM unnest({', '.join(placeholders)}) AS v({alias})"
    )
    if ignore_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    sql += " RETURNING " + ", ".join(quote(_column(model, name).column) for name in returning)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*default_params, *params])
        return cursor.fetchall()


def update_from(model: type[Model], columns: dict[str, list], *, where: str = "") -> int:
    """UPDATE the rows whose primary keys are `columns["id"]`: each other column of `columns` (attname → one
    value per row) set to its row's value. `where` (SQL) is added to every row's condition; it may name the
    stored row as `t` and the new values as `v` (e.g. `t.seen IS NULL OR t.seen < v.seen`). Returns the rows
    updated.

    PostgreSQL: one `UPDATE … FROM unnest(<one array per column>)`. Elsewhere: the same statement with
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
    assignments = ", ".join(f"{quote(field.column)} = {_from_array(field, 'v')}" for field in fields)
    table = quote(model._meta.db_table)
    condition = f"t.{quote(pk.column)} = v.{quote(pk.column)}" + (f" AND ({where})" if where else "")
    with connection.cursor() as cursor:
        if is_postgresql():
            placeholders, params = [], []
            for field, values in [(pk, ids), *zip(fields, (columns[name] for name in names), strict=True)]:
                placeholder, value = _array(field, values)
                placeholders.append(placeholder)
                params.append(value)
            cursor.execute(
                f"UPDATE {table} AS t SET {assignments} "  # noqa: S608 - identifiers from the model, quoted
                f"FROM unnest({', '.join(placeholders)}) AS v({', '.join(aliases)}) WHERE {condition}",
                params,
            )
            return cursor.rowcount
        assignments = ", ".join(f"{quote(field.column)} = v.{quote(field.column)}" for field in fields)
        select = ", ".join(f"%s AS {alias}" for alias in aliases)
        pairs = list(zip(fields, names, strict=True))
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
