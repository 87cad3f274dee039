import json

from django.core.management.base import CommandError
from tqdm import tqdm

from annotation import jobs
from annotation.job_progress import JobCommand
from annotation.judging import CHUNK_SIZE, score_params, score_report
from annotation.models import Dataset, Domain, Job, Judge


class Command(JobCommand):
    help = "Score a dataset's responses with LLM judges (only missing judgements unless --rescore)."

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True)
        parser.add_argument("--judge", action="append", required=True, help="a judge's name; repeat for a panel")
        parser.add_argument("--domain", action="append", choices=Domain.values, help="repeat for several")
        parser.add_argument("--rubric-version", type=int, help="default: each domain's latest")
        parser.add_argument("--rescore", action="store_true", help="score again what was scored (cache still used)")
        parser.add_argument("--force", action="store_true", help="bypass the response cache and pay again")
        parser.add_argument("--report-json", help="write counts by status, tokens and cost to this file")
        parser.add_argument("--chunk-size", type=int, default=CHUNK_SIZE)
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, dataset, judge, domain, rubric_version, rescore, force, report_json, chunk_size, no_progress,
               **options):
        ds = Dataset.objects.filter(name=dataset).first()
        if ds is None:
            raise CommandError(f"no dataset is called {dataset!r}")
        judges = list(Judge.objects.filter(name__in=judge))
        unknown = sorted(set(judge) - {j.name for j in judges})
        if unknown:
            raise CommandError(f"no judge is called {', '.join(map(repr, unknown))} (see `manage.py judges list`)")
        try:
            params = score_params(ds, judges, domains=domain, rubric_version=rubric_version, rescore=rescore,
                                  force=force, chunk_size=chunk_size)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        job = jobs.create_job("score", dataset=ds, params=params, enqueue_it=False)
        bar = tqdm(total=0, unit="req", disable=no_progress, desc="score")

        def on_progress(state, counts):
            bar.total = state.total
            bar.update(state.done - bar.n)
            bar.set_postfix(ok=counts.get("ok", 0), parse_err=counts.get("parse_error", 0),
                            refused=counts.get("refused", 0), err=counts.get("error", 0),
                            cached=counts.get("cached", 0), cost=f"{counts.get('cost', 0):.4f}")

        jobs.execute(job.pk, on_progress=on_progress)
        bar.close()
        job.refresh_from_db()
        report = score_report(job)
        if report_json:
            with open(report_json, "w", encoding="utf-8") as out:
                json.dump(report, out, ensure_ascii=False, indent=2)
        if job.error or job.status == Job.Status.CANCELLED:
            self.finish(job, "scoring")  # stopped before its end: the counts so far are in the report
        by = report["by_status"]
        self.stdout.write(
            f"{job.done} judgements (job {job.pk}): {by['ok']} ok, {by['parse_error']} parse errors, "
            f"{by['refused']} refused, {by['error']} errors; {report['cached']} from the cache, "
            f"{report['paid_requests']} requests, {report['input_tokens']} + {report['output_tokens']} tokens, "
            f"cost {report['cost']:.6f}"
        )
        self.finish(job, "scoring")
