"""The data-attributes page (docs/fidelity.md): the custom data attributes the relay writes to the
shown workspace, contacts' and companies', with the usage of Intercom's limit, the names Intercom
refused and why, and the operators' actions. The rules are forwarding.delivery.attributes' verbs; this
module only reads and asks."""

import re

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse

from dashboard.queries.attributes import ATTRIBUTES_SHOWN, data_attributes
from dashboard.views.common import Action, Page, attribute_usage, audit, shown_workspace
from forwarding.delivery import attributes
from forwarding.models import DataAttribute

ALIAS_MAX = 190
ALIAS_PATTERN = re.compile(r"[A-Za-z0-9 _-]+")
ALIAS_RULE = f"letters, digits, spaces, hyphens and underscores only, at most {ALIAS_MAX} characters"
# The gauge turns amber, then red, as the workspace's limit fills (as the header's badge).
AMBER_ABOVE = 0.8
RED_FROM = 0.95
MODELS = [("contact", "Contact attributes"), ("company", "Company attributes")]


def urls(site):
    def page(view):
        return site.admin_view(view.as_view(site=site))

    return [
        path("attributes/", page(Attributes), name="data_attributes"),
        path("attributes/<relay_id:pk>/retry/", page(Retry), name="data_attribute_retry"),
        path("attributes/<relay_id:pk>/alias/", page(SetAlias), name="data_attribute_alias"),
        path("attributes/<relay_id:pk>/ignore/", page(Ignore), name="data_attribute_ignore"),
        path("attributes/<relay_id:pk>/unignore/", page(StopIgnoring), name="data_attribute_unignore"),
    ]


def status_of(row):
    """(key, label) of one attribute row, as the table shows it."""
    if row.ignored:
        return "ignored", "Ignored"
    if row.refusal:
        return "refused", f"Refused: {row.get_refusal_display().lower()}"
    if row.alias:
        return "aliased", "Aliased"
    if row.usable:
        return "active", "Active"
    return "pending", "To be created"


def level(usage):
    return "red" if usage.share >= RED_FROM else "amber" if usage.share > AMBER_ABOVE else "green"


class Attributes(Page):
    template_name = "dashboard/attributes.html"
    title = "Data attributes"

    def get(self, request):
        return self.page(request)

    def page(self, request, errors=None, status=200):
        """The page; `errors` ({pk: (message, value typed)}) shows a refused form's error."""
        workspace = shown_workspace(request)
        rows = data_attributes(workspace)
        errors = errors or {}
        for row in rows:
            row.status_key, row.status_label = status_of(row)
            row.alias_error, row.alias_typed = errors.get(row.pk, ("", None))
        usage = attribute_usage(request)
        return self.render(
            request,
            {
                "workspace": workspace,
                "usage": usage,
                "usage_level": level(usage),
                "tables": [
                    {"model": model, "title": title, "rows": [r for r in rows if r.model == model]}
                    for model, title in MODELS
                ],
                "refused": [r for r in rows if r.refusal],
                "capped": len(rows) >= ATTRIBUTES_SHOWN,
                "shown_limit": ATTRIBUTES_SHOWN,
                "errors": [message for message, _ in errors.values()],
                "alias_max": ALIAS_MAX,
                "alias_rule": ALIAS_RULE,
                "create_attributes": settings.INTERCOM_CREATE_ATTRIBUTES,
            },
            status=status,
        )


class AttributeAction(Action):
    """A POST on one attribute row of the shown workspace (404 for any other), by an operator
    (403 without forwarding.operate, checked before anything is read); written to the admin log."""

    def post(self, request, pk):
        row = DataAttribute.objects.filter(pk=pk, workspace=shown_workspace(request)).first()
        if row is None:
            raise Http404("No such data attribute in this workspace.")
        response = self.act(request, row)
        return response or HttpResponseRedirect(reverse("admin:data_attributes"))

    def act(self, request, row):
        raise NotImplementedError


def label(row):
    return f"{row.model} attribute '{row.name}'"


class Retry(AttributeAction):
    """Create a refused attribute again at its next write."""

    def act(self, request, row):
        if not row.refusal:
            messages.info(request, f"The {label(row)} is not refused.")
            return None
        attributes.retry(row)
        was = row.reason or row.get_refusal_display().lower()
        done = f"Retrying the {label(row)} (refused: {was})"
        audit(request, row, f"{done}.")
        messages.success(request, f"{done}: the next call that carries it asks Intercom to create it again.")
        return None


class SetAlias(AttributeAction):
    """Write the trait under another attribute name from now on (its own name: no alias)."""

    template_name = Attributes.template_name
    title = Attributes.title

    def act(self, request, row):
        typed = request.POST.get("alias", "")
        alias = typed.strip()
        problem = alias_problem(alias)
        if problem:
            page = Attributes(site=self.site)
            page.setup(request)
            return page.page(request, errors={row.pk: (f"Not changed: {problem}", typed[:300])}, status=400)
        attributes.set_alias(row, alias)
        if alias == row.name:
            done = f"The {label(row)} is written under its own name again" + (
                f" (was '{row.alias}')" if row.alias else ""
            )
        else:
            done = f"The {label(row)} is written as '{alias}'" + (f" (was '{row.alias}')" if row.alias else "")
        audit(request, row, f"{done}.")
        messages.success(request, f"{done}, from its next write.")
        return None


def alias_problem(alias):
    """Why `alias` cannot be an attribute name, or ""."""
    if not alias:
        return "an alias cannot be empty."
    if len(alias) > ALIAS_MAX:
        return f"an alias is at most {ALIAS_MAX} characters ({len(alias)} given)."
    if not ALIAS_PATTERN.fullmatch(alias):
        return f"{alias!r} is not a valid attribute name ({ALIAS_RULE})."
    return ""


class Ignore(AttributeAction):
    """Drop the trait's values without a warning."""

    def act(self, request, row):
        if row.ignored:
            messages.info(request, f"The {label(row)} is already ignored.")
            return None
        attributes.ignore(row)
        done = f"Ignoring the {label(row)}: its values are dropped without a warning"
        audit(request, row, f"{done}.")
        messages.success(request, f"{done}.")
        return None


class StopIgnoring(AttributeAction):
    def act(self, request, row):
        if not row.ignored:
            messages.info(request, f"The {label(row)} is not ignored.")
            return None
        attributes.ignore(row, ignored=False)
        done = (
            f"Stopped ignoring the {label(row)}: its values are sent again "
            "(or dropped with a warning while it is refused)"
        )
        audit(request, row, f"{done}.")
        messages.success(request, f"{done}.")
        return None
