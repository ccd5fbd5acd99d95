from django.db import migrations, models


def create_triggers(apps, schema_editor):
    from forwarding import tallies

    tallies.create_triggers(schema_editor)


def drop_triggers(apps, schema_editor):
    from forwarding import tallies

    tallies.drop_triggers(schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("forwarding", "0005_worker_start"),
    ]

    operations = [
        migrations.CreateModel(
            name="DeliveryTally",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("hour", models.DateTimeField()),
                ("state", models.CharField(max_length=20)),
                ("change", models.IntegerField()),
            ],
            options={
                "indexes": [models.Index(fields=["hour", "state"], name="tally_hour")],
            },
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
