"""The alerts page: where alerts go (targets: add, enable or disable, delete, send a test), the
rules with their thresholds and whether each fires now, and the latest alerts sent. Operators act,
viewers read; every change is in the admin log. The rules themselves are forwarding.alerts'."""

import secrets

from django import forms
from django.contrib import messages
from django.contrib.admin.models import ADDITION, DELETION
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone

from dashboard.views.common import Action, Page, audit
from forwarding import alerts
from forwarding.models import AlertRule, AlertTarget, SentAlert

SENT_SHOWN = 100


def urls(site):
    def page(view):
        return site.admin_view(view.as_view(site=site))

    return [
        path("alerts/", page(Alerts), name="alerts"),
        path("alerts/targets/add/", page(AddTarget), name="alert_target_add"),
        path("alerts/targets/<relay_id:pk>/toggle/", page(ToggleTarget), name="alert_target_toggle"),
        path("alerts/targets/<relay_id:pk>/test/", page(TestTarget), name="alert_target_test"),
        path("alerts/targets/<relay_id:pk>/delete/", page(DeleteTarget), name="alert_target_delete"),
        path("alerts/rules/<relay_id:pk>/", page(EditRule), name="alert_rule_edit"),
    ]


class TargetForm(forms.Form):
    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(choices=AlertTarget.Kind.choices)
    url = forms.URLField(max_length=500, assume_scheme="https")
    secret = forms.CharField(max_length=200, required=False)

    def clean_url(self):
        url = self.cleaned_data["url"]
        if not url.lower().startswith(("http://", "https://")):
            raise forms.ValidationError("An alert target's URL is http:// or https://.")
        return url


class Alerts(Page):
    template_name = "dashboard/alerts.html"
    title = "Alerts"

    def get(self, request):
        return self.page(request)

    def page(self, request, form=None, rule_errors=None, created=None, status=200):
        """The page; `form` a refused target form, `rule_errors` {rule pk: message}, `created`
        (target, secret) the target just added, its secret shown this once."""
        rule_errors = rule_errors or {}
        rules = alerts.rules()
        for rule in rules:
            rule.spec = alerts.RULES[rule.kind]
            rule.error = rule_errors.get(rule.pk, "")
        return self.render(
            request,
            {
                "rules": rules,
                "firing": [rule for rule in rules if rule.enabled and rule.state.firing_since],
                "targets": list(AlertTarget.objects.all()),
                "sent": list(SentAlert.objects.select_related("rule")[:SENT_SHOWN]),
                "sent_shown": SENT_SHOWN,
                "form": form or TargetForm(initial={"kind": AlertTarget.Kind.SLACK}),
                "kinds": AlertTarget.Kind.choices,
                "created": created,
                "repeat_minutes": int(alerts.REPEAT_EVERY.total_seconds() // 60),
            },
            status=status,
        )

    def again(self, request, **kwargs):
        page = Alerts(site=self.site)
        page.setup(request)
        return page.page(request, **kwargs)


class AddTarget(Action, Alerts):
    def post(self, request):
        form = TargetForm(request.POST)
        if not form.is_valid():
            return self.again(request, form=form, status=400)
        data = form.cleaned_data
        secret = ""
        if data["kind"] == AlertTarget.Kind.JSON:
            secret = data["secret"].strip() or secrets.token_urlsafe(32)
        target = AlertTarget.objects.create(name=data["name"], kind=data["kind"], url=data["url"], secret=secret)
        audit(request, target, f"Added the {target.get_kind_display()} alert target '{target.name}'.", ADDITION)
        messages.success(request, f"Alert target '{target.name}' added: use “Send test” to check that it receives.")
        # Rendered, not redirected: the secret is shown in this answer only, never put in a message
        # (a cookie) or the session.
        return self.again(request, created=(target, secret))


class TargetAction(Action):
    """A POST on one target (404 when there is none), by an operator; in the admin log."""

    def post(self, request, pk):
        target = AlertTarget.objects.filter(pk=pk).first()
        if target is None:
            raise Http404("No such alert target.")
        self.act(request, target)
        return HttpResponseRedirect(reverse("admin:alerts"))

    def act(self, request, target):
        raise NotImplementedError


class ToggleTarget(TargetAction):
    def act(self, request, target):
        target.enabled = not target.enabled
        target.save(update_fields=["enabled"])
        done = f"{'Enabled' if target.enabled else 'Disabled'} the alert target '{target.name}'"
        audit(request, target, f"{done}.")
        messages.success(request, f"{done}.")


class TestTarget(TargetAction):
    def act(self, request, target):
        sent = alerts.send_test(target, request.user.get_username())
        audit(request, target, f"Sent a test alert to '{target.name}' ({sent.status_code or sent.error[:100]}).")
        if sent.ok:
            messages.success(request, f"Test alert sent to '{target.name}': it answered {sent.status_code}.")
        else:
            messages.error(request, f"The test alert to '{target.name}' failed: {sent.error}")


class DeleteTarget(TargetAction):
    def act(self, request, target):
        audit(request, target, f"Deleted the alert target '{target.name}'.", DELETION)
        target.delete()
        messages.success(request, f"Alert target '{target.name}' deleted (the alerts sent to it stay listed).")


class EditRule(Action, Alerts):
    """Set a rule's threshold and whether it is checked."""

    def post(self, request, pk):
        rule = AlertRule.objects.filter(pk=pk, kind__in=list(alerts.RULES)).first()
        if rule is None:
            raise Http404("No such alert rule.")
        spec = alerts.RULES[rule.kind]
        threshold = rule.threshold
        if spec.unit:
            try:
                threshold = int(request.POST.get("threshold", "").strip())
            except ValueError:
                return self.again(
                    request, rule_errors={rule.pk: "Not changed: the threshold is a whole number."}, status=400
                )
            problem = alerts.threshold_problem(rule.kind, threshold)
            if problem:
                return self.again(request, rule_errors={rule.pk: f"Not changed: {problem}"}, status=400)
        enabled = bool(request.POST.get("enabled"))
        changes = []
        if threshold != rule.threshold:
            changes.append(f"threshold {rule.threshold} → {threshold} {spec.unit}".rstrip())
        if enabled != rule.enabled:
            changes.append("enabled" if enabled else "disabled")
        label = rule.get_kind_display()
        if not changes:
            messages.info(request, f"The alert rule '{label}' is unchanged.")
            return HttpResponseRedirect(reverse("admin:alerts"))
        AlertRule.objects.filter(pk=rule.pk).update(threshold=threshold, enabled=enabled, updated_at=timezone.now())
        done = f"Alert rule '{label}': {', '.join(changes)}"
        audit(request, rule, f"{done}.")
        messages.success(request, f"{done}. Checked from the sweeper's next run (about a minute).")
        return HttpResponseRedirect(reverse("admin:alerts"))
