"""The Intercom request sequence of one attempt, per call type (the mapping table in docs/delivery.md),
as a Result.

Every cache of Intercom's state it reads heals itself from Intercom's answer (docs/fidelity.md): a
cached contact Intercom no longer knows is looked up again, a custom attribute it no longer has
is created again, and the request is tried once more at once; only a second refusal stands."""

import re

from django.utils import timezone

from forwarding.delivery import attributes, policy, workspace
from forwarding.delivery.result import Result, Stop
from forwarding.models import CompanyLink, ContactLink, Outcome

EXISTING_ID = re.compile(r"id=([0-9a-zA-Z]+)")
ANONYMOUS_GROUP = "anonymous group: the company is created; attaching waits for an identify with this anonymousId"


def send(log, mapped, user_id):
    """Send what `mapped` asks for; returns a Result."""
    warnings = list(mapped.warnings)
    found = workspace.current(log.client)
    if not isinstance(found, str):  # GET /me refused or unanswered: nothing can be sent
        return judged(found, warnings)
    log.workspace = found
    try:
        if mapped.contact is not None:
            status = identify(log, mapped, warnings)
        elif mapped.company is not None:
            status = group(log, mapped, user_id, warnings)
        elif mapped.detach:
            status = detach_user(log, mapped, user_id)
        else:
            status = track(log, mapped, user_id)
    except Stop as stop:
        stop.result.warnings = warnings + stop.result.warnings
        if stop.result.outcome == Outcome.AUTH:
            workspace.forget()  # once accepted again, the token may be another workspace's
        return stop.result
    except attributes.Refused as refused:
        return judged(refused.response, warnings)
    return Result(Outcome.DELIVERED, status, warnings=warnings)


def judged(response, warnings):
    """The Result of an unsuccessful answer outside the call's own requests."""
    result = policy.judge(response, warnings)
    if result.outcome == Outcome.AUTH:
        workspace.forget()  # once accepted again, the token may be another workspace's
    return result


def check(response, warnings=()):
    if not response.ok:
        raise Stop(policy.judge(response, warnings))
    return response


def identify(log, mapped, warnings):
    external_id = mapped.contact["external_id"]
    for last_try in (False, True):
        notes = []
        body, written = with_attributes(log, "contact", dict(mapped.contact), notes, mapped.date_attributes)
        response = write_contact(log, external_id, body)
        missing = attributes.missing_in_answer(response)
        if missing is None or last_try:
            break
        attributes.forget(log.workspace, "contact", missing)  # archived in Intercom since it was cached
    warnings += notes
    check(response)
    attributes.count_written(log.workspace, "contact", written)
    if response.body["id"] != log.contacts.get(external_id):  # new, or changed
        remember_contact(log, external_id, response.body["id"])
    for company in mapped.companies:
        attach(
            log, response.body["id"], company, warnings, mapped.company_date_attributes, tags=tags_of(mapped, company)
        )
    for group_id in mapped.detach:
        detach(log, response.body["id"], group_id)
    return response.status


def write_contact(log, external_id, body):
    """Update the cached contact, or find, update or create it when none is cached (or the cached
    one is gone: deleted or archived in Intercom since)."""
    contact_id = linked_contact(log, external_id)
    if contact_id:
        response = log.intercom.update_contact(contact_id, body)
        if response.status != 404:
            return response
        forget_contact(log, external_id)
    return upsert_contact(log, body)


def upsert_contact(log, body):
    """Find by external_id, then update or create; a 409 is resolved by updating the contact it names."""
    found = log.intercom.find_contact(body["external_id"])
    if found.ok:
        return log.intercom.update_contact(found.body["id"], body)
    if found.status != 404:
        return found
    created = log.intercom.create_contact({**body, "role": "user"})
    if created.status != 409:
        return created
    match = EXISTING_ID.search(created.error_message)
    if not match:
        return created
    if "archived" in created.error_message.lower():
        check(log.intercom.unarchive_contact(match.group(1)))
    return log.intercom.update_contact(match.group(1), body)


def linked_contact(log, user_id):
    """The cached Intercom contact id of a user, or None; the task may have fetched it already
    (`log.contacts`)."""
    if user_id not in log.contacts:
        links = ContactLink.objects.filter(workspace=log.workspace, user_id=user_id)
        link = links.values_list("contact_id", flat=True).first()
        log.contacts[user_id] = link
    return log.contacts[user_id]


def linked_contacts(workspace_id, user_ids):
    """{userId: cached contact id or None} for many users at once (a task's, for its logs)."""
    contacts = dict.fromkeys(user_ids)
    links = ContactLink.objects.filter(workspace=workspace_id, user_id__in=list(contacts))
    contacts.update(links.values_list("user_id", "contact_id"))
    return contacts


def remember_contact(log, user_id, contact_id):
    ContactLink.objects.update_or_create(
        workspace=log.workspace, user_id=user_id, defaults={"contact_id": contact_id, "updated_at": timezone.now()}
    )
    log.contacts[user_id] = contact_id


