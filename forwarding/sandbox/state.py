"""The sandbox's Intercom workspace in memory: contacts, companies, events and data attributes.

Behaviour and bodies follow Intercom's documentation and observed answers as recorded in the
project's reference (`reference/intercom-api.md`). Where Intercom documents no body, the choice is
marked "assumed" next to it. No Django and no ORM: one re-entrant lock guards everything, so the
threaded server may call any method from any thread.

Archived contacts are hidden, as Intercom hides them from find and search: every lookup except
unarchive treats them as absent, while creating the same external_id again answers the archived
variant of the 409.

Every change bumps `revision`; `document()` and `restore()` turn the workspace into JSON-ready
data and back, for the state file (persistence.py).
"""

import copy
import functools
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from forwarding.sandbox import shapes
from forwarding.sandbox.attributes import (
    DATA_TYPES,
    INVALID_NAME_MESSAGE,
    MODEL_WORDS,
    STANDARD_ATTRIBUTES,
    standard_attribute,
    valid_attribute_name,
)
from forwarding.sandbox.errors import ApiError, not_found_user
from forwarding.sandbox.search import field_value, matches, sort_key
from forwarding.sandbox.shapes import ADMIN_ID, company_list, event_summaries, sub_list

CONTACT_COMPANY_LIMIT = 1000  # documented: "Contact has reached the maximum of 1000 company associations"
METADATA_KEY_LIMIT = 10  # documented: further metadata keys are ignored
MONTHLY_SPEND_MAX = 2**31 - 1  # documented upper limit of company monthly_spend
SEARCH_PAGE_DEFAULT, SEARCH_PAGE_MAX = 50, 150
CONTACT_FIELDS = (
    "role",
    "external_id",
    "email",
    "email_verified",
    "phone",
    "name",
    "signed_up_at",
    "last_seen_at",
    "owner_id",
    "unsubscribed_from_emails",
)
COMPANY_FIELDS = ("name", "size", "website", "industry", "remote_created_at")
DOCUMENT_FORMAT = 1  # version of document(); restore() refuses any other


def changes(method):
    """Bump the workspace's revision after the method succeeds (the state file saves on a bump)."""

    @functools.wraps(method)
    def changing(self, *args, **kwargs):
        with self._lock:
            result = method(self, *args, **kwargs)
            self.revision += 1
            return result

    return changing


@dataclass
class ContactRecord:
    data: dict
    archived: bool = False
    created_at_monotonic: float = 0.0  # for the configurable search lag
    company_ids: list = field(default_factory=list)


