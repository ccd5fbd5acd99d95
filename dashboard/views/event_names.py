"""The event-names page: usage against the cap and the operators' actions (issue 4)."""


def urls(site):
    return []
