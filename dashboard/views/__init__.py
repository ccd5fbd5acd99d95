"""The dashboard's own pages; each module contributes its URL patterns through `urls(site)`."""


def urls(site):
    from dashboard.views import attributes, event_names, pages

    return [*pages.urls(site), *event_names.urls(site), *attributes.urls(site)]
