"""API tokens: created and revoked by staff users, shown once, stored hashed.

Anyone who may view the dashboard may hold tokens (a Viewer's token reads, an Operator's also
acts: the API checks the same roles). Each user sees and revokes their own tokens; superusers see
and revoke everyone's. The new token is shown in the answer to the POST that created it, never
stored in clear nor put in the session, and never logged (the admin log names its prefix)."""

from django.contrib import messages
from django.contrib.admin.models import ADDITION
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone

from dashboard.models import ApiToken
from dashboard.views.common import VIEW, Action, Page, audit
from forwarding.ingestion import browser

NAME_MAX = ApiToken._meta.get_field("name").max_length
SHOWN = 200


def urls(site):
    def page(view):
        return site.admin_view(view.as_view(site=site))

    return [
        path("api-tokens/", page(Tokens), name="api_tokens"),
        path("api-tokens/create/", page(Create), name="api_token_create"),
        path("api-tokens/<relay_id:pk>/revoke/", page(Revoke), name="api_token_revoke"),
    ]


def visible(user):
    """The tokens `user` may see and revoke: their own, or (a superuser) everyone's."""
    tokens = ApiToken.objects.select_related("user")
    return tokens if user.is_superuser else tokens.filter(user=user)


class Tokens(Page):
    template_name = "dashboard/api_tokens.html"
    title = "API tokens"

    def get(self, request):
        return self.page(request)

    def page(self, request, new_token=None, created=None, error="", typed="", status=200):
        api_url = f"{browser.public_url(request)}/api/v1/"
        return self.render(
            request,
            {
                "tokens": list(visible(request.user)[:SHOWN]),
                "shown_limit": SHOWN,
                "all_users": request.user.is_superuser,
                "new_token": new_token,
                "created": created,
                "error": error,
                "typed": typed,
                "name_max": NAME_MAX,
                "api_url": api_url,
                "schema_url": f"{api_url}schema/",
                "curl": f'curl -H "Authorization: Bearer {new_token}" {api_url}status/' if new_token else "",
            },
            status=status,
        )


class TokenAction(Action):
    # A Viewer's token reads through the API: anyone who may view the dashboard manages their own.
    permission = VIEW


class Create(TokenAction):
    template_name = Tokens.template_name
    title = Tokens.title

    def post(self, request):
        typed = request.POST.get("name", "")
        name = typed.strip()
        problem = ""
        if not name:
            problem = "A token needs a name (what it is for, e.g. 'deploy script')."
        elif len(name) > NAME_MAX:
            problem = f"A token's name is at most {NAME_MAX} characters."
        page = Tokens(site=self.site)
        page.setup(request)
        if problem:
            return page.page(request, error=f"No token created: {problem}", typed=typed[:NAME_MAX], status=400)
        token, clear = ApiToken.issue(request.user, name)
        audit(request, token, f"Created API token '{name}' ({token.prefix}…).", flag=ADDITION)
        # Shown in this answer only: never stored, so never shown again.
        return page.page(request, new_token=clear, created=token, status=201)


class Revoke(TokenAction):
    def post(self, request, pk):
        token = visible(request.user).filter(pk=pk).first()
        if token is None:
            raise Http404("No such API token.")
        if token.revoked_at is not None:
            messages.info(request, f"The token '{token.name}' was already revoked.")
        elif ApiToken.objects.filter(pk=pk, revoked_at__isnull=True).update(revoked_at=timezone.now()):
            whose = "" if token.user_id == request.user.pk else f" of {token.user.get_username()}"
            audit(request, token, f"Revoked API token '{token.name}' ({token.prefix}…){whose}.")
            messages.success(request, f"Revoked the token '{token.name}' ({token.prefix}…): it no longer works.")
        return HttpResponseRedirect(reverse("admin:api_tokens"))
