from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class RelayAdminConfig(AdminConfig):
    """Installs the relay's AdminSite as the default admin site."""

    default_site = "dashboard.sites.RelayAdminSite"


class DashboardConfig(AppConfig):
    name = "dashboard"
    label = "dashboard"
    verbose_name = "Dashboard"
