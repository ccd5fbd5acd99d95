"""Settings of the benchmarks' processes: the relay's own, with a queue name of their own.

Only the django-q2 cluster name changes, so that a benchmark run never takes or leaves tasks
on a Redis (or database) that something else uses under the default name.
"""

import os

from config.settings import *  # noqa: F403
from config.settings import Q_CLUSTER

Q_CLUSTER = {**Q_CLUSTER, "name": os.environ.get("BENCH_Q_NAME", "relay-bench")}
