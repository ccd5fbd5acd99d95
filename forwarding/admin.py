from django.contrib import admin

from forwarding.models import Source


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    """Sources show the key prefix only; the key itself is never stored."""

    list_display = ["name", "key_prefix", "is_active", "created_at"]
    list_filter = ["is_active"]
    fields = ["name", "key_prefix", "is_active", "created_at"]
    readonly_fields = ["key_prefix", "created_at"]

    def has_add_permission(self, request):
        # A key is created with `manage.py add_source`, which prints it once.
        return False
