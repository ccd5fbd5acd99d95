"""API tokens: created and revoked by staff users, shown once, stored hashed."""


def urls(site):
    return []
