from django.db import migrations, models


def tally_causes(apps, schema_editor):
    """The triggers now tally failed deliveries per cause; the failures stored before are moved
    under theirs."""
    from forwarding import tallies

    tallies.install_triggers(schema_editor)
    with schema_editor.connection.cursor() as cursor:
        tallies.tally_causes(cursor, schema_editor.connection.vendor)


def forget_causes(apps, schema_editor):
    """Back: every row's cause forgotten (the sums per hour and state are unchanged by it), and the
    triggers dropped until the column is gone (`reinstall_triggers`)."""
    from forwarding import tallies

    tallies.drop_triggers(schema_editor)
    schema_editor.execute(f"UPDATE {tallies.TABLE} SET cause = ''")


def drop_triggers(apps, schema_editor):
    """SQLite rebuilds the tally table to add a column, and cannot while triggers name it."""
    from forwarding import tallies

    tallies.drop_triggers(schema_editor)


def reinstall_triggers(apps, schema_editor):
    from forwarding import tallies

    tallies.install_triggers(schema_editor)


class Migration(migrations.Migration):
    """The overview's top failure reasons from the tallies: grouping the failed deliveries of 7 days
    took 21 ms at a million calls (10,000 failed) against 1.4 ms at 10,000."""

    dependencies = [
        ("forwarding", "0015_redundant_indexes"),
    ]

    operations = [
        migrations.RunPython(drop_triggers, reinstall_triggers),
        migrations.AddField(
            model_name="deliverytally",
            name="cause",
            field=models.CharField(blank=True, default="", max_length=50),
        ),
        migrations.RemoveIndex(model_name="deliverytally", name="tally_hour"),
        migrations.AddIndex(
            model_name="deliverytally",
            index=models.Index(fields=["hour", "state", "cause"], name="tally_key"),
        ),
        migrations.RunPython(tally_causes, forget_causes),
    ]
