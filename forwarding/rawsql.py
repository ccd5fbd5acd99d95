"""Raw SQL for the lookups every ingestion request makes: the ORM's compiling of a small query
costs more CPU than the database's answer (bench/single_call.py). Only plain equality on text
and integer columns, whose values need no adapting on any backend."""

from django.db import connection


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
