from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class RelayAdminConfig(AdminConfig):
    """Installs the relay's AdminSite as the default admin site."""

    default_site = "dashboard.sites.RelayAdminSite"


class DashboardConfig(AppConfig):
    name = "dashboard"
    label = "dashboard"
    verbose_name = "Dashboard"

    def ready(self):
        from django.db.models.signals import post_migrate

        from dashboard.roles import sync_roles

        post_migrate.connect(sync_roles, sender=self)
