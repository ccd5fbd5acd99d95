"""django-q2 task entry points: they take primary keys and record failures as outcomes."""

from forwarding.delivery import loop, sweeper, watchdog


def deliver_many(delivery_ids):
    loop.deliver_many(delivery_ids)
    watchdog.beat()


def deliver(delivery_id):
    # Tasks queued by an earlier version, one per delivery.
    loop.deliver(delivery_id)


def sweep():
    from django.conf import settings

    from forwarding import alerts, privacy

    # Started about once a minute by its schedule; sweeps every RELAY_SWEEP_INTERVAL meanwhile.
    swept = sweeper.sweep_for(50, settings.RELAY_SWEEP_INTERVAL)
    privacy.delete_due()  # forgotten users' Intercom contacts still to delete
    alerts.evaluate()  # the alert rules, once a minute; never raises (logs what failed)
    return swept


def prune():
    from forwarding import retention

    return retention.prune()
