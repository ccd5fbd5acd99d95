"""The data-attributes page: the attributes the relay writes to the shown workspace, Intercom's
limit, refused names, and the operators' Retry, Set alias and Ignore (each in the admin log)."""

import re
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from forwarding import intercom
from forwarding.delivery import connection
from forwarding.models import DataAttribute, IntercomStatus
from tests.dashboard.conftest import client_for

pytestmark = pytest.mark.django_db

PAGE = reverse("admin:data_attributes")
WORKSPACE = "ws-shown"


@pytest.fixture(autouse=True)
def shown_workspace(db):
    """The configured connection has learned its workspace: the dashboard shows that one's rows."""
    IntercomStatus.objects.create(
        name="intercom",
        config_key=connection.config_key(),
        base_url=intercom.base_url(),
        workspace_id=WORKSPACE,
        last_success_at=timezone.now(),
    )


def attribute(name, model="contact", workspace=WORKSPACE, **fields):
    fields.setdefault("data_type", "string")
    return DataAttribute.objects.create(workspace=workspace, model=model, name=name, **fields)


@pytest.fixture
def rows():
    written = timezone.now() - timedelta(days=2)
    return {
        "tier": attribute(
            "tier", first_written_at=written, last_written_at=timezone.now(), calls_written=42, data_type="string"
        ),
        "plan": attribute("plan", alias="contact_plan", calls_written=7),
        "contact_plan": attribute("contact_plan", calls_written=7),
        "bad": attribute(
            "bad.name",
            usable=False,
            refusal=DataAttribute.Refusal.INVALID_NAME,
            reason="Name contains invalid characters",
            calls_dropped=5,
        ),
        "noisy": attribute("noisy", ignored=True, usable=False),
        "seats": attribute("seats", model="company", data_type="integer", calls_written=3),
        "extra": attribute(
            "extra",
            model="company",
            usable=False,
            refusal=DataAttribute.Refusal.LIMIT,
            reason="You have reached the limit of custom attributes",
            calls_dropped=12,
        ),
    }


def text(html):
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def section(body, element_id):
    start = body.index(f'id="{element_id}"')
    return body[start : body.index("</section>", start)]


def row_html(body, name, model="contact"):
    table = section(body, f"attributes-{model}")
    start = table.index(f'data-name="{name}"')
    return table[start : table.index("</tr>", start)]


def post(client, name, row, **data):
    return client.post(reverse(f"admin:data_attribute_{name}", args=[row.pk]), data)


def test_a_viewer_sees_both_tables_the_gauge_and_the_refused_names_without_forms(viewer_client, rows):
    response = viewer_client.get(PAGE)
    assert response.status_code == 200
    body = response.content.decode()
    # Intercom holds tier, contact_plan and seats (usable, no alias) of its 250.
    assert "3 of 250" in text(section(body, "attribute-gauge"))
    contact, company = section(body, "attributes-contact"), section(body, "attributes-company")
    assert re.findall(r'data-name="([^"]+)"', contact) == ["bad.name", "contact_plan", "noisy", "plan", "tier"]
    assert re.findall(r'data-name="([^"]+)"', company) == ["extra", "seats"]
    statuses = dict(re.findall(r'data-name="([^"]+)" data-status="([^"]+)"', body))
    assert statuses == {
        "bad.name": "refused",
        "contact_plan": "active",
        "noisy": "ignored",
        "plan": "aliased",
        "tier": "active",
        "extra": "refused",
        "seats": "active",
    }
    tier = text(row_html(body, "tier"))
    assert "its own name" in tier and "string" in tier and " 42 " in tier and "Active" in tier
    assert "contact_plan" in text(row_html(body, "plan"))
    assert "Refused: invalid name" in text(row_html(body, "bad.name"))
    refused = text(section(body, "refused-names"))
    assert "bad.name" in refused and "Name contains invalid characters" in refused and " 5 " in refused
    assert "extra" in refused and "You have reached the limit of custom attributes" in refused and " 12 " in refused
    assert "tier" not in refused
    main = body.split('id="content-main"')[1]
    assert "<form" not in main and "<button" not in main and "csrfmiddlewaretoken" not in main
    assert not re.search(r"action-(retry|alias|ignore|unignore)|Set alias", main)


def test_an_operator_sees_the_forms(operator_client, rows):
    body = operator_client.get(PAGE).content.decode()
    assert reverse("admin:data_attribute_retry", args=[rows["bad"].pk]) in body
    assert reverse("admin:data_attribute_retry", args=[rows["tier"].pk]) not in body  # not refused
    assert reverse("admin:data_attribute_unignore", args=[rows["noisy"].pk]) in body
    assert reverse("admin:data_attribute_ignore", args=[rows["tier"].pk]) in body
    assert reverse("admin:data_attribute_alias", args=[rows["seats"].pk]) in body
    assert "csrfmiddlewaretoken" in body


def test_only_the_shown_workspaces_rows_are_listed(viewer_client, rows):
    attribute("elsewhere", workspace="ws-other")
    attribute("unkeyed", workspace="")
    body = viewer_client.get(PAGE).content.decode()
    assert 'data-name="elsewhere"' not in body and 'data-name="unkeyed"' not in body
    assert 'data-name="tier"' in body


def test_an_operator_retries_a_refused_name(operator, rows):
    client = client_for(operator)
    response = post(client, "retry", rows["bad"])
    assert response.status_code == 302 and response.url == PAGE
    row = DataAttribute.objects.get(pk=rows["bad"].pk)
    assert (row.usable, row.refusal, row.reason) == (False, "", "")
    entry = LogEntry.objects.get()
    assert (entry.user, entry.object_id, entry.object_repr) == (operator, str(row.pk), "contact.bad.name")
    assert entry.change_message == (
        "Retrying the contact attribute 'bad.name' (refused: Name contains invalid characters)."
    )
    page = client.get(PAGE).content.decode()
    assert "Retrying the contact attribute" in page  # the message
    assert 'data-name="bad.name" data-status="pending"' in page and "To be created" in page


