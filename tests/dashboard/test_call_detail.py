"""A call's page: the payload, the Intercom requests it maps to now, warnings, attempts with their
exchanges, and the links out."""

import json

import pytest
from django.urls import reverse
from django.utils.html import escape

from forwarding import event_names, intercom
from forwarding.delivery import connection
from forwarding.mapping import DISABLED_REASON
from forwarding.models import CallType, CompanyLink, ContactLink, DataAttribute, EventName, IntercomStatus

pytestmark = pytest.mark.django_db


def detail(client, call):
    return client.get(reverse("admin:call_detail", args=[call.pk]))


def test_it_shows_the_payload_as_pretty_json(viewer_client, calls):
    call = calls(event="Order Completed")
    body = detail(viewer_client, call).content.decode()
    assert "&quot;event&quot;: &quot;Order Completed&quot;" in body
    assert '\n  "type"' in detail(viewer_client, call).context["detail"].payload_json


def test_it_shows_the_requests_the_call_maps_to_now(viewer_client, calls):
    call = calls(event="Order Completed", user_id="ada")
    planned = detail(viewer_client, call).context["detail"].planned
    assert [(p.method, p.path) for p in planned] == [
        ("GET", "/contacts/find_by_external_id/ada"),
        ("POST", "/events"),
    ]
    assert '"event_name": "Order Completed"' in planned[1].body
    # Once the contact is known, the lookup is not needed.
    ContactLink.objects.create(user_id="ada", contact_id="c-77")
    planned = detail(viewer_client, call).context["detail"].planned
    assert [(p.method, p.path) for p in planned] == [("POST", "/events")]


def test_a_renamed_event_maps_to_its_new_name(viewer_client, calls):
    target = EventName.objects.create(key="order placed", name="Order Placed")
    entry = EventName.objects.create(key="order completed", name="Order Completed")
    event_names.rename(entry, target.name)
    response = detail(viewer_client, calls(event="Order Completed"))
    assert response.context["detail"].forwarded_name == "Order Placed"
    assert '"event_name": "Order Placed"' in response.context["detail"].planned[-1].body
    body = response.content.decode()
    assert "forwarded as" in body
    assert f'href="{reverse("admin:delivery_log")}?event=Order+Completed"' in body


def test_a_group_call_maps_with_the_known_company_id(viewer_client, calls):
    ContactLink.objects.create(user_id="ada", contact_id="c-1")
    CompanyLink.objects.create(group_id="org-9", company_id="ic-9")
    planned = detail(viewer_client, calls(type=CallType.GROUP, group_id="org-9")).context["detail"].planned
    assert [(p.method, p.path) for p in planned] == [("POST", "/companies"), ("POST", "/contacts/c-1/companies")]
    assert '"id": "ic-9"' in planned[1].body


def test_a_skipped_call_says_why(viewer_client, calls):
    body = detail(viewer_client, calls(type=CallType.SCREEN, event="Home", state="skipped")).content.decode()
    assert "None: screen calls are not forwarded" in body


def test_a_call_that_turns_intercom_off_says_so_and_plans_nothing(viewer_client, calls):
    payload = {
        "type": "track",
        "userId": "ada",
        "event": "Quiet",
        "integrations": {"All": False},
        "timestamp": "2026-01-01T00:00:00Z",
    }
    call = calls(event="Quiet", state="skipped", payload=payload, last_error=DISABLED_REASON)
    response = detail(viewer_client, call)
    assert response.context["detail"].planned == []
    assert escape(DISABLED_REASON) in response.content.decode()


def known_group(calls, **traits):
    """A group call of a user and company whose Intercom ids are cached."""
    ContactLink.objects.create(user_id="ada", contact_id="c-1")
    CompanyLink.objects.create(group_id="org-9", company_id="ic-9")
    payload = {
        "type": "group",
        "userId": "ada",
        "groupId": "org-9",
        "traits": traits,
        "timestamp": "2026-01-01T00:00:00Z",
    }
    return calls(type=CallType.GROUP, group_id="org-9", payload=payload)


def test_a_company_removal_plans_its_detach(viewer_client, calls):
    response = detail(viewer_client, known_group(calls, remove=True))
    planned = response.context["detail"].planned
    assert [(p.method, p.path) for p in planned] == [
        ("GET", "/companies?company_id=org-9"),
        ("DELETE", "/contacts/c-1/companies/ic-9"),
    ]
    assert "/contacts/c-1/companies/ic-9" in response.content.decode()


