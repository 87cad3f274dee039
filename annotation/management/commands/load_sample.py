from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from annotation.models import Dataset, Job

SAMPLE_DIR = Path(settings.BASE_DIR) / "sample_data"
SAMPLE_FILES = ["coigp_sample.jsonl", "coigp_sample_responses.jsonl"]


class Command(BaseCommand):
    help = "Import the project's own sample data into the dataset 'COIG-P sample' (once)."

    def add_arguments(self, parser):
        parser.add_argument("--dataset", default="COIG-P sample")

    def handle(self, dataset, **options):
        ds, _ = Dataset.objects.get_or_create(
            name=dataset, defaults={"description": "Sample Chinese preference pairs written for coigp-web."}
        )
        for name in SAMPLE_FILES:
            path = SAMPLE_DIR / name
            done = Job.objects.filter(
                dataset=ds, kind="import", status__in=Job.COMPLETED, params__original_name=name
            ).exists()
            if done:
                self.stdout.write(f"{name}: already imported into {ds.name}")
                continue
            call_command("import_pairs", str(path), dataset=ds.name, no_progress=True, stdout=self.stdout)
