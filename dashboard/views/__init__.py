"""The dashboard's own pages; each module contributes its URL patterns through `urls(site)`."""

from django.urls import register_converter


class RowId:
    """A row id in a dashboard URL (`<relay_id:pk>`): ASCII digits that fit the database's 64-bit
    integer, so that a longer number is a 404 rather than an overflow in the query."""

    regex = "[0-9]{1,18}"

    def to_python(self, value):
        return int(value)

    def to_url(self, value):
        return str(value)


register_converter(RowId, "relay_id")


def urls(site):
    from dashboard.views import alerts, attributes, event_names, pages, tokens, transformations

    return [
        *pages.urls(site),
        *event_names.urls(site),
        *attributes.urls(site),
        *tokens.urls(site),
        *alerts.urls(site),
        *transformations.urls(site),
    ]
