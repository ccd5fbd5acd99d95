"""Long maintenance work beside ingestion: on SQLite, one write lock for the whole database."""

import time

from django.db import connection


def leave_free(began):
    """After a transaction of maintenance that began at `began` (time.monotonic()): on SQLite,
    leave the write lock free as long as the transaction held it, so that ingestion's writers get
    in (their busy handler retries every 100 ms at worst). PostgreSQL locks rows: nothing to do."""
    if connection.vendor == "sqlite":
        time.sleep(time.monotonic() - began)
