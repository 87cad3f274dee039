import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """Reviews carry their pair's dataset and domain (copied on save), so that a dataset's review
    numbers do not join its reviews to all of its pairs."""

    dependencies = [
        ("annotation", "0007_search_indexed"),
        ("review", "0007_search_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="review",
            name="dataset",
            field=models.ForeignKey(null=True, db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                    related_name="+", to="annotation.dataset"),
        ),
        migrations.AddField(
            model_name="review",
            name="domain",
            field=models.CharField(default="", max_length=8, choices=[
                ("chat", "Chat"), ("code", "Code"), ("math", "Math"), ("logic", "Logic"),
                ("novel", "Novel continuation"), ("role", "Role-play"), ("other", "Other")]),
            preserve_default=False,
        ),
        migrations.RunSQL(
            """UPDATE review_review v SET dataset_id = p.dataset_id, domain = p.domain
               FROM annotation_pair p WHERE p.id = v.pair_id""",
            migrations.RunSQL.noop,
        ),
        migrations.AlterField(
            model_name="review",
            name="dataset",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+",
                                    to="annotation.dataset"),
        ),
        migrations.AddIndex(
            model_name="review",
            index=models.Index(fields=["dataset", "domain"], name="review_dataset_domain"),
        ),
    ]
