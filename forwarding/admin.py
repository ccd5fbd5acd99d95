from django.contrib import admin
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers

from forwarding.ingestion import browser, snippets
from forwarding.ingestion.snippets import PLACEHOLDER_KEY
from forwarding.models import RejectedMessage, Source, hash_key
from forwarding.models.calls import KEY_PREFIX_LENGTH


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    """Sources show the key prefix only; the key itself is never stored.

    Adding a source (with the add permission) makes its key and shows it once, on the page that
    answers the form, in the website snippets; a source's page shows the snippets with a
    placeholder where the key goes, and its prefix to tell which key that is.
    """

    list_display = ["name", "key_prefix", "is_active", "created_at"]
    list_filter = ["is_active"]
    fields = ["name", "key_prefix", "is_active", "created_at"]
    readonly_fields = ["key_prefix", "created_at"]
    change_form_template = "admin/forwarding/source/change_form.html"

    def save_model(self, request, obj, form, change):
        if not change:
            key = Source.new_key()
            obj.key_prefix, obj.key_hash = key[:KEY_PREFIX_LENGTH], hash_key(key)
            # Only for the answer to this request (response_add): never stored, never in a session.
            request.relay_new_write_key = key
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        """The new key, once: the snippets with it, on the page that answers the form (no redirect
        and no session, so that it is nowhere to be found again)."""
        key = request.relay_new_write_key
        context = {
            **self.admin_site.each_context(request),
            "title": f"Source “{obj.name}” created",
            "opts": self.opts,
            "source": obj,
            "write_key": key,
            **website_snippets(request, key),
        }
        response = TemplateResponse(request, "admin/forwarding/source/created.html", context)
        # The key is in this page: no cache may keep it.
        add_never_cache_headers(response)
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), **website_snippets(request, PLACEHOLDER_KEY)}
        return super().change_view(request, object_id, form_url, extra_context)


def website_snippets(request, key):
    """The template context of the website snippets, for `key` (or the placeholder)."""
    url = browser.public_url(request)
    return {
        "relay_public_url": url,
        "analytics_js_snippet": snippets.analytics_js_snippet(url, key),
        "rudderstack_snippet": snippets.rudderstack_snippet(url, key),
        "rudderstack_load_call": snippets.rudderstack_load_call(url, key),
        "placeholder_key": PLACEHOLDER_KEY,
    }


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
