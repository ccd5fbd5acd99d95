"""The dashboard's two roles (docs/architecture.md, "Dashboard"): Viewers see everything, Operators
also resend, archive, rename and release (the `forwarding.operate` permission). Users must be staff
as well.

Migration 0002 created them; after every `migrate` (post_migrate) they are brought in step with
the models as they stand, so that a model added later is viewable by both roles on every install,
not only on those whose database was created after it."""

from django.apps import apps as global_apps
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.recorder import MigrationRecorder

VIEWERS = "Viewers"
OPERATORS = "Operators"
APPS = ("forwarding", "dashboard")
ROLES_MIGRATION = ("dashboard", "0002_roles")


def create_roles(apps, schema_editor=None):
    """Migration 0002: the relay's permissions, which Django creates only after a migrate, then
    the two groups (see `grant`)."""
    from django.contrib.auth.management import create_permissions

    for label in APPS:
        config = apps.get_app_config(label)
        previous, config.models_module = getattr(config, "models_module", None), True
        try:
            create_permissions(config, verbosity=0, apps=apps)
        finally:
            config.models_module = previous
    grant(apps)


def grant(apps):
    """The two groups, with every view permission of the relay's apps in `apps` (a migration's
    historical models, or the project's); a no-op when they have them already."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    view = list(Permission.objects.filter(content_type__app_label__in=APPS, codename__startswith="view_"))
    operate = list(Permission.objects.filter(content_type__app_label="forwarding", codename="operate"))
    viewers, _ = Group.objects.get_or_create(name=VIEWERS)
    viewers.permissions.add(*view)
    operators, _ = Group.objects.get_or_create(name=OPERATORS)
    operators.permissions.add(*view, *operate)


def sync_roles(sender, apps=global_apps, using=DEFAULT_DB_ALIAS, **kwargs):
    """post_migrate: the roles hold the view permission of every model the migration left (a
    flush sends it too, without `apps`: the project's models). Django's own handler, connected
    before this one (auth precedes the relay's apps), has created those permissions already.
    Not when the database was migrated back past the roles' migration: that removed them."""
    if ROLES_MIGRATION in MigrationRecorder(connections[using]).applied_migrations():
        grant(apps)