def test_a_groups_tags_are_planned_after_its_company(viewer_client, calls):
    planned = detail(viewer_client, known_group(calls, tags="VIP")).context["detail"].planned
    assert [(p.method, p.path) for p in planned] == [
        ("POST", "/companies"),
        ("POST", "/tags"),
        ("POST", "/contacts/c-1/companies"),
    ]
    assert json.loads(planned[1].body) == {"name": "VIP", "companies": [{"id": "ic-9"}]}


def test_it_shows_warnings_and_every_attempt_with_its_exchanges(viewer_client, calls):
    call = calls(state="delivered", warnings=["properties.tags: joined with commas"], attempt_count=2)
    calls.attempt(call, outcome="retry", status=503, exchanges=[("POST", "/events", 503, '{"a": 1}', "busy")])
    calls.attempt(call, outcome="delivered", status=202, exchanges=[("POST", "/events", 202, '{"a": 1}', "{}")])
    response = detail(viewer_client, call)
    body = response.content.decode()
    assert "properties.tags: joined with commas" in body
    attempts = response.context["detail"].attempts
    assert [a.outcome for a in attempts] == ["delivered", "retry"]  # newest first
    assert body.count('class="exchanges"') == 2
    assert "Intercom-Version: 2.16" in body and "busy" in body
    assert "Authorization" not in body


def test_it_links_to_the_users_history_and_the_event_name(viewer_client, calls):
    EventName.objects.create(key="signed up", name="Signed Up")
    body = detail(viewer_client, calls(user_id="ada")).content.decode()
    assert f'href="{reverse("admin:user_history")}?q=ada"' in body
    assert f'href="{reverse("admin:event_names")}"' in body


def test_an_expired_payload_is_shown_as_gone_and_cannot_be_resent(operator_client, calls):
    call = calls(state="failed")
    call.payload = None
    call.save()
    response = detail(operator_client, call)
    body = response.content.decode()
    assert 'id="payload-gone"' in body
    assert 'id="resend-refusal"' in body and "no longer stored" in body
    assert 'id="resend-button"' not in body


def test_a_suppressed_call_says_its_resend_goes_out_past_the_archive(operator_client, calls):
    body = detail(operator_client, calls(state="suppressed")).content.decode()
    assert 'id="resend-button"' in body
    assert 'id="forced-note"' in body and "archived" in body
    assert 'id="forced-note"' not in detail(operator_client, calls(state="failed")).content.decode()


def test_an_unknown_call_is_404(viewer_client, db):
    assert viewer_client.get(reverse("admin:call_detail", args=[999999])).status_code == 404


def test_a_delivery_on_its_way_reloads_the_page(viewer_client, calls):
    assert detail(viewer_client, calls(state="delivering")).context["refresh"]
    assert not detail(viewer_client, calls(state="failed")).context["refresh"]


def test_the_page_costs_a_bounded_number_of_queries(viewer_client, calls, django_assert_max_num_queries):
    EventName.objects.create(key="signed up", name="Signed Up")
    call = calls(state="failed", attempt_count=30)
    for _ in range(30):
        calls.attempt(
            call, outcome="retry", status=503, exchanges=[("GET", "/x", 200, "", ""), ("POST", "/events", 503, "", "")]
        )
    with django_assert_max_num_queries(15):
        response = detail(viewer_client, call)
    assert len(response.context["detail"].attempts) == 20
    assert "10 earlier not shown" in response.content.decode()


NOW = "2026-03-01T12:00:00Z"


@pytest.fixture
def shown_workspace(db):
    """The configured connection writes to ws-1: the preview uses ws-1's ids and attributes."""
    IntercomStatus.objects.create(
        name="intercom", config_key=connection.config_key(), base_url=intercom.base_url(), workspace_id="ws-1"
    )
    return "ws-1"


def attribute(name, model="contact", workspace="ws-1", **fields):
    return DataAttribute.objects.create(workspace=workspace, model=model, name=name, **fields)


def body_of(planned, method, path):
    return json.loads(next(p.body for p in planned if (p.method, p.path) == (method, path)))


