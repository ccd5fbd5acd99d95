"""django-q2's ORM broker with a doorbell: a task committed to the queue's table wakes the
cluster's pusher at once, instead of at its next poll (every 0.2 s, the most of the latency from
accepted to delivered on SQLite).

The bell is a directory of Unix datagram sockets, one per pusher (several clusters may share a
database), named after the SQLite file in the temporary directory (a socket's path is short).
Whoever commits tasks sends one byte to each; a pusher with an empty queue waits on its socket
for at most the poll interval, so an idle worker polls no more often than before. A missed ring
(a full socket buffer, a pusher that starts late) costs only the poll it would have waited
anyway; a socket whose pusher is gone is removed by the next ring.

Only for SQLite: its web and worker share a machine by necessity. With PostgreSQL the queue is
Redis (its pushers block on the list) or the plain ORM broker."""

import contextlib
import errno
import hashlib
import os
import select
import socket
import tempfile
import time
import uuid
from pathlib import Path

from django.db import connections, transaction
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import OrmQ

from forwarding import rawsql

SUFFIX = ".sock"


def directory():
    """Where the bells of this database hang, or None (no SQLite file: polling only)."""
    connection = connections[Conf.ORM or "default"]
    name = str(connection.settings_dict["NAME"] or "")
    if connection.vendor != "sqlite" or not name or connection.is_in_memory_db():
        return None
    digest = hashlib.sha256(os.path.abspath(name).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"relay-doorbell-{os.getuid()}-{digest}"


class Bell:
    """One pusher's socket: created on its first wait, then waited on."""

    def __init__(self, path):
        path.parent.mkdir(mode=0o700, exist_ok=True)
        self.path = path
        self.pid = os.getpid()
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(str(path))
        self.socket.setblocking(False)

    def wait(self, seconds):
        """Until rung (True), or `seconds` have passed (False); every ring so far is taken."""
        ready, _, _ = select.select([self.socket], [], [], seconds)
        if ready:
            with contextlib.suppress(BlockingIOError, InterruptedError):
                while True:
                    self.socket.recv(16)
        return bool(ready)

    def close(self):
        self.socket.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def ring(path=None):
    """Wake every pusher of this database (none waiting: nothing happens)."""
    path = path or directory()
    if path is None:
        return 0
    try:
        bells = [entry for entry in os.scandir(path) if entry.name.endswith(SUFFIX)]
    except FileNotFoundError:
        return 0
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sender.setblocking(False)
    rung = 0
    with sender:
        for bell in bells:
            try:
                sender.sendto(b"!", bell.path)
                rung += 1
            except OSError as error:
                if error.errno in (errno.ECONNREFUSED, errno.ENOENT):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(bell.path)  # its pusher is gone
                # EAGAIN: its buffer is full of rings it has not taken yet; it is awake anyway
    return rung


def ring_on_commit():
    """Ring once the current transaction commits (at once outside one): a pusher woken before
    the task is visible would find nothing and wait a whole poll."""
    transaction.on_commit(ring, using=Conf.ORM, robust=True)


class DoorbellORM(ORM):
    """The ORM broker, rung by whoever enqueues instead of polled every Conf.POLL."""

    bell = None

    def enqueue(self, task):
        # The ORM broker's create, without compiling an INSERT each time (every request enqueues).
        (package,) = rawsql.insert(
            [OrmQ(key=self.list_key or Conf.CLUSTER_NAME, payload=task, lock=timezone.now())], Conf.ORM
        )
        ring_on_commit()
        return package.pk

    def dequeue(self):
        tasks = self.claim()
        if tasks:
            return tasks
        bell = self.own_bell()
        if bell is None:
            time.sleep(Conf.POLL)
        else:
            bell.wait(Conf.POLL)
        return None

    def claim(self):
        """The ORM broker's dequeue without its sleep: up to Conf.BULK tasks, locked for this cluster."""
        tasks = self.get_connection().filter(key=self.list_key, lock__lt=timezone.now())[: Conf.BULK]
        claimed = []
        for task in tasks:
            if self.get_connection().filter(id=task.id, lock=task.lock).update(lock=self.timeout(task)):
                claimed.append((task.pk, task.payload))
        return claimed

    def own_bell(self):
        path = directory()
        if path is None:
            return None
        if self.bell is None or self.bell.pid != os.getpid():
            try:
                self.bell = Bell(path / f"{os.getpid()}-{uuid.uuid4().hex[:8]}{SUFFIX}")
            except OSError:
                return None  # a directory not ours, or no Unix sockets: polling still works
        return self.bell
