"""Transformation rules (docs/delivery.md, "Transformations"); the event-names page's renames become
rename-event rules, one mechanism, and the registry's rename column goes."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


def renames_to_rules(apps, schema_editor):
    """Each name renamed on the event-names page becomes a rename-event rule, in the order the
    names were first seen."""
    EventName = apps.get_model("forwarding", "EventName")
    Rule = apps.get_model("forwarding", "Rule")
    RuleSet = apps.get_model("forwarding", "RuleSet")
    renamed = EventName.objects.filter(rename_to__isnull=False).select_related("rename_to")
    now = django.utils.timezone.now()
    for position, entry in enumerate(renamed.order_by("first_seen_at", "pk"), start=1):
        Rule.objects.create(
            position=position,
            name=f"rename {entry.name}",
            call_type="track",
            event=entry.name,
            operations=[{"op": "rename_event", "to": entry.rename_to.name}],
            created_at=now,
            updated_at=now,
            updated_by="migration",
        )
    RuleSet.objects.get_or_create(pk=1)


def rules_to_renames(apps, schema_editor):
    EventName = apps.get_model("forwarding", "EventName")
    Rule = apps.get_model("forwarding", "Rule")
    for rule in Rule.objects.filter(call_type="track", source__isnull=True, condition__isnull=True):
        operations = rule.operations or []
        if rule.event and len(operations) == 1 and operations[0].get("op") == "rename_event":
            target = EventName.objects.filter(key=operations[0]["to"].strip().lower()).first()
            EventName.objects.filter(key=rule.event.strip().lower()).update(rename_to=target)


class Migration(migrations.Migration):
    dependencies = [
        ("forwarding", "0009_worker_watchdog"),
    ]

    operations = [
        migrations.CreateModel(
            name="RuleSet",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("version", models.PositiveBigIntegerField(default=0)),
            ],
        ),
        migrations.AddField(
            model_name="attempt",
            name="rules",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.CreateModel(
            name="Rule",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("position", models.PositiveIntegerField(default=0)),
                ("enabled", models.BooleanField(default=True)),
                ("name", models.CharField(blank=True, default="", max_length=200)),
                (
                    "call_type",
                    models.CharField(
                        choices=[("track", "Track"), ("page", "Page"), ("identify", "Identify"), ("group", "Group")],
                        max_length=10,
                    ),
                ),
                ("event", models.CharField(blank=True, default="", max_length=255)),
                ("condition", models.JSONField(blank=True, null=True)),
                ("operations", models.JSONField(default=list)),
                ("revision", models.PositiveIntegerField(default=1)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("updated_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("updated_by", models.CharField(blank=True, default="", max_length=150)),
                (
                    "source",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        to="forwarding.source",
                    ),
                ),
            ],
            options={
                "ordering": ["position", "id"],
            },
        ),
        migrations.RunPython(renames_to_rules, rules_to_renames),
        migrations.RemoveField(
            model_name="eventname",
            name="rename_to",
        ),
    ]
