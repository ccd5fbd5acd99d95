"""The Intercom requests of one attempt, per call type (DESIGN.md §5), as outcomes."""

import re
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from forwarding import policy
from forwarding.mapping import custom_attribute_types
from forwarding.models import CompanyLink, ContactLink, DataAttribute, Outcome

EXISTING_ID = re.compile(r"id=([0-9a-zA-Z]+)")


@dataclass
class Result:
    """What an attempt came to."""

    outcome: str
    status: int | None = None
    error: str = ""
    cause: str = ""
    wait_seconds: float | None = None
    warnings: list = field(default_factory=list)

    @classmethod
    def of(cls, response, warnings=()):
        """The result of an unsuccessful response, judged by the retry policy."""
        verdict = policy.judge(response)
        return cls(verdict.outcome, verdict.status, verdict.error, verdict.cause, verdict.wait_seconds, list(warnings))

    @classmethod
    def waiting(cls, response, reason):
        return cls(Outcome.WAITING, response.status if response else None, reason, "user_unknown")


class Stop(Exception):
    """An unsuccessful response that ends the attempt (carried as a Result)."""

    def __init__(self, result):
        self.result = result


def send(log, mapped, user_id):
    """Send what `mapped` asks for; returns a Result."""
    warnings = list(mapped.warnings)
    try:
        if mapped.contact is not None:
            status = identify(log, mapped, warnings)
        elif mapped.company is not None:
            status = group(log, mapped, user_id, warnings)
        else:
            status = track(log, mapped, user_id)
    except Stop as stop:
        stop.result.warnings = warnings + stop.result.warnings
        return stop.result
    return Result(Outcome.DELIVERED, status, warnings=warnings)


def check(response, warnings=()):
    if not response.ok:
        raise Stop(Result.of(response, warnings))
    return response


def identify(log, mapped, warnings):
    body = dict(mapped.contact)
    body = with_attributes(log, "contact", body, warnings, mapped.date_attributes)
    external_id = body["external_id"]
    contact_id = linked_contact(log, external_id)
    response = None
    if contact_id:
        response = log.send("update_contact", contact_id, body)
        if response.status == 404:  # deleted or archived in Intercom since we cached it
            forget_contact(log, external_id)
            contact_id = None
    if contact_id is None:
        response = upsert_contact(log, body)
    check(response)
    if response.body["id"] != log.contacts.get(external_id):  # new, or changed
        remember_contact(log, external_id, response.body["id"])
    for company in mapped.companies:
        attach(log, response.body["id"], company, warnings, mapped.company_date_attributes)
    return response.status


def upsert_contact(log, body):
    """Find by external_id, then update or create; a 409 is resolved by updating the contact it names."""
    found = log.send("find_contact", body["external_id"])
    if found.ok:
        return log.send("update_contact", found.body["id"], body)
    if found.status != 404:
        return found
    created = log.send("create_contact", {**body, "role": "user"})
    if created.status != 409:
        return created
    match = EXISTING_ID.search(created.error_message)
    if not match:
        return created
    if "archived" in created.error_message.lower():
        check(log.send("unarchive_contact", match.group(1)))
    return log.send("update_contact", match.group(1), body)


def linked_contact(log, user_id):
    """The cached Intercom contact id of a user, or None; the task may have fetched it already
    (`log.contacts`)."""
    if user_id not in log.contacts:
        link = ContactLink.objects.filter(user_id=user_id).values_list("contact_id", flat=True).first()
        log.contacts[user_id] = link
    return log.contacts[user_id]


def linked_contacts(user_ids):
    """{userId: cached contact id or None} for many users at once (a task's, for its logs)."""
    contacts = dict.fromkeys(user_ids)
    contacts.update(ContactLink.objects.filter(user_id__in=list(contacts)).values_list("user_id", "contact_id"))
    return contacts


def remember_contact(log, user_id, contact_id):
    ContactLink.objects.update_or_create(
        user_id=user_id, defaults={"contact_id": contact_id, "updated_at": timezone.now()}
    )
    log.contacts[user_id] = contact_id


def forget_contact(log, user_id):
    ContactLink.objects.filter(user_id=user_id).delete()
    log.contacts[user_id] = None