def forget_contact(log, user_id):
    ContactLink.objects.filter(workspace=log.workspace, user_id=user_id).delete()
    log.contacts[user_id] = None


def contact_for(log, user_id):
    """The Intercom contact id of a user (cached, or looked up); None when Intercom has none."""
    contact_id = linked_contact(log, user_id)
    if contact_id:
        return contact_id
    found = log.intercom.find_contact(user_id)
    if found.status == 404:
        return None
    check(found)
    remember_contact(log, user_id, found.body["id"])
    return found.body["id"]


def track(log, mapped, user_id):
    cached = linked_contact(log, user_id)
    if contact_for(log, user_id) is None:
        raise Stop(Result.waiting(None, "Intercom has no contact for this user yet"))
    response = log.intercom.create_event(mapped.event)
    if response.status == 404 and cached:
        forget_contact(log, user_id)  # the cached contact is gone: look again, and try once more
        if contact_for(log, user_id) is not None:
            response = log.intercom.create_event(mapped.event)
    if response.status == 404:
        forget_contact(log, user_id)
        raise Stop(Result.waiting(response, "Intercom answered User Not Found"))
    return check(response).status


def group(log, mapped, user_id, warnings):
    if not user_id:  # the company needs no contact: created now, attached once the user is known
        upsert_company(log, mapped.company, warnings, mapped.company_date_attributes, tags_of(mapped, mapped.company))
        raise Stop(Result(Outcome.WAITING, error=ANONYMOUS_GROUP, cause="anonymous"))
    contact_id = contact_for(log, user_id)
    if contact_id is None:
        raise Stop(Result.waiting(None, "Intercom has no contact for this user yet"))
    tags = tags_of(mapped, mapped.company)
    response = attach(log, contact_id, mapped.company, warnings, mapped.company_date_attributes, user_id, tags)
    return response.status


def tags_of(mapped, company):
    """The tag names of one of the call's companies."""
    return [name for group_id, name in mapped.tags if group_id == company["company_id"]]


def attach(log, contact_id, company, warnings, date_keys=frozenset(), user_id=None, tags=()):
    """Create or update the company and tag it, then attach the contact to it. A contact or company
    Intercom no longer knows is resolved again once (`user_id`: the contact's, when it may be looked up)."""
    company_id = upsert_company(log, company, warnings, date_keys, tags)
    response = log.intercom.attach_company(contact_id, company_id)
    if response.status == 404 and response.error_code == "not_found" and user_id:
        forget_contact(log, user_id)  # the cached contact is gone: look again, and try once more
        contact_id = contact_for(log, user_id)
        if contact_id is not None:
            response = log.intercom.attach_company(contact_id, company_id)
    if response.status == 404 and response.error_code == "not_found":
        raise Stop(Result.waiting(response, "Intercom answered User Not Found"))
    return check(response)


def upsert_company(log, company, warnings, date_keys=frozenset(), tags=()):
    """Create or update the company (its attributes created first), then tag it; returns Intercom's id."""
    group_id = company["company_id"]
    for last_try in (False, True):
        notes = []
        body, written = with_attributes(log, "company", dict(company), notes, date_keys)
        upserted = log.intercom.upsert_company(body)
        missing = attributes.missing_in_answer(upserted)
        if missing is None or last_try:
            break
        attributes.forget(log.workspace, "company", missing)
    warnings += notes
    check(upserted)
    attributes.count_written(log.workspace, "company", written)
    company_id = upserted.body["id"]
    CompanyLink.objects.update_or_create(
        workspace=log.workspace, group_id=group_id, defaults={"company_id": company_id, "updated_at": timezone.now()}
    )
    for name in tags:  # tagging again is harmless: Intercom holds a tag once per company
        check(log.intercom.tag_company(name, company_id))
    return company_id


def detach_user(log, mapped, user_id):
    """A group call with `remove: true`: the user's contact detached from the company."""
    contact_id = contact_for(log, user_id)
    if contact_id is None:
        raise Stop(Result.waiting(None, "Intercom has no contact for this user yet"))
    return detach(log, contact_id, mapped.detach[0])


def detach(log, contact_id, group_id):
    """Detach the contact from the company whose company_id is `group_id`; a company Intercom does
    not know, or one the contact is not attached to, needs nothing."""
    found = log.intercom.find_company(group_id)
    if found.status == 404:
        return found.status
    check(found)
    body = found.body if isinstance(found.body, dict) else {}
    companies = body.get("data") if body.get("type") == "list" else [body]
    if not companies:
        return found.status
    response = log.intercom.detach_company(contact_id, companies[0]["id"])
    if response.status == 404 and response.error_code == "company_not_found":
        return response.status
    return check(response).status


def with_attributes(log, model, body, warnings, date_keys=frozenset()):
    """The body with its custom attributes under the names Intercom holds them (created first
    when allowed), and the traits written; what cannot be written is dropped with a warning."""
    values = body.pop("custom_attributes", None) or {}
    kept, traits = attributes.written(log, log.workspace, model, values, warnings, date_keys)
    if kept:
        body["custom_attributes"] = kept
    return body, {*traits, *kept}  # the traits, and the aliases they were written under
