from django.contrib import admin

from forwarding.models import RejectedMessage, Source


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


@admin.register(RejectedMessage)
class RejectedMessageAdmin(admin.ModelAdmin):
    """Messages ingestion refused, with the reason: read-only, for finding a client's mistakes."""

    list_display = ["received_at", "source", "code", "reason", "message_id"]
    list_filter = ["code", "source"]
    search_fields = ["=message_id"]
    list_select_related = ["source"]
    readonly_fields = ["received_at", "source", "code", "reason", "message_id", "excerpt"]
    fields = readonly_fields
    # The table can grow large: no full COUNT on every page.
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
