"""A minute schedule that resumes bulk resends whose task was lost (the Redis broker has no
receipts; a killed worker takes its task with it)."""

from django.db import migrations

NAME = "dashboard-resume-bulk-resends"


def create_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name=NAME,
        defaults={"func": "dashboard.tasks.resume_bulk_resends", "schedule_type": "I", "minutes": 1, "repeats": -1},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
        ("dashboard", "0002_roles"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
