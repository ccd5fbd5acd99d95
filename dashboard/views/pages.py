"""Overview, delivery log, call detail, user history and bulk resend (issue 5)."""

from django.urls import path

from dashboard.views import bulk, calls, log, overview, users


def urls(site):
    def page(view):
        return site.admin_view(view.as_view(site=site))

    return [
        # The overview replaces the admin's index (patterns listed first win).
        path("", page(overview.Overview), name="index"),
        path("log/", page(log.Log), name="delivery_log"),
        path("calls/<relay_id:pk>/", page(calls.CallDetail), name="call_detail"),
        path("calls/<relay_id:pk>/resend/", page(calls.Resend), name="call_resend"),
        path("calls/<relay_id:pk>/expunge/", page(calls.Expunge), name="call_expunge"),
        path("users/", page(users.UserHistory), name="user_history"),
        path("users/resend-failed/", page(users.ResendFailed), name="user_resend_failed"),
        path("users/forget/", page(users.ForgetUser), name="user_forget"),
        path("resend/", page(bulk.Confirm), name="bulk_resend"),
        path("resend/start/", page(bulk.Start), name="bulk_resend_start"),
        path("resend/<relay_id:pk>/", page(bulk.Job), name="bulk_resend_job"),
        path("resend/<relay_id:pk>/cancel/", page(bulk.Cancel), name="bulk_resend_cancel"),
    ]
