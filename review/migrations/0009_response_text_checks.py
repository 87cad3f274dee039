import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """One row per response with what the text checks read in it (review/text_checks.py), filled by the
    quality-count job: the text rules become joins on it."""

    dependencies = [
        ("annotation", "0008_job_finished_with_problems"),
        ("review", "0008_review_dataset_domain"),
    ]

    operations = [
        migrations.CreateModel(
            name="ResponseTextCheck",
            fields=[
                ("response", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True,
                                                  related_name="+", serialize=False, to="annotation.response")),
                ("version", models.PositiveSmallIntegerField()),
                ("cut", models.CharField(blank=True, max_length=8)),
                ("content", models.PositiveSmallIntegerField()),
                ("short_ok", models.BooleanField()),
                ("refusal", models.FloatField()),
                ("language", models.CharField(blank=True, max_length=2)),
                ("off_language", models.FloatField()),
            ],
        ),
    ]
