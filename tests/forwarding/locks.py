"""Row locks held by another connection, for the tests of what skips them (PostgreSQL)."""

import threading

from django.db import connection, transaction

from forwarding.models import Delivery


class Holder(threading.Thread):
    """Another connection's transaction holding a delivery's row lock until told to let go."""

    def __init__(self, pk):
        super().__init__(daemon=True)
        self.pk, self.locked, self.release = pk, threading.Event(), threading.Event()

    def run(self):
        try:
            with transaction.atomic():
                Delivery.objects.select_for_update().get(pk=self.pk)
                self.locked.set()
                self.release.wait(30)
        finally:
            connection.close()
