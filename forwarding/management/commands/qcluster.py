"""`manage.py qcluster`: django-q2's cluster, watched by a thread of this process that restarts it
when its tasks stop running (see forwarding.delivery.watchdog)."""

import time

from django.conf import settings
from django_q.cluster import Cluster
from django_q.management.commands.qcluster import Command as DjangoQCommand

from forwarding.delivery import watchdog


class Command(DjangoQCommand):
    help = "Starts the task queue's worker cluster, restarted by a watchdog when it stalls."

    def handle(self, *args, **options):
        if options.get("run_once") or options.get("cluster_name"):
            return super().handle(*args, **options)
        settings.SECRET_KEY  # noqa: B018  (django-q2 signs its tasks with it: fail before starting)
        cluster = Cluster()
        cluster.start()
        # Started once the sentinel runs: a process forked while a thread holds a lock inherits it.
        watchdog.Watchdog(restart=watchdog.restart_in_place).start()
        # The cluster's signal handlers stop it on SIGTERM/SIGINT; its sentinel then exits.
        while cluster.sentinel.is_alive():
            time.sleep(0.5)
