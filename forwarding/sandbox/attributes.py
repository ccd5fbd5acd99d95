"""Data attributes: the standard ones every workspace has, and Intercom's naming rules."""

import unicodedata

DATA_TYPES = ("string", "integer", "float", "boolean", "date", "datetime", "options")
INVALID_NAME_MESSAGE = (
    "Your name for this attribute must only contain alphanumeric characters, currency symbols, and hyphens"
)
MODEL_WORDS = {"contact": "people", "company": "company"}  # as Intercom words its duplicate-name error
STANDARD_ATTRIBUTES = {
    "contact": [
        ("name", "name", "Name", "string"),
        ("email", "email", "Email", "string"),
        ("phone", "phone", "Phone", "string"),
        ("external_id", "external_id", "User ID", "string"),
        ("role", "role", "Role", "string"),
        ("owner_id", "owner_id", "Owner", "integer"),
        ("signed_up_at", "signed_up_at", "Signed up", "date"),
        ("last_seen_at", "last_seen_at", "Last seen", "date"),
        ("created_at", "created_at", "First seen", "date"),
        ("updated_at", "updated_at", "Updated at", "date"),
        ("unsubscribed_from_emails", "unsubscribed_from_emails", "Unsubscribed from emails", "boolean"),
        ("avatar", "avatar", "Avatar", "string"),
    ],
    "company": [
        ("name", "name", "Company name", "string"),
        ("company_id", "company_id", "Company ID", "string"),
        ("last_request_at", "last_request_at", "Company last seen", "date"),
        ("remote_created_at", "remote_created_at", "Company created at", "date"),
        ("user_count", "user_count", "People", "integer"),
        ("session_count", "session_count", "Company web sessions", "integer"),
        ("name", "plan.name", "Plan", "string"),
        ("monthly_spend", "monthly_spend", "Monthly Spend", "float"),
        ("size", "size", "Company size", "integer"),
        ("industry", "industry", "Company industry", "string"),
        ("website", "website", "Company website", "string"),
        ("id", "id", "ID", "string"),
        ("created_at", "created_at", "Created at", "date"),
        ("updated_at", "updated_at", "Updated at", "date"),
    ],
}


def standard_attribute(model, name, full_name, label, data_type):
    """A standard (non-custom) attribute as GET /data_attributes lists it."""
    return {
        "type": "data_attribute",
        "name": name,
        "full_name": full_name,
        "label": label,
        "description": label,
        "data_type": data_type,
        "api_writable": name not in ("id", "created_at", "updated_at", "user_count", "session_count"),
        "ui_writable": False,
        "messenger_writable": True,
        "custom": False,
        "archived": False,
        "model": model,
    }


def valid_attribute_name(name):
    """Alphanumerics, spaces, hyphens, underscores and currency symbols, as Intercom's error says
    (its examples include spaces). '$' is refused: Intercom forbids it in attribute keys."""
    return bool(name) and all(
        ch.isalnum() or ch in " -_" or (unicodedata.category(ch) == "Sc" and ch != "$") for ch in name
    )