def test_an_identify_previews_its_custom_attributes_as_they_are_written_now(viewer_client, calls, shown_workspace):
    attribute("plan", alias="contact_plan")  # the companies hold "plan"
    attribute("tier")
    attribute("noisy", ignored=True, usable=False)
    attribute("shoe size", usable=False, refusal="invalid_name", reason="Name is not allowed")
    attribute("tier", workspace="ws-other", alias="somewhere_else")  # another workspace's: not used
    ContactLink.objects.create(workspace="ws-1", user_id="ada", contact_id="c-1")
    traits = {"email": "ada@example.com", "plan": "pro", "tier": "gold", "noisy": 3, "shoe size": 38, "fresh": "x"}
    call = calls(
        type=CallType.IDENTIFY,
        payload={"type": "identify", "userId": "ada", "messageId": "m-1", "timestamp": NOW, "traits": traits},
    )
    response = detail(viewer_client, call)
    planned = response.context["detail"].planned
    assert [(p.method, p.path) for p in planned] == [("PUT", "/contacts/c-1")]
    assert body_of(planned, "PUT", "/contacts/c-1")["custom_attributes"] == {
        "contact_plan": "pro",
        "tier": "gold",
        "fresh": "x",  # not known yet: created at its first write
    }
    written_as = (
        "custom attribute 'plan' written as 'contact_plan': "
        "Intercom's attribute names are shared by contacts and companies, and companies have it"
    )
    dropped = "custom attribute 'shoe size' dropped: Name is not allowed"
    warnings = response.context["detail"].mapping_warnings
    assert written_as in warnings and dropped in warnings
    assert not [w for w in warnings if "noisy" in w]  # ignored: dropped without a warning
    body = response.content.decode()
    warnings_html = body[body.index('id="warnings"') :][:3000]
    assert escape(written_as) in warnings_html and escape(dropped) in warnings_html


def test_a_group_previews_the_companys_attributes(viewer_client, calls, shown_workspace):
    attribute("tier", model="company", alias="company_tier")
    attribute("seats", model="company")
    call = calls(
        type=CallType.GROUP,
        group_id="org-9",
        payload={
            "type": "group",
            "userId": "ada",
            "groupId": "org-9",
            "messageId": "m-2",
            "timestamp": NOW,
            "traits": {"tier": "big", "seats": 5},
        },
    )
    response = detail(viewer_client, call)
    company = body_of(response.context["detail"].planned, "POST", "/companies")
    assert company["custom_attributes"] == {"company_tier": "big", "seats": 5}
    assert any(
        w.startswith("custom attribute 'tier' written as 'company_tier'")
        for w in response.context["detail"].mapping_warnings
    )


def test_an_identifys_companies_are_previewed_together(
    viewer_client, calls, shown_workspace, django_assert_max_num_queries
):
    attribute("tier", model="company", alias="company_tier")
    attribute("legacy", model="company", usable=False, refusal="limit", reason="limit reached")
    companies = [{"id": f"org-{n}", "name": f"Org {n}", "tier": f"t{n}", "legacy": n, "rank": n} for n in range(12)]
    call = calls(
        type=CallType.IDENTIFY,
        payload={
            "type": "identify",
            "userId": "ada",
            "messageId": "m-3",
            "timestamp": NOW,
            "traits": {"companies": companies},
        },
    )
    viewer_client.get(reverse("admin:index"))
    with django_assert_max_num_queries(16):
        response = detail(viewer_client, call)
    bodies = [json.loads(p.body) for p in response.context["detail"].planned if p.path == "/companies"]
    assert [b["custom_attributes"] for b in bodies] == [{"company_tier": f"t{n}", "rank": n} for n in range(12)]
    warnings = response.context["detail"].mapping_warnings
    assert warnings.count("custom attribute 'legacy' dropped: limit reached") == 1


def test_only_the_shown_workspaces_ids_are_used(viewer_client, calls, shown_workspace):
    ContactLink.objects.create(workspace="ws-old", user_id="ada", contact_id="c-old")
    CompanyLink.objects.create(workspace="ws-old", group_id="org-9", company_id="ic-old")
    planned = detail(viewer_client, calls(type=CallType.GROUP, group_id="org-9")).context["detail"].planned
    assert [(p.method, p.path) for p in planned] == [
        ("GET", "/contacts/find_by_external_id/ada"),
        ("POST", "/companies"),
        ("POST", "/contacts/{contact_id}/companies"),
    ]
    assert '"id": "{company_id}"' in planned[-1].body


def test_it_shows_the_rules_that_apply_and_the_payload_after_them(viewer_client, calls):
    from forwarding.models import Rule
    from forwarding.transformations import store

    rule = store.save(
        Rule(
            call_type="track",
            event="Order Completed",
            operations=[{"op": "rename_property", "from": "properties.plan", "to": "properties.tier"}],
        )
    )
    response = detail(viewer_client, calls(event="Order Completed"))
    body = response.content.decode()
    assert f'href="{reverse("admin:transformation_edit", args=[rule.pk])}"' in body
    assert '"tier": "pro"' in response.context["detail"].payload_after_json
    assert '"plan"' in response.context["detail"].payload_json  # the stored call is as received
    [planned_event] = [p for p in response.context["detail"].planned if p.path == "/events"]
    assert '"tier": "pro"' in planned_event.body
