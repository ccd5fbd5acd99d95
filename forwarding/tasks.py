"""django-q2 task entry points: they take primary keys and record failures as outcomes."""

from forwarding import services


def deliver(delivery_id):
    services.deliver(delivery_id)


def sweep():
    return services.sweep()


def prune():
    from forwarding import retention

    return retention.prune()
