"""The periodic tasks, created idempotently after every migrate."""

from django_q.models import Schedule

SCHEDULES = [
    # Re-enqueues due and stuck deliveries; django-q2 runs schedules at most about once a minute.
    {"name": "relay-sweep", "func": "forwarding.tasks.sweep", "schedule_type": Schedule.MINUTES, "minutes": 1},
    # Retention, once a day.
    {"name": "relay-prune", "func": "forwarding.tasks.prune", "schedule_type": Schedule.DAILY},
]


def ensure_schedules(**kwargs):
    for spec in SCHEDULES:
        fields = {key: value for key, value in spec.items() if key != "name"}
        Schedule.objects.update_or_create(name=spec["name"], defaults={**fields, "repeats": -1})
