"""django-q2 task entry points of the dashboard: they take primary keys."""

from dashboard import bulk


def run_bulk_resend(job_id):
    """One slice of a bulk resend; the next slice is a new task."""
    try:
        more = bulk.run(job_id, budget=bulk.SLICE_SECONDS)
    except Exception as exc:  # a bug or a lost database: the job says so instead of stalling
        bulk.fail(job_id, exc)
        raise
    if more:
        bulk.enqueue(job_id)


def resume_bulk_resends():
    return bulk.resume_stalled()