def test_an_operator_sets_an_alias(operator, operator_client, rows):
    response = post(operator_client, "alias", rows["seats"], alias="  seat count ")
    assert response.status_code == 302
    row = DataAttribute.objects.get(pk=rows["seats"].pk)
    assert (row.alias, row.written_as, row.usable) == ("seat count", "seat count", False)
    entry = LogEntry.objects.get()
    assert entry.user == operator
    assert entry.change_message == "The company attribute 'seats' is written as 'seat count'."
    body = operator_client.get(PAGE).content.decode()
    assert "<code>seat count</code>" in row_html(body, "seats", "company")
    assert 'data-name="seats" data-status="aliased"' in body


def test_an_alias_equal_to_the_name_removes_the_alias(operator_client, rows):
    post(operator_client, "alias", rows["plan"], alias="plan")
    assert DataAttribute.objects.get(pk=rows["plan"].pk).alias == ""
    assert LogEntry.objects.get().change_message == (
        "The contact attribute 'plan' is written under its own name again (was 'contact_plan')."
    )


@pytest.mark.parametrize(
    ("alias", "problem"),
    [
        ("", "cannot be empty"),
        ("   ", "cannot be empty"),
        ("plan.v2", "is not a valid attribute name"),
        ("naïve$", "is not a valid attribute name"),
        ("x" * 191, "at most 190 characters"),
    ],
)
def test_a_bad_alias_is_refused_with_the_form_and_nothing_changes(operator_client, rows, alias, problem):
    before = DataAttribute.objects.get(pk=rows["tier"].pk)
    response = post(operator_client, "alias", rows["tier"], alias=alias)
    assert response.status_code == 400
    body = response.content.decode()
    assert problem in text(body.split('id="attribute-errors"')[1][:600])
    assert problem in text(row_html(body, "tier"))  # beside the form it came from, open
    assert '<details class="alias" open>' in row_html(body, "tier")
    after = DataAttribute.objects.get(pk=rows["tier"].pk)
    assert (after.alias, after.usable, after.updated_at) == (before.alias, before.usable, before.updated_at)
    assert not LogEntry.objects.exists()


def test_an_alias_of_190_characters_is_accepted(operator_client, rows):
    assert post(operator_client, "alias", rows["tier"], alias="a-b_c 1" + "x" * 183).status_code == 302
    assert len(DataAttribute.objects.get(pk=rows["tier"].pk).alias) == 190


def test_an_operator_ignores_and_stops_ignoring(operator_client, rows):
    post(operator_client, "ignore", rows["tier"])
    assert DataAttribute.objects.get(pk=rows["tier"].pk).ignored
    body = operator_client.get(PAGE).content.decode()
    assert 'data-name="tier" data-status="ignored"' in body
    assert reverse("admin:data_attribute_unignore", args=[rows["tier"].pk]) in body
    post(operator_client, "unignore", rows["tier"])
    assert not DataAttribute.objects.get(pk=rows["tier"].pk).ignored
    assert list(LogEntry.objects.order_by("pk").values_list("change_message", flat=True)) == [
        "Ignoring the contact attribute 'tier': its values are dropped without a warning.",
        "Stopped ignoring the contact attribute 'tier': its values are sent again "
        "(or dropped with a warning while it is refused).",
    ]


def test_a_viewers_post_is_refused_and_changes_nothing(viewer_client, rows):
    for name, row, data in [
        ("retry", rows["bad"], {}),
        ("alias", rows["tier"], {"alias": "other"}),
        ("ignore", rows["tier"], {}),
        ("unignore", rows["noisy"], {}),
    ]:
        assert post(viewer_client, name, row, **data).status_code == 403, name
    assert DataAttribute.objects.get(pk=rows["bad"].pk).refusal == DataAttribute.Refusal.INVALID_NAME
    assert DataAttribute.objects.get(pk=rows["tier"].pk).alias == ""
    assert DataAttribute.objects.get(pk=rows["noisy"].pk).ignored
    assert not LogEntry.objects.exists()


def test_actions_need_a_csrf_token(operator, rows):
    client = client_for(operator, csrf=True)
    assert post(client, "ignore", rows["tier"]).status_code == 403
    assert not DataAttribute.objects.get(pk=rows["tier"].pk).ignored


def test_actions_are_posts_only(operator_client, rows):
    response = operator_client.get(reverse("admin:data_attribute_ignore", args=[rows["tier"].pk]))
    assert response.status_code == 405


def test_an_unknown_or_other_workspaces_attribute_is_404(operator_client, rows):
    other = attribute("elsewhere", workspace="ws-other", usable=False, refusal="other")
    assert post(operator_client, "retry", other).status_code == 404
    for name in ("retry", "alias", "ignore", "unignore"):
        assert operator_client.post(reverse(f"admin:data_attribute_{name}", args=[987654])).status_code == 404
    assert DataAttribute.objects.get(pk=other.pk).refusal == "other"


def test_the_sidebar_links_the_page(viewer_client):
    body = viewer_client.get(reverse("admin:index")).content.decode()
    assert f'href="{PAGE}"' in body and "Data attributes" in body


def test_the_page_costs_a_bounded_number_of_queries(viewer_client, rows, django_assert_max_num_queries):
    for n in range(200):
        attribute(f"trait {n}", model=["contact", "company"][n % 2])
    with django_assert_max_num_queries(12):
        response = viewer_client.get(PAGE)
    assert response.status_code == 200
    assert "203 of 250" in response.content.decode()
