"""Logging filters: django-q2's INFO lines per task ("Enqueued [...]", "... processing ...",
"Processed ...") are DEBUG here, so that a worker's console shows what went wrong, not every task."""

import logging
import re

PER_TASK = re.compile(r"^(Process-[\w:-]+ processing |Processed '|Enqueued \[)")


class PerTaskToDebug(logging.Filter):
    """Demote django-q2's per-task INFO lines to DEBUG (kept only when DEBUG is wanted)."""

    def filter(self, record):
        if record.levelno == logging.INFO and PER_TASK.match(record.getMessage()):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True
