"""GET /health/worker: whether the workers deliver (the web's /health says only that the
database answers; a load balancer keeps checking that one)."""

from django.db import DatabaseError
from django.http import JsonResponse

from forwarding.delivery import watchdog


def worker_health(request):
    """200 when no delivery is overdue or a cluster has finished a task lately; else 503."""
    try:
        stalled = watchdog.stalled_clusters()
    except DatabaseError:
        return JsonResponse({"status": "unavailable", "message": "the database did not answer"}, status=503)
    if not stalled:
        return JsonResponse({"status": "ok"})
    # Public, like /health: no host names, only since when.
    known = [since for _, since in stalled if since]
    message = "deliveries are overdue and no worker has finished a task lately"
    since = min(known).isoformat() if known else None
    return JsonResponse({"status": "stalled", "message": message, "since": since}, status=503)
