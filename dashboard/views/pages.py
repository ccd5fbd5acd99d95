"""Overview, delivery log, call detail, user history and bulk resend (issue 5)."""


def urls(site):
    return []
