"""Every page of the admin site answers for a superuser, with each of its filters: the ModelAdmins
(changelists, their filter values and search) and the relay's own pages."""

import pytest
from django.contrib import admin
from django.urls import reverse

from dashboard import bulk
from dashboard.filters import LogFilter
from dashboard.models import BulkResend

pytestmark = pytest.mark.django_db

MODEL_ADMINS = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


@pytest.fixture
def data(calls):
    call = calls(state="failed", error_cause="http_400", last_status=400)
    calls.attempt(call, outcome="failed", status=400, exchanges=[("POST", "/events", 400, "{}", "{}")])
    job = bulk.create(LogFilter(state="failed"))
    return call, job


@pytest.mark.parametrize(("model", "model_admin"), MODEL_ADMINS, ids=[m._meta.label for m, _ in MODEL_ADMINS])
def test_every_changelist_and_its_filters_answer(admin_client, data, model, model_admin):
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    response = admin_client.get(url)
    assert response.status_code == 200, url
    changelist = response.context["cl"]
    for spec in changelist.filter_specs:
        for choice in spec.choices(changelist):
            assert admin_client.get(url + choice["query_string"]).status_code == 200
    if model_admin.search_fields:
        assert admin_client.get(url + "?q=x").status_code == 200


def test_the_bulk_resend_list_never_counts_the_whole_table(admin_client, data):
    model_admin = admin.site._registry[BulkResend]
    assert model_admin.show_full_result_count is False
    assert model_admin.show_facets == admin.ShowFacets.NEVER
    assert not model_admin.date_hierarchy
    changelist = admin_client.get(reverse("admin:dashboard_bulkresend_changelist")).context["cl"]
    assert changelist.paginator.count == 1  # counted under a LIMIT


def test_a_bulk_resend_opens_its_progress_page(admin_client, data):
    _, job = data
    url = reverse("admin:dashboard_bulkresend_change", args=[job.pk])
    assert admin_client.get(url).url == reverse("admin:bulk_resend_job", args=[job.pk])
    body = admin_client.get(reverse("admin:dashboard_bulkresend_changelist")).content.decode()
    assert "state failed" in body and "0 of 1 (0%)" in body
    assert BulkResend.objects.count() == 1


def test_every_relay_page_answers(admin_client, data):
    call, job = data
    pages = [
        reverse("admin:index"),
        reverse("admin:delivery_log"),
        reverse("admin:call_detail", args=[call.pk]),
        reverse("admin:user_history"),
        reverse("admin:user_history") + "?q=ada",
        reverse("admin:bulk_resend"),
        reverse("admin:bulk_resend") + "?state=failed",
        reverse("admin:bulk_resend_job", args=[job.pk]),
        reverse("admin:event_names"),
        reverse("admin:data_attributes"),
        reverse("admin:delivery_log") + "?warned=1",
    ]
    for url in pages:
        assert admin_client.get(url).status_code == 200, url
