"""Raw SQL for what every ingestion request does: the ORM's compiling of a small query costs more
CPU than the database's answer (bench/single_call.py). Lookups on plain equality of text and
integer columns, whose values need no adapting on any backend; inserts of new rows."""

import functools

from django.db import DEFAULT_DB_ALIAS, connection, connections


def values_in(model, column, values, **equal):
    """The values of `column` among `values` in `model`'s table, where each `equal` column holds its
    value: `SELECT column FROM table WHERE column IN (values) AND key = value ...`."""
    if not values:
        return []
    quote = connection.ops.quote_name
    conditions = [f"{quote(column)} IN ({', '.join(['%s'] * len(values))})"]
    conditions += [f"{quote(key)} = %s" for key in equal]
    sql = f"SELECT {quote(column)} FROM {quote(model._meta.db_table)} WHERE {' AND '.join(conditions)}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, *equal.values()])
        return [row[0] for row in cursor.fetchall()]


def insert(objs, using=DEFAULT_DB_ALIAS):
    """INSERT new instances of one model, setting their primary keys: `bulk_create` for the rows
    every request stores, without compiling a query each time (its SQL is kept per model and
    number of rows). Values go through each field's own `pre_save` and `get_db_prep_save`, as
    the ORM's would. Returns `objs`."""
    if not objs:
        return objs
    connection = connections[using]
    model = type(objs[0])
    fields = _insert_fields(model)
    per_statement = max(1, MAX_PARAMS // len(fields))
    for start in range(0, len(objs), per_statement):
        chunk = objs[start : start + per_statement]
        params = [field.get_db_prep_save(field.pre_save(obj, True), connection) for obj in chunk for field in fields]
        with connection.cursor() as cursor:
            cursor.execute(_insert_sql(model, connection, len(chunk)), params)
            for obj, (pk,) in zip(chunk, cursor.fetchall(), strict=True):
                obj.pk = pk
                obj._state.adding, obj._state.db = False, connection.alias
    return objs


MAX_PARAMS = 999  # SQLite's smallest limit on parameters in one statement


@functools.cache
def _insert_fields(model):
    return [field for field in model._meta.concrete_fields if field is not model._meta.auto_field]


_insert_sqls = {}  # {(model, vendor, rows): sql}; quoting depends on the backend only


def _insert_sql(model, connection, rows):
    key = (model, connection.vendor, rows)
    sql = _insert_sqls.get(key)
    if sql is None:
        quote, fields = connection.ops.quote_name, _insert_fields(model)
        columns = ", ".join(quote(field.column) for field in fields)
        row = f"({', '.join(['%s'] * len(fields))})"
        sql = _insert_sqls[key] = (
            f"INSERT INTO {quote(model._meta.db_table)} ({columns}) "  # noqa: S608
            f"VALUES {', '.join([row] * rows)} RETURNING {quote(model._meta.pk.column)}"
        )
    return sql
