"""The login throttle's counters when Redis does not hold them (dashboard.throttle)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0003_resume_schedule"),
    ]

    operations = [
        migrations.CreateModel(
            name="LoginFailures",
            fields=[
                ("key", models.CharField(max_length=64, primary_key=True, serialize=False)),
                ("failures", models.PositiveIntegerField(default=0)),
                ("expires_at", models.DateTimeField(db_index=True)),
            ],
            options={
                "verbose_name": "login failures",
                "verbose_name_plural": "login failures",
            },
        ),
    ]
