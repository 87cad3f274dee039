from django.core.management.base import CommandError

from annotation.job_progress import JobCommand, run_with_bar
from annotation.ingest.near_duplicates import DEFAULT_THRESHOLD, KIND, params_for
from annotation.models import Dataset, Job


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
        job = Job.objects.create(kind=KIND, dataset=ds, params=params, unit="prompts")
        job = run_with_progress(job, no_progress)
        self.stdout.write(describe(job))
        self.finish(job, "near-duplicate search")


def run_with_progress(job, no_progress=False):
    """Run a near-duplicates job in this process with a progress bar; CommandError if it fails."""
    return run_with_bar(job, what="near-duplicate search", unit="prompt", desc="near-duplicates",
                        no_progress=no_progress)


def describe(job):
    c = job.counts
    return (
        f"{c.get('near_duplicate_groups', 0)} near-duplicate groups ({c.get('prompts_in_groups', 0)} prompts); "
        f"{c.get('contaminated_prompts', 0)} prompts match {c.get('benchmark_items_matched', 0)} benchmark items "
        f"(job {job.pk})"
    )
