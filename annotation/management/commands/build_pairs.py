import json

from django.core.management.base import CommandError

from annotation.job_progress import JobCommand, run_with_bar
from annotation.models import Dataset, Domain, PairBuildRun
from annotation.pairing import (
    AGGREGATES, CHUNK_SIZE, COUNT_KEYS, DEFAULT_MIN_JUDGES, DEFAULT_THRESHOLD, NORMALISATIONS, STRATEGIES, BuildAlreadyRunning,
    BuildParams, start_build,
)


class Command(JobCommand):
    help = "Build preference pairs from the judges' scores of a dataset's responses (a recorded build run)."

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True)
        parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                            help="a pair needs a panel-score gap strictly greater than this (default 2.0)")
        parser.add_argument("--strategy", choices=STRATEGIES, default="all")
        parser.add_argument("--k", type=int, default=1, help="pairs per prompt for --strategy random")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--max-per-prompt", type=int, help="at most this many pairs per prompt")
        parser.add_argument("--aggregate", choices=AGGREGATES, default="mean")
        parser.add_argument("--normalise", choices=NORMALISATIONS, default="none")
        parser.add_argument("--min-judges", type=int, default=DEFAULT_MIN_JUDGES)
        parser.add_argument("--judge", action="append", default=[], help="a judge's name (repeat); default: all")
        parser.add_argument("--domain", action="append", default=[], choices=Domain.values,
                            help="only this domain (repeat); default: all")
        parser.add_argument("--report-json", help="write the build report to this file")
        parser.add_argument("--chunk-size", type=int, default=CHUNK_SIZE)
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **opts):
        dataset = Dataset.objects.filter(name=opts["dataset"]).first()
        if dataset is None:
            raise CommandError(f"no dataset is called {opts['dataset']!r}")
        try:
            params = BuildParams(
                judges=tuple(opts["judge"]), aggregate=opts["aggregate"], normalise=opts["normalise"],
                min_judges=opts["min_judges"], threshold=opts["threshold"], strategy=opts["strategy"], k=opts["k"],
                seed=opts["seed"], max_pairs_per_prompt=opts["max_per_prompt"], domains=tuple(opts["domain"]),
            )
            # Run here, in this process, as import_pairs does: not enqueued for a worker.
            job = start_build(dataset, params, enqueue=False, chunk_size=opts["chunk_size"])
        except (ValueError, BuildAlreadyRunning) as exc:
            raise CommandError(str(exc)) from None
        run_with_bar(job, what="the build", unit="prompt", desc="build pairs", no_progress=opts["no_progress"],
                     postfix=lambda c: {"created": c.get("pairs_created", 0), "withdrawn": c.get("pairs_withdrawn", 0)})
        report = build_report(job)
        if opts["report_json"]:
            with open(opts["report_json"], "w", encoding="utf-8") as out:
                json.dump(report, out, ensure_ascii=False, indent=2)
        self.stdout.write(
            f"build run {report['run']}: {report['prompts_considered']} prompts considered, "
            f"{report['pairs_created']} pairs created, {report['pairs_updated']} kept, "
            f"{report['pairs_restored']} restored, {report['pairs_withdrawn']} withdrawn (job {job.pk})"
        )
        self.finish(job, "the build")


def build_report(job):
    run = PairBuildRun.objects.get(job=job)
    counts = {key: run.counts.get(key, 0) for key in COUNT_KEYS}
    return {"run": run.pk, "job": job.pk, **counts, "by_domain": run.counts.get("by_domain", {}), "params": run.params}
