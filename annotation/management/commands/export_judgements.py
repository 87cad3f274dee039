from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotation.judgement_export import dataset_judgements, judgement_lines
from annotation.models import Dataset


class Command(BaseCommand):
    help = "Write a dataset's raw judgements (every judge, rubric version and status) as JSONL."

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True)
        parser.add_argument("--out", required=True, help="the JSONL file to write")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, dataset, out, no_progress, **options):
        ds = Dataset.objects.filter(name=dataset).first()
        if ds is None:
            raise CommandError(f"no dataset is called {dataset!r}")
        total = dataset_judgements(ds).count()
        written = 0
        try:
            with open(out, "wb") as f, tqdm(total=total, unit="judgement", disable=no_progress, desc="export") as bar:
                for line in judgement_lines(ds):
                    f.write(line)
                    written += 1
                    if written % 1000 == 0:
                        bar.update(1000)
                bar.update(written - bar.n)
        except OSError as exc:
            raise CommandError(f"{out}: {exc.strerror or exc}") from None
        self.stdout.write(f"{written} judgements written to {out}")
