"""Which Intercom workspace the configured token writes to (GET /me), so that every cache of
Intercom's ids (contacts, companies, data attributes) is kept per workspace and a token of
another workspace never reuses them (docs/fidelity.md)."""

import logging

from django.db import transaction

from forwarding import intercom
from forwarding.delivery import connection, limiter
from forwarding.models import CompanyLink, ContactLink, DataAttribute, IntercomStatus

logger = logging.getLogger(__name__)

_known = {}  # {config key: workspace id}, learned once per process and configuration


def current(client=None):
    """The workspace id of the configured token, asked of Intercom once per process (and again
    after `forget`); when Intercom refused or did not answer, its Response instead."""
    key = connection.config_key()
    if key in _known:
        return _known[key]
    limiter.wait()  # GET /me counts against Intercom's rate limit like any request
    response = (client or intercom.client()).me()
    limiter.observe(response)
    connection.note(response)
    if not response.ok:
        return response
    app = (response.body.get("app") if isinstance(response.body, dict) else None) or {}
    workspace_id = str(app.get("id_code") or "")  # "" keeps the caches of before workspaces
    if workspace_id:
        adopt_unkeyed(workspace_id)
    connection.learned_workspace(workspace_id, str(app.get("name") or ""))
    if _known.get(key) != workspace_id:
        logger.info("Intercom workspace %s (%s)", workspace_id, app.get("name") or "unnamed")
    _known[key] = workspace_id
    return workspace_id


def checked(client=None):
    """`current`, after making sure the status row still names this process's workspace (a row
    rebuilt by another process, or another configuration, is learned again). Once per task."""
    key = connection.config_key()
    if key in _known:
        shown_id = IntercomStatus.objects.filter(name="intercom", config_key=key).values_list("workspace_id", flat=True)
        if shown_id.first() != _known[key]:
            _known.pop(key)
    return current(client)


def forget():
    """Ask Intercom again at the next use (after a refused token: it may now be another one's)."""
    _known.clear()


def shown():
    """The workspace the dashboard reads caches of: the one last learned for the configured
    connection, without asking Intercom ("" when none was learned yet)."""
    status = IntercomStatus.objects.filter(name="intercom", config_key=connection.config_key()).first()
    return status.workspace_id if status else ""


def adopt_unkeyed(workspace_id):
    """Caches written before workspaces were known (workspace "") belong to the first workspace
    learned, when no workspace has any yet: an upgrade keeps its contact and company ids."""
    models = (ContactLink, CompanyLink, DataAttribute)
    if not any(m.objects.filter(workspace="").exists() for m in models):
        return
    if any(m.objects.exclude(workspace="").exists() for m in models):
        return
    with transaction.atomic():
        for model in models:
            model.objects.filter(workspace="").update(workspace=workspace_id)