def contact_for(log, user_id):
    """The Intercom contact id of a user (cached, or looked up); None when Intercom has none."""
    contact_id = linked_contact(log, user_id)
    if contact_id:
        return contact_id
    found = log.send("find_contact", user_id)
    if found.status == 404:
        return None
    check(found)
    remember_contact(log, user_id, found.body["id"])
    return found.body["id"]


def track(log, mapped, user_id):
    if contact_for(log, user_id) is None:
        raise Stop(Result.waiting(None, "Intercom has no contact for this user yet"))
    response = log.send("create_event", mapped.event)
    if response.status == 404:
        forget_contact(log, user_id)
        raise Stop(Result.waiting(response, "Intercom answered User Not Found"))
    return check(response).status


def group(log, mapped, user_id, warnings):
    contact_id = contact_for(log, user_id)
    if contact_id is None:
        raise Stop(Result.waiting(None, "Intercom has no contact for this user yet"))
    response = attach(log, contact_id, mapped.company, warnings, mapped.company_date_attributes)
    return response.status


def attach(log, contact_id, company, warnings, date_keys=frozenset()):
    """Create or update the company, then attach the contact to it."""
    body = with_attributes(log, "company", dict(company), warnings, date_keys)
    upserted = check(log.send("upsert_company", body))
    company_id = upserted.body["id"]
    CompanyLink.objects.update_or_create(
        group_id=body["company_id"], defaults={"company_id": company_id, "updated_at": timezone.now()}
    )
    response = log.send("attach_company", contact_id, company_id)
    if response.status == 404 and response.error_code == "not_found":
        raise Stop(Result.waiting(response, "Intercom answered User Not Found"))
    return check(response)


def with_attributes(log, model, body, warnings, date_keys=frozenset()):
    """The body with only the custom attributes that exist (created first when allowed)."""
    attributes = body.get("custom_attributes") or {}
    if not attributes:
        body.pop("custom_attributes", None)
        return body
    usable = ensure_attributes(log, model, attributes, warnings, date_keys)
    kept = {name: value for name, value in attributes.items() if name in usable}
    if kept:
        body["custom_attributes"] = kept
    else:
        body.pop("custom_attributes")
    return body


def ensure_attributes(log, model, attributes, warnings, date_keys=frozenset()):
    """Names among `attributes` that Intercom will store; the rest are dropped with a warning."""
    known = dict(DataAttribute.objects.filter(model=model, name__in=list(attributes)).values_list("name", "usable"))
    missing = [name for name in attributes if name not in known]
    if missing:
        refresh_attributes(log, model)
        known = dict(DataAttribute.objects.filter(model=model, name__in=list(attributes)).values_list("name", "usable"))
        missing = [name for name in attributes if name not in known]
    types = custom_attribute_types({name: attributes[name] for name in missing}, date_keys)
    for name in missing:
        if not settings.INTERCOM_CREATE_ATTRIBUTES:
            warnings.append(f"custom attribute {name!r} dropped: it does not exist in Intercom")
            continue
        created = log.send("create_data_attribute", model, name, types.get(name, "string"))
        if created.ok:
            DataAttribute.objects.update_or_create(model=model, name=name, defaults={"data_type": types.get(name, "")})
            known[name] = True
        elif policy.judge(created).outcome == Outcome.FAILED:
            reason = created.error_message[:255]
            DataAttribute.objects.update_or_create(model=model, name=name, defaults={"usable": False, "reason": reason})
            known[name] = False
        else:
            raise Stop(Result.of(created))
    for name, usable in known.items():
        if not usable:
            warnings.append(f"custom attribute {name!r} dropped: Intercom refused to create it")
    return {name for name, usable in known.items() if usable}


def refresh_attributes(log, model):
    """Cache the workspace's custom data attributes of `model`."""
    listed = check(log.send("list_data_attributes", model))
    for item in listed.body.get("data", []) if isinstance(listed.body, dict) else []:
        if item.get("custom") and item.get("name"):
            DataAttribute.objects.update_or_create(
                model=model, name=item["name"], defaults={"data_type": item.get("data_type", ""), "usable": True}
            )
