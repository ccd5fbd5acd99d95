"""The two roles of the dashboard (docs/architecture.md, "Dashboard"): Viewers see everything, Operators also resend,
archive, rename and release (the `forwarding.operate` permission). Users must be staff as well."""

from django.db import migrations

VIEWERS = "Viewers"
OPERATORS = "Operators"
APPS = ("forwarding", "dashboard")


def create_roles(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after migrate (post_migrate); the groups need them now.
    for label in APPS:
        config = apps.get_app_config(label)
        previous, config.models_module = getattr(config, "models_module", None), True
        try:
            create_permissions(config, verbosity=0, apps=apps)
        finally:
            config.models_module = previous
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    view = list(Permission.objects.filter(content_type__app_label__in=APPS, codename__startswith="view_"))
    operate = Permission.objects.get(content_type__app_label="forwarding", codename="operate")
    viewers, _ = Group.objects.get_or_create(name=VIEWERS)
    viewers.permissions.add(*view)
    operators, _ = Group.objects.get_or_create(name=OPERATORS)
    operators.permissions.add(*view, operate)


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
