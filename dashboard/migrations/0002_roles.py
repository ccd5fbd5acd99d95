"""The two roles of the dashboard (dashboard/roles.py): Viewers see everything, Operators also act."""

from django.db import migrations

from dashboard.roles import OPERATORS, VIEWERS, create_roles


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=[VIEWERS, OPERATORS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("forwarding", "0002_event_names"),
        ("dashboard", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
