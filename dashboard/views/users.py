"""One user's history: their calls in the order received, their Intercom contact and companies,
and "resend this user's failed calls"."""

from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone

from dashboard import bulk
from dashboard.filters import LogFilter
from dashboard.queries import cursors
from dashboard.queries.people import find_people, recent_users, user_history
from dashboard.views.common import Action, Page, audit, shown_workspace
from forwarding import privacy
from forwarding.models import Forgotten, IntercomDeletion, State

FORGOTTEN_SHOWN = 20


class UserHistory(Page):
    template_name = "dashboard/user_history.html"
    title = "User history"

    def get(self, request):
        text = (request.GET.get("q") or "").strip()[:255]
        people = find_people(text) if text else []
        person = people[0] if len(people) == 1 else None
        base = reverse("admin:user_history")
        log = reverse("admin:delivery_log")
        context = {
            "q": text,
            "people": [(p, f"{base}?{urlencode({'q': p.label})}") for p in people],
            "person": person,
            "history": None,
            "forgotten": list(Forgotten.objects.order_by("-requested_at", "-pk")[:FORGOTTEN_SHOWN]) if not text else [],
            "recent": [(u, f"{base}?{urlencode({'q': u})}") for u in recent_users()] if not text else [],
        }
        if person is not None:
            cursor = request.GET.get("earlier") or request.GET.get("later") or ""
            bad_cursor = cursors.cursor_problem("earlier" if request.GET.get("earlier") else "later", cursor)
            context["problems"] = [bad_cursor] if bad_cursor else []
            history = user_history(person, shown_workspace(request), cursor=cursor, newer="later" in request.GET)
            self.title = f"User history: {person.label}"
            in_log = LogFilter(user=person.user_id) if person.user_id else LogFilter(q=person.label)
            context.update(
                history=history,
                earlier_url=f"{base}?{urlencode({'q': text, 'earlier': history.earlier})}" if history.earlier else "",
                later_url=f"{base}?{urlencode({'q': text, 'later': history.later})}" if history.later else "",
                log_url=log + in_log.query(),
                failed_log_url=log + LogFilter(user=person.user_id, state=State.FAILED).query()
                if person.user_id
                else "",
            )
        return self.render(request, context)


class ResendFailed(Action):
    """Every failed delivery of the user, oldest first, made due again (recorded as a bulk resend)."""

    def post(self, request):
        user_id = (request.POST.get("user_id") or "").strip()[:255]
        back = f"{reverse('admin:user_history')}?{urlencode({'q': user_id})}"
        if not user_id:
            messages.error(request, "No user given.")
            return HttpResponseRedirect(reverse("admin:user_history"))
        job = bulk.create(LogFilter(user=user_id, state=State.FAILED), request.user, timezone.now())
        if not job.total:
            job.delete()
            messages.info(request, f"No failed calls of {user_id} to resend.")
            return HttpResponseRedirect(back)
        bulk.run(job.pk)
        job.refresh_from_db()
        audit(request, job, f"Resent the failed calls of user {user_id}: {job.reopened} of {job.total}.")
        messages.success(request, f"Resending {job.reopened} failed calls of {user_id}: their new attempts show below.")
        return HttpResponseRedirect(back)


class ForgetUser(Action):
    """A privacy request: the user's stored data expunged, their Intercom contact deleted (tried
    now, then by the sweeper until done), a tombstone kept; their later calls suppressed when asked.
    The operator types the userId again to confirm."""

    def post(self, request):
        user_id = (request.POST.get("user_id") or "").strip()[:255]
        confirm = (request.POST.get("confirm") or "").strip()
        back = f"{reverse('admin:user_history')}?{urlencode({'q': user_id})}"
        if not user_id or confirm != user_id:
            messages.error(request, "Nothing was forgotten: type the userId exactly to confirm.")
            return HttpResponseRedirect(back if user_id else reverse("admin:user_history"))
        forgotten = forget(user_id, request.user, suppress=request.POST.get("suppress") == "on")
        audit(request, forgotten.tombstone, forgotten.logged)
        (messages.success if forgotten.finished else messages.warning)(request, forgotten.outcome)
        return HttpResponseRedirect(reverse("admin:user_history"))


@dataclass
class Forgetting:
    tombstone: Forgotten
    logged: str  # for the admin log
    outcome: str  # for the operator
    finished: bool  # Intercom's contact is gone (or was never there)


def forget(user_id, user, suppress):
    """Forget `user_id` now, as `user` asked (privacy.forget), and try Intercom's deletion at once;
    what was done in words, for the page and the API."""
    tombstone = privacy.forget(user_id, user, suppress=suppress)
    privacy.delete_in_intercom(tombstone)
    done = f"Forgot a user: {tombstone.calls_expunged} calls expunged"
    if tombstone.suppress:
        done += ", later calls suppressed"
    finished = tombstone.intercom in (IntercomDeletion.DELETED, IntercomDeletion.ABSENT)
    if finished:
        outcome = f"{done}; Intercom contact {tombstone.intercom}."
    else:
        outcome = f"{done}. Intercom's deletion will be tried again: {tombstone.intercom_error}."
    return Forgetting(tombstone, f"{done}; Intercom: {tombstone.intercom}.", outcome, finished)
