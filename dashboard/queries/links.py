"""The Intercom ids the relay has cached for a workspace: a user's contact, groups' companies."""

from forwarding.models import CompanyLink, ContactLink


def contact_id(workspace, user_id):
    """The Intercom contact id cached for `user_id` in `workspace`, or ""."""
    found = ContactLink.objects.filter(workspace=workspace, user_id=user_id).values_list("contact_id", flat=True)
    return found.first() or ""


def company_ids(workspace, group_ids):
    """{groupId: Intercom company id} for those of `group_ids` cached in `workspace`."""
    found = CompanyLink.objects.filter(workspace=workspace, group_id__in=group_ids)
    return dict(found.values_list("group_id", "company_id"))
