"""The operators' console: the Django admin, extended."""

from django.contrib import admin


class RelayAdminSite(admin.AdminSite):
    site_header = "Intercom Relay"
    site_title = "Intercom Relay"
    index_title = "Overview"
