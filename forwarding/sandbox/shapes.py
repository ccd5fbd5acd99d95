"""Intercom's objects as its API renders them: new contacts and companies, lists, summaries."""

import copy
import secrets
import string
import time

ADMIN_ID = "1000001"
WORKSPACE_NAME = "Intercom Relay Sandbox"
ID_CODE_ALPHABET = string.ascii_lowercase + string.digits  # as in Intercom's app ids, e.g. "ab12cd34"


def new_workspace(now):
    """A new workspace's identity: a random 8-character id_code and when it was created."""
    return {"id_code": "".join(secrets.choice(ID_CODE_ALPHABET) for _ in range(8)), "created_at": now}


def admin(workspace):
    """GET /me: the admin owning the token, with its workspace (app)."""
    return {
        "type": "admin",
        "id": ADMIN_ID,
        "email": "sandbox@intercom-relay.invalid",
        "name": WORKSPACE_NAME,
        "email_verified": True,
        "app": {
            "type": "app",
            "id_code": workspace["id_code"],
            "name": WORKSPACE_NAME,
            "created_at": workspace["created_at"],
            "secure": False,
            "identity_verification": False,
            "timezone": "UTC",
            "region": "US",
        },
        "avatar": {"type": "avatar", "image_url": None},
        "has_inbox_seat": True,
    }


def new_contact(contact_id, now, workspace_id):
    """A contact with every field Intercom answers, before the request's fields are applied."""
    return {
        "type": "contact",
        "id": contact_id,
        "workspace_id": workspace_id,
        "external_id": None,
        "role": "user",
        "email": "",  # Intercom's examples send "" for a missing email, and the schema says string
        "email_domain": "",
        "phone": None,
        "name": None,
        "avatar": None,
        "owner_id": None,
        "has_hard_bounced": False,
        "marked_email_as_spam": False,
        "unsubscribed_from_emails": False,
        "created_at": now,
        "updated_at": now,
        "signed_up_at": None,
        "last_seen_at": None,
        "last_replied_at": None,
        "last_contacted_at": None,
        "last_email_opened_at": None,
        "last_email_clicked_at": None,
        "language_override": None,
        "browser": None,
        "browser_version": None,
        "browser_language": None,
        "os": None,
        "location": {
            "type": "location",
            "country": None,
            "region": None,
            "city": None,
            "country_code": None,
            "continent_code": None,
        },
        "custom_attributes": {},
    }


def new_company(company_id, intercom_id, now, workspace_id):
    """A company with every field Intercom answers, before the request's fields are applied."""
    return {
        "type": "company",
        "company_id": company_id,
        "id": intercom_id,
        "app_id": workspace_id,
        "created_at": now,
        "updated_at": now,
        "monthly_spend": 0,
        "session_count": 0,
        "user_count": 0,
        "tags": {"type": "tag.list", "tags": []},
        "segments": {"type": "segment.list", "segments": []},
        "plan": {},
        "custom_attributes": {},
    }


def sub_list(data, url):
    """A contact's embedded list (tags, notes, companies, subscriptions)."""
    return {"type": "list", "data": data, "url": url, "total_count": len(data), "has_more": False}


def company_list(companies):
    """A one-page list of companies."""
    return {
        "type": "list",
        "data": copy.deepcopy(companies),
        "pages": {"type": "pages", "next": None, "page": 1, "per_page": 50, "total_pages": 1},
        "total_count": len(companies),
    }


def event_summaries(events):
    """GET /events?summary=true: per name (case-insensitively), count and first/last times."""
    summary = {}
    for event in events:
        item = summary.setdefault(
            event["event_name"].lower(),
            {"name": event["event_name"], "first": event["created_at"], "last": event["created_at"], "count": 0},
        )
        item["count"] += 1
        item["first"] = min(item["first"], event["created_at"])
        item["last"] = max(item["last"], event["created_at"])
    return [{**item, "first": iso_time(item["first"]), "last": iso_time(item["last"])} for item in summary.values()]


def iso_time(seconds):
    return time.strftime("%Y-%m-%dT%H:%M:%S.000+00:00", time.gmtime(seconds))