class SandboxState:
    """One Intercom workspace. Public methods named like Intercom operations answer API calls
    (raising ApiError for Intercom's errors); the properties return deep-copied snapshots."""

    def __init__(self, config, clock=time.time):
        self.config = config  # SandboxConfig, read live: limits change at runtime
        self.clock = clock
        self._lock = threading.RLock()
        self.revision = 0
        self.reset()

    @changes
    def reset(self):
        """Forget everything, the workspace's id_code included: a new, empty workspace."""
        with self._lock:
            self._workspace = shapes.new_workspace(int(self.clock()))  # {"id_code", "created_at"}
            self._contacts = {}  # id -> ContactRecord
            self._external_ids = {}  # external_id -> id; unique, archived contacts included
            self._companies = {}  # id -> company dict
            self._company_ids = {}  # company_id (ours) -> id (Intercom's)
            self._events = []
            self._event_keys = set()  # (contact id, lower-cased name, created_at): Intercom's dedup key
            self._event_names = {}  # lower-cased name -> {"name", "active", "foreign"}
            self._attributes = []  # custom data attributes, in creation order
            self._tags = {}  # lower-cased name -> {"type": "tag", "id", "name"}; Intercom's names ignore case
            self._next_attribute_id = 100
            self._id_counter = 0
            self._id_prefix = secrets.token_hex(4)
            self.counters = Counter()

    # -- snapshots for tests and the control API ------------------------------------------

    @property
    def workspace_id(self):
        """This workspace's id_code, as GET /me answers it."""
        with self._lock:
            return self._workspace["id_code"]

    @property
    def contacts(self):
        """Every contact as Intercom renders it, plus `archived`."""
        with self._lock:
            return [{**self._render_contact(r), "archived": r.archived} for r in self._contacts.values()]

    @property
    def companies(self):
        with self._lock:
            return copy.deepcopy(list(self._companies.values()))

    @property
    def attachments(self):
        """Contact-company links as {"contact_id", "company_id"} (Intercom ids)."""
        with self._lock:
            return [
                {"contact_id": cid, "company_id": company}
                for cid, r in self._contacts.items()
                for company in r.company_ids
            ]

    @property
    def events(self):
        """Stored events (duplicates are not stored), oldest first."""
        with self._lock:
            return copy.deepcopy(self._events)

    @property
    def data_attributes(self):
        """Custom data attributes (the standard ones are fixed)."""
        with self._lock:
            return copy.deepcopy(self._attributes)

    @property
    def event_names(self):
        """{"active": [...], "archived": [...], "foreign": [...]}: names as first seen."""
        with self._lock:
            names = self._event_names.values()
            return {
                "active": [n["name"] for n in names if n["active"]],
                "archived": [n["name"] for n in names if not n["active"]],
                "foreign": [n["name"] for n in names if n["foreign"]],
            }

    def contact_by_external_id(self, external_id):
        """The contact (archived or not) with this external_id, or None."""
        with self._lock:
            record = self._by_external_id(external_id, include_archived=True)
            return {**self._render_contact(record), "archived": record.archived} if record else None

    def events_for(self, external_id):
        """Stored events of the contact with this external_id."""
        with self._lock:
            return [copy.deepcopy(e) for e in self._events if e["user_id"] == external_id]

    # -- seeding, for tests and for "someone else's" data ---------------------------------

    def add_contact(self, **fields):
        """Create a contact directly (no validation beyond the API's own rules); returns it."""
        return self.create_contact(fields)

    def add_data_attribute(self, name, model="contact", data_type="string", **extra):
        """Create a custom data attribute directly; returns it."""
        return self.create_data_attribute({"name": name, "model": model, "data_type": data_type, **extra})

    @changes
    def archive_data_attribute(self, name, model="contact"):
        """Archive a custom attribute (Intercom's UI can; it frees a slot of the limit)."""
        with self._lock:
            for attribute in self._attributes:
                if attribute["name"] == name and attribute["model"] == model:
                    attribute["archived"] = True
                    return copy.deepcopy(attribute)
            raise KeyError(name)

    @changes
    def prefill_event_names(self, names):
        """Mark event names as active, as if another sender used them (they take cap slots)."""
        with self._lock:
            for name in names:
                entry = self._event_names.setdefault(name.lower(), {"name": name, "active": True, "foreign": True})
                entry["active"] = True

    @changes
    def archive_event_names(self, names):
        """Archive event names, as an operator does in Intercom's UI: they stop taking slots."""
        with self._lock:
            for name in names:
                if name.lower() in self._event_names:
                    self._event_names[name.lower()]["active"] = False

    @changes
    def delete_contact_by_id(self, contact_id):
        """DELETE /contacts/{id}: the contact (archived or not) deleted for good; 404 when unknown."""
        with self._lock:
            record = self._contacts.get(contact_id)
            if record is None:
                raise not_found_user()
            answer = self.delete_contact(record.data["external_id"]) if record.data["external_id"] else None
            if answer is None:  # a lead has no external_id
                del self._contacts[contact_id]
                answer = {"type": "contact", "id": contact_id, "external_id": None, "deleted": True}
            return answer

    @changes
    def delete_contact(self, external_id):
        """Delete the contact (archived or not) with this external_id, as an operator can in
        Intercom's UI: its id goes stale. KeyError when there is none."""
        with self._lock:
            record = self._by_external_id(external_id, include_archived=True)
            if record is None:
                raise KeyError(external_id)
            contact_id = record.data["id"]
            del self._contacts[contact_id]
            del self._external_ids[external_id]
            for company_id in record.company_ids:
                self._companies[company_id]["user_count"] -= 1
            # Assumed: Intercom's permanent delete removes the user's data, events included.
            self._events = [e for e in self._events if e["intercom_user_id"] != contact_id]
            self._event_keys = {key for key in self._event_keys if key[0] != contact_id}
            self.counters["contacts.deleted"] += 1
            return {"type": "contact", "id": contact_id, "external_id": external_id, "deleted": True}

    # -- admin -----------------------------------------------------------------------------

    def me(self):
        """GET /me: the admin owning the token, with this workspace."""
        with self._lock:
            return shapes.admin(self._workspace)

    # -- contacts --------------------------------------------------------------------------

    @changes
    def create_contact(self, body):
        """POST /contacts: 200 with the contact, or 409 when the external_id is taken."""
        with self._lock:
            external_id = body.get("external_id")
            if external_id is not None:
                existing = self._by_external_id(external_id, include_archived=True)
                if existing:
                    raise self._conflict(existing)
            self._check_email_verified(body)
            attributes = self._checked_custom_attributes("contact", body.get("custom_attributes"))
            now = int(self.clock())
            contact_id = self._new_id()
            data = shapes.new_contact(contact_id, now, self._workspace["id_code"])
            self._apply_contact_fields(data, body, attributes)
            self._contacts[contact_id] = ContactRecord(data, created_at_monotonic=time.monotonic())
            if data["external_id"] is not None:
                self._external_ids[data["external_id"]] = contact_id
            self.counters["contacts.created"] += 1
            return self._render_contact(self._contacts[contact_id])

    @changes
    def update_contact(self, contact_id, body):
        """PUT /contacts/{id}: 200 with the contact; 404 when unknown or archived."""
        with self._lock:
            record = self._visible_contact(contact_id)
            external_id = body.get("external_id")
            if external_id is not None and external_id != record.data["external_id"]:
                existing = self._by_external_id(external_id, include_archived=True)
                if existing:
                    raise self._conflict(existing)
            self._check_email_verified(body)
            attributes = self._checked_custom_attributes("contact", body.get("custom_attributes"))
            previous = record.data["external_id"]
            self._apply_contact_fields(record.data, body, attributes)
            if record.data["external_id"] != previous:
                self._external_ids.pop(previous, None)
                if record.data["external_id"] is not None:
                    self._external_ids[record.data["external_id"]] = contact_id
            record.data["updated_at"] = int(self.clock())
            self.counters["contacts.updated"] += 1
            return self._render_contact(record)

    def get_contact(self, contact_id):
        """GET /contacts/{id}."""
        with self._lock:
            return self._render_contact(self._visible_contact(contact_id))

    def find_contact_by_external_id(self, external_id):
        """GET /contacts/find_by_external_id/{external_id}: users only, never archived ones."""
        with self._lock:
            record = self._by_external_id(external_id)
            if record is None or record.data["role"] != "user":
                raise not_found_user()
            return self._render_contact(record)

    def archive_contact(self, contact_id):
        """POST /contacts/{id}/archive."""
        return self._set_archived(contact_id, True)

    def unarchive_contact(self, contact_id):
        """POST /contacts/{id}/unarchive."""
        return self._set_archived(contact_id, False)

    def search_contacts(self, body):
        """POST /contacts/search: filters on contact fields and custom_attributes.<name>,
        archived contacts excluded, and contacts younger than `search_lag_seconds` too (Intercom's
        search is eventually consistent)."""
        with self._lock:
            query = body.get("query") or {}
            pagination = body.get("pagination") or {}
            per_page = min(max(int(pagination.get("per_page") or SEARCH_PAGE_DEFAULT), 1), SEARCH_PAGE_MAX)
            settled = time.monotonic() - self.config.search_lag_seconds
            found = [
                r
                for r in self._contacts.values()
                if not r.archived and r.created_at_monotonic <= settled and matches(r.data, query)
            ]
            sort = body.get("sort") or {}
            if sort.get("field"):
                found.sort(
                    key=lambda r: sort_key(field_value(r.data, sort["field"])),
                    reverse=sort.get("order", "descending") == "descending",
                )
            start = 0
            if pagination.get("starting_after"):
                ids = [r.data["id"] for r in found]
                cursor = pagination["starting_after"]
                start = ids.index(cursor) + 1 if cursor in ids else len(ids)
            page = found[start : start + per_page]
            total_pages = max(1, -(-len(found) // per_page))
            pages = {"type": "pages", "page": start // per_page + 1, "per_page": per_page, "total_pages": total_pages}
            if start + per_page < len(found):
                pages["next"] = {"page": start // per_page + 2, "starting_after": page[-1].data["id"]}
            return {
                "type": "list",
                "data": [self._render_contact(r) for r in page],
                "total_count": len(found),
                "pages": pages,
            }

    # -- data attributes -------------------------------------------------------------------

    def list_data_attributes(self, model=None, include_archived=False):
        """GET /data_attributes: standard then custom attributes, of one model or both."""
        with self._lock:
            models = [model] if model else ["contact", "company"]
            data = []
            for each in models:
                data += [standard_attribute(each, *spec) for spec in STANDARD_ATTRIBUTES[each]]
                data += [
                    copy.deepcopy(a)
                    for a in self._attributes
                    if a["model"] == each and (include_archived or not a["archived"])
                ]
            return {"type": "list", "data": data}

    @changes
    def create_data_attribute(self, body):
        """POST /data_attributes: 200 with the attribute; 400 parameter_invalid for a bad or
        taken name, a bad type, or a full workspace. Names are unique case-insensitively across
        both models' custom attributes and the model's own standard ones; an archived attribute
        keeps its name taken (Intercom does not document it; list with include_archived to see
        it) and does not count towards the limit."""
        with self._lock:
            name, model, data_type = body.get("name") or "", body.get("model"), body.get("data_type")
            if model not in MODEL_WORDS:
                raise ApiError(
                    400, "parameter_invalid", "The Data Attribute model field must be either contact or company"
                )
            if data_type not in DATA_TYPES:
                raise ApiError(400, "parameter_invalid", "Data Type isn't an option")
            if not valid_attribute_name(name):
                raise ApiError(400, "parameter_invalid", INVALID_NAME_MESSAGE)
            taken = self._attribute_taken(name, model)
            if taken:
                raise ApiError(
                    400,
                    "parameter_invalid",
                    f"You already have '{name}' in your {MODEL_WORDS[taken]} data. "
                    f"To save this as new {MODEL_WORDS[model]} data, use a different name.",
                )
            if data_type == "options" and len(body.get("options") or []) < 2:
                raise ApiError(400, "parameter_invalid", "A list attribute needs at least two options")  # assumed
            limit = self.config.data_attribute_limit
            if sum(1 for a in self._attributes if not a["archived"]) >= limit:
                # Assumed body: Intercom documents the limit (250 per workspace) but not its error.
                raise ApiError(
                    400,
                    "parameter_invalid",
                    f"You have reached the limit of {limit} custom data attributes. "
                    "Archive attributes you no longer need to create new ones.",
                )
            now = int(self.clock())
            attribute = {
                "id": self._next_attribute_id,
                "type": "data_attribute",
                "name": name,
                "full_name": f"custom_attributes.{name}",
                "label": name,
                "description": body.get("description", ""),
                # The answer's enum has no "datetime": Intercom stores those as dates.
                "data_type": "date" if data_type == "datetime" else data_type,
                "api_writable": True,
                "ui_writable": False,
                "messenger_writable": bool(body.get("messenger_writable", False)),
                "custom": True,
                "archived": False,
                "admin_id": ADMIN_ID,
                "created_at": now,
                "updated_at": now,
                "model": model,
            }
            if data_type == "options":
                attribute["options"] = [option.get("value") for option in body["options"]]
            self._next_attribute_id += 1
            self._attributes.append(attribute)
            self.counters["data_attributes.created"] += 1
            return copy.deepcopy(attribute)

    # -- events ----------------------------------------------------------------------------

    @changes
    def create_event(self, body):
        """POST /events: stores the event (202); a duplicate is accepted and not stored;
        404 for an unknown user; 422 when a new name would exceed the active-name limit."""
        with self._lock:
            self.counters["events.received"] += 1
            record = self._event_contact(body)
            if record is None:
                self.counters["events.user_not_found"] += 1
                raise not_found_user()
            name = body.get("event_name") or ""
            key = name.lower()  # Intercom compares event names case-insensitively
            dedup_key = (record.data["id"], key, body.get("created_at"))
            if dedup_key in self._event_keys:
                self.counters["events.duplicate"] += 1
                return None
            self._use_event_name(name)
            metadata = dict(list((body.get("metadata") or {}).items())[:METADATA_KEY_LIMIT])
            ignored = len(body.get("metadata") or {}) - len(metadata)
            if ignored:
                self.counters["events.metadata_keys_ignored"] += ignored
            self._event_keys.add(dedup_key)
            self._events.append(
                {
                    "type": "event",
                    "id": self._new_id(),
                    "event_name": name,
                    "created_at": body.get("created_at"),
                    "user_id": record.data["external_id"],
                    "intercom_user_id": record.data["id"],
                    "email": record.data["email"],
                    "metadata": metadata,
                }
            )
            self.counters["events.stored"] += 1
            return None

    def list_events(self, query):
        """GET /events?type=user&user_id=|email=|intercom_user_id= [&summary=true]."""
        with self._lock:
            if query.get("intercom_user_id"):
                record = self._visible_contact(query["intercom_user_id"])
            elif query.get("user_id"):
                record = self._by_external_id(query["user_id"])
            else:
                record = self._by_email(query.get("email"))
            if record is None:
                raise not_found_user()
            events = [e for e in self._events if e["intercom_user_id"] == record.data["id"]]
            answer = {
                "type": "event.summary",
                "intercom_user_id": record.data["id"],
                "user_id": record.data["external_id"],
                "email": record.data["email"],
                "pages": {"next": None},
            }
            if query.get("summary") is True:
                answer["events"] = event_summaries(events)
            else:
                answer["events"] = copy.deepcopy(events[::-1])  # newest first, as Intercom lists them
            return answer

    # -- companies -------------------------------------------------------------------------

    @changes
    def upsert_company(self, body):
        """POST /companies: create or update by company_id; 200 with the company."""
        with self._lock:
            company_id = body.get("company_id")
            if not company_id:
                # Assumed body: the sandbox needs company_id to look the company up.
                raise ApiError(400, "parameter_not_found", "company_id not specified")
            spend = body.get("monthly_spend")
            if isinstance(spend, int | float) and spend > MONTHLY_SPEND_MAX:
                raise ApiError(
                    400, "parameter_invalid", f"monthly_spend must not exceed {MONTHLY_SPEND_MAX}"
                )  # assumed
            attributes = self._checked_custom_attributes("company", body.get("custom_attributes"))
            now = int(self.clock())
            existing = self._company_ids.get(company_id)
            if existing:
                company = self._companies[existing]
                self.counters["companies.updated"] += 1
            else:
                company = shapes.new_company(company_id, self._new_id(), now, self._workspace["id_code"])
                self._companies[company["id"]] = company
                self._company_ids[company_id] = company["id"]
                self.counters["companies.created"] += 1
            for name in COMPANY_FIELDS:
                if name in body:
                    company[name] = body[name]
            if spend is not None:
                company["monthly_spend"] = int(spend)  # Intercom truncates floats
            if "plan" in body:
                company["plan"] = {"type": "plan", "id": f"plan-{body['plan']}", "name": body["plan"]}
            if body.get("update_last_request_at"):
                company["last_request_at"] = now
            company["custom_attributes"].update(attributes)
            company["updated_at"] = now
            return copy.deepcopy(company)

    def get_company(self, company_id):
        """GET /companies/{id} (Intercom's id)."""
        with self._lock:
            if company_id not in self._companies:
                raise ApiError(404, "company_not_found", "Company Not Found")
            return copy.deepcopy(self._companies[company_id])

    def find_companies(self, query):
        """GET /companies?company_id=|name=: a list, or 404 when a filter matches nothing."""
        with self._lock:
            found = [
                c
                for c in self._companies.values()
                if query.get("company_id") in (None, c["company_id"]) and query.get("name") in (None, c.get("name"))
            ]
            if not found and (query.get("company_id") or query.get("name")):
                raise ApiError(404, "company_not_found", "Company Not Found")
            return company_list(found)

    @changes
    def attach_company(self, contact_id, body):
        """POST /contacts/{id}/companies {"id": company id}: 200 with the company."""
        with self._lock:
            record = self._visible_contact(contact_id)
            company_id = body.get("id")
            if not company_id:
                raise ApiError(400, "parameter_not_found", "company not specified")
            if company_id not in self._companies:
                raise ApiError(404, "company_not_found", "Company Not Found")
            if company_id not in record.company_ids:
                if len(record.company_ids) >= CONTACT_COMPANY_LIMIT:
                    raise ApiError(
                        400,
                        "contact_company_limit_exceeded",
                        f"Contact has reached the maximum of {CONTACT_COMPANY_LIMIT} company associations",
                    )
                record.company_ids.append(company_id)
                self._companies[company_id]["user_count"] += 1
                self.counters["companies.attached"] += 1
            return copy.deepcopy(self._companies[company_id])

    @changes
    def detach_company(self, contact_id, company_id):
        """DELETE /contacts/{id}/companies/{company id}: 200 with the company."""
        with self._lock:
            record = self._visible_contact(contact_id)
            if company_id not in self._companies:
                raise ApiError(404, "company_not_found", "Company Not Found")
            if company_id in record.company_ids:
                record.company_ids.remove(company_id)
                self._companies[company_id]["user_count"] -= 1
            return copy.deepcopy(self._companies[company_id])

    @changes
    def create_tag(self, body):
        """POST /tags: create the tag (names ignore case), and tag or untag the companies listed by
        `id` or `company_id`; 200 with the tag. Tagging users is not served (the relay never does)."""
        with self._lock:
            name = body.get("name")
            if not isinstance(name, str) or not name.strip():
                raise ApiError(400, "parameter_invalid", "invalid tag parameters")
            if "users" in body:
                raise ApiError(400, "parameter_invalid", "the sandbox does not tag users")  # assumed
            targets = [self._tagged_company(item) for item in body.get("companies") or ()]
            tag = self._tags.get(name.lower())
            if tag is None:
                tag = {"type": "tag", "id": str(len(self._tags) + 100), "name": name}
                self._tags[name.lower()] = tag
                self.counters["tags.created"] += 1
            answer = {**tag, "users": [], "companies": []}
            for company, untag in targets:
                held = company["tags"]["tags"]
                present = any(t["id"] == tag["id"] for t in held)
                if untag:
                    held[:] = [t for t in held if t["id"] != tag["id"]]
                elif not present:
                    held.append(dict(tag))
                    self.counters["companies.tagged"] += 1
                answer["companies"].append({"id": company["id"], "tagged": not untag})
            return answer

    def _tagged_company(self, item):
        """(company, untag) for one item of a POST /tags companies list; 404 for an unknown company."""
        company = self._companies.get(item.get("id")) or self._companies.get(
            self._company_ids.get(item.get("company_id"))
        )
        if company is None:
            raise ApiError(404, "company_not_found", "Company Not Found")  # assumed: the description's example name
        return company, item.get("untag") is True

    @property
    def tags(self):
        """Every tag of the workspace."""
        with self._lock:
            return copy.deepcopy(list(self._tags.values()))

    def list_contact_companies(self, contact_id):
        """GET /contacts/{id}/companies."""
        with self._lock:
            record = self._visible_contact(contact_id)
            return company_list([self._companies[c] for c in record.company_ids])

    # -- the state file --------------------------------------------------------------------

    def document(self):
        """The whole workspace as JSON-ready data (a copy): what the state file holds. Settings
        and counters are not part of it."""
        with self._lock:
            return copy.deepcopy(
                {
                    "format": DOCUMENT_FORMAT,
                    "workspace": self._workspace,
                    "ids": {
                        "prefix": self._id_prefix,
                        "counter": self._id_counter,
                        "next_attribute_id": self._next_attribute_id,
                    },
                    "contacts": [
                        {"data": r.data, "archived": r.archived, "company_ids": r.company_ids}
                        for r in self._contacts.values()
                    ],
                    "companies": list(self._companies.values()),
                    "events": self._events,
                    "event_names": list(self._event_names.values()),
                    "data_attributes": self._attributes,
                    "tags": list(self._tags.values()),
                }
            )

    @changes
    def restore(self, document):
        """Replace the workspace with one document() returned; ValueError (and no change) when
        `document` is not one."""
        try:
            restored = _restored(copy.deepcopy(document))
        except (KeyError, TypeError, AttributeError, IndexError) as exc:
            raise ValueError(f"not a sandbox workspace: {type(exc).__name__} {exc}") from None
        with self._lock:
            for name, value in restored.items():
                setattr(self, name, value)

    # -- internals -------------------------------------------------------------------------

    def _new_id(self):
        # 24 hex digits like Intercom's ids; the random middle keeps ids unique across restarts,
        # so a relay that cached ids from an earlier sandbox never hits someone else's contact.
        self._id_counter += 1
        return f"{int(self.clock()):08x}{self._id_prefix}{self._id_counter:08x}"

    def _by_external_id(self, external_id, include_archived=False):
        record = self._contacts.get(self._external_ids.get(external_id))
        if record is None or (record.archived and not include_archived):
            return None
        return record

    def _by_email(self, email):
        for record in self._contacts.values():
            if email and record.data["email"] == email and not record.archived:
                return record
        return None

    def _visible_contact(self, contact_id):
        record = self._contacts.get(contact_id)
        if record is None or record.archived:
            raise not_found_user()
        return record

    def _event_contact(self, body):
        if body.get("id"):
            record = self._contacts.get(body["id"])
            return None if record is None or record.archived else record
        if body.get("user_id"):
            return self._by_external_id(body["user_id"])
        return self._by_email(body.get("email"))

    @changes
    def _set_archived(self, contact_id, archived):
        with self._lock:
            record = self._contacts.get(contact_id)
            if record is None:
                raise not_found_user()
            record.archived = archived
            self.counters["contacts.archived" if archived else "contacts.unarchived"] += 1
            return {
                "type": "contact",
                "id": contact_id,
                "external_id": record.data["external_id"],
                "archived": archived,
            }

    @staticmethod
    def _conflict(existing):
        prefix = "An archived contact" if existing.archived else "A contact"
        return ApiError(
            409, "conflict", f"{prefix} matching those details already exists with id={existing.data['id']}"
        )

    @staticmethod
    def _check_email_verified(body):
        # Documented in the 2.16 description; the message is assumed.
        if body.get("email_verified") is not None and not body.get("email"):
            raise ApiError(400, "parameter_invalid", "email_verified must be supplied together with email")

    def _checked_custom_attributes(self, model, values):
        """The custom attribute values, if each names an existing attribute and is a flat scalar."""
        values = values or {}
        known = {a["name"] for a in self._attributes if a["model"] == model and not a["archived"]}
        for name, value in values.items():
            if name not in known:
                # As Intercom words it for conversations ("Conversation attribute 'x' does not exist").
                raise ApiError(400, "parameter_invalid", f"Custom attribute '{name}' does not exist")
            if isinstance(value, dict | list):
                raise ApiError(
                    400, "parameter_invalid", f"Custom attribute '{name}' must be a string, number or boolean"
                )
        return dict(values)

    @staticmethod
    def _apply_contact_fields(data, body, attributes):
        for name in CONTACT_FIELDS:
            if name in body:
                data[name] = body[name]
        if "avatar" in body:
            data["avatar"] = {"type": "avatar", "image_url": body["avatar"]} if body["avatar"] else None
        data["email_domain"] = (data["email"] or "").rpartition("@")[2]
        data["custom_attributes"].update(attributes)

    def _render_contact(self, record):
        data = copy.deepcopy(record.data)
        base = f"/contacts/{data['id']}"
        companies = [{"type": "company", "id": c, "url": f"/companies/{c}"} for c in record.company_ids]
        data.update(
            {
                "social_profiles": {"type": "list", "data": []},
                "tags": sub_list([], f"{base}/tags"),
                "notes": sub_list([], f"{base}/notes"),
                "companies": sub_list(companies, f"{base}/companies"),
                "opted_out_subscription_types": sub_list([], f"{base}/subscriptions"),
                "opted_in_subscription_types": sub_list([], f"{base}/subscriptions"),
            }
        )
        return data

    def _attribute_taken(self, name, model):
        """The model whose data already has this name (case-insensitively), or None."""
        lowered = name.lower()
        if any(spec[0].lower() == lowered for spec in STANDARD_ATTRIBUTES[model]):
            return model
        for attribute in self._attributes:
            if attribute["name"].lower() == lowered:
                return attribute["model"]
        return None

    def _use_event_name(self, name):
        """Take a slot for a new (or archived) name; 422 when the active names fill the limit."""
        key = name.lower()
        entry = self._event_names.get(key)
        if entry and entry["active"]:
            return
        limit = self.config.event_name_limit
        active = sum(1 for n in self._event_names.values() if n["active"])
        if active >= limit:
            self.counters["events.name_limit_rejected"] += 1
            # Observed body: the code is the string "422", not a word.
            raise ApiError(422, "422", f"Cannot have more than {limit} active event names")
        if entry:
            entry["active"] = True
        else:
            self._event_names[key] = {"name": name, "active": True, "foreign": False}


def _restored(document):
    """SandboxState's private fields from a document(); the indexes are rebuilt, not trusted."""
    if document.get("format") != DOCUMENT_FORMAT:
        raise ValueError(f"unknown sandbox workspace format {document.get('format')!r}")
    workspace, ids = document["workspace"], document["ids"]
    contacts = {}
    for item in document["contacts"]:
        # Restored contacts are old: the search lag is long over for them.
        record = ContactRecord(dict(item["data"]), bool(item["archived"]), 0.0, list(item["company_ids"]))
        contacts[record.data["id"]] = record
    companies = {company["id"]: dict(company) for company in document["companies"]}
    events = [dict(event) for event in document["events"]]
    attributes = [dict(attribute) for attribute in document["data_attributes"]]
    return {
        "_workspace": {"id_code": str(workspace["id_code"]), "created_at": int(workspace["created_at"])},
        "_contacts": contacts,
        "_external_ids": {r.data["external_id"]: i for i, r in contacts.items() if r.data["external_id"] is not None},
        "_companies": companies,
        "_company_ids": {company["company_id"]: i for i, company in companies.items()},
        "_events": events,
        "_event_keys": {(e["intercom_user_id"], e["event_name"].lower(), e["created_at"]) for e in events},
        "_event_names": {
            n["name"].lower(): {"name": n["name"], "active": bool(n["active"]), "foreign": bool(n["foreign"])}
            for n in document["event_names"]
        },
        "_attributes": attributes,
        "_tags": {tag["name"].lower(): dict(tag) for tag in document.get("tags", [])},  # absent in older files
        # Never below an id in the file, even a hand-edited one: ids must not be given twice.
        "_next_attribute_id": max([int(ids["next_attribute_id"]), *(int(a["id"]) + 1 for a in attributes)]),
        "_id_prefix": str(ids["prefix"]),
        "_id_counter": int(ids["counter"]),
    }
