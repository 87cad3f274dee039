from django.core.management.base import CommandError

from annotation.ingest.near_duplicates import DEFAULT_THRESHOLD, KIND, describe, params_for
from annotation.job_progress import JobCommand, run_with_bar
from annotation.jobs import create_job
from annotation.models import Dataset


class Command(JobCommand):
    help = "Flag near-duplicate prompts of a dataset, and prompts that near-duplicate a benchmark's."

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True)
        parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                            help="Jaccard similarity of character 3-grams, in (0, 1]")
        parser.add_argument("--against", help="the benchmark dataset to check (default: every benchmark)")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, dataset, threshold, against, no_progress, **options):
        ds = Dataset.objects.filter(name=dataset).first()
        if ds is None:
            raise CommandError(f"no dataset is called {dataset!r}")
        if against and not Dataset.objects.filter(name=against).exists():
            raise CommandError(f"no dataset is called {against!r}")
        try:
            params = params_for(threshold=threshold, against=against)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        job = create_job(KIND, dataset=ds, params=params, enqueue_it=False)
        job = run_with_bar(job, what="near-duplicate search", unit="prompt", desc="near-duplicates",
                           no_progress=no_progress)
        self.stdout.write(describe(job))
        self.finish(job, "near-duplicate search")
