"""Alert targets and the alerts sent."""


def urls(site):
    return []
