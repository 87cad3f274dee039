import json
import os

from django.core.management.base import CommandError
from tqdm import tqdm

from annotation import jobs
from annotation.ingest.hub import HUB_PREFIX
from annotation.ingest.importer import BATCH_SIZE, FORMAT_CHOICES, hub_import_params, import_params
from annotation.ingest.report import created_by_domain
from annotation.job_progress import JobCommand, run_with_bar
from annotation.models import Dataset, Domain, Job


class Command(JobCommand):
    help = "Import preference pairs (or prompts with scored responses) from a file into a dataset."

    def add_arguments(self, parser):
        parser.add_argument("path", help="a file, or hf://OWNER/NAME for a Hugging Face Hub dataset")
        parser.add_argument("--dataset", required=True, help="an existing dataset's name, or a new one to create")
        parser.add_argument(
            "--format", default="auto",
            help=f"a row format or a container: {'|'.join(FORMAT_CHOICES)} (default: detect both)",
        )
        parser.add_argument(
            "--columns", default="",
            help="CSV/Parquet column mapping FIELD=COLUMN,… e.g. prompt=question,chosen=good,rejected=bad",
        )
        parser.add_argument("--split", default="train", help="Hub dataset: the split to import (default train)")
        parser.add_argument("--config", help="Hub dataset: the config (default: its only one, or 'default')")
        parser.add_argument("--limit", type=int, help="Hub dataset: import at most this many rows")
        parser.add_argument("--domain", choices=Domain.values, help="the domain of every row, for files without one")
        parser.add_argument("--report-json", help="write the import report to this file")
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
        parser.add_argument("--no-progress", action="store_true")
        parser.add_argument("--benchmark", action="store_true",
                            help="mark the dataset as a benchmark: training prompts are checked against it")
        parser.add_argument("--no-near-duplicates", action="store_true",
                            help="skip the near-duplicate and contamination check that follows the import")

    def handle(self, path, dataset, format, columns, domain, report_json, batch_size, no_progress, **options):
        hub = path.startswith(HUB_PREFIX)
        if not hub and (options["limit"] is not None or options["config"]):
            raise CommandError(f"--limit and --config apply to {HUB_PREFIX} datasets only")
        if not hub and not os.path.isfile(path):
            raise CommandError(f"{path}: no such file")
        try:
            if hub:
                params = hub_import_params(
                    path, split=options["split"], config=options["config"], limit=options["limit"], fmt=format,
                    domain=domain, batch_size=batch_size, columns=columns,
                )
            else:
                params = import_params(
                    os.path.abspath(path), fmt=format, domain=domain, batch_size=batch_size, columns=columns
                )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        ds, created = Dataset.objects.get_or_create(name=dataset)
        if created:
            self.stderr.write(f"created dataset {dataset!r}")
        if options.get("benchmark") and not ds.is_benchmark:
            ds.is_benchmark = True
            ds.save(update_fields=["is_benchmark"])
        # The jobs that follow the import run here, after it, each with its own progress bar.
        params.update(dict.fromkeys(jobs.FOLLOW_UPS, "caller"))
        if options.get("no_near_duplicates"):
            params["near_duplicates"] = False
        job = jobs.create_job("import", dataset=ds, params=params, enqueue_it=False)
        bar = tqdm(total=None if hub else os.path.getsize(path), unit="B", unit_scale=True, disable=no_progress,
                   desc="import")

        def on_progress(job_state, counts):
            bar.total = job_state.total or bar.total
            bar.update(job_state.done - bar.n)
            postfix = {"pairs": counts.get("imported_pairs", 0), "rejected": counts.get("rejected_rows", 0)}
            if hub and not job_state.total:
                postfix = {"downloaded": f"{counts.get('downloaded_bytes', 0) / 1e6:.1f} MB"}
            bar.set_postfix(postfix)

        jobs.execute(job.pk, on_progress=on_progress)
        bar.close()
        job.refresh_from_db()
        if job.status == Job.Status.CANCELLED or (job.status == Job.Status.FAILED and job.error):
            self.finish(job, "import")  # the file could not be read, or the import was cancelled: no rows to report
        if job.error:  # the file was cut off or damaged after the rows imported here
            self.stderr.write(job.error)
        report = import_report(job)
        self.stdout.write(
            f"{report['imported_pairs']} pairs, {report['imported_prompts']} prompts, "
            f"{report['imported_responses']} responses imported; {report['duplicates']} duplicates; "
            f"{job.counts.get('rejected_rows', 0)} rows rejected (job {job.pk})"
        )
        for row in report["rejected_rows"][:20]:
            self.stdout.write(f"  line {row['line']}: {row['reason']}")
        if report["rejected_rows_not_stored"]:
            self.stdout.write(f"  {job.unstored_errors_note()}")
        if job.status == Job.Status.FAILED:  # every row was rejected: no follow-up job was created
            self.stderr.write(f"nothing was imported into dataset {dataset!r}: no row of "
                              f"{params['original_name']} could be imported")
            self.write_report(report, report_json)
            self.finish(job, "import")
        try:
            for follow in jobs.FOLLOW_UPS.values():
                self.run_follow_up(follow, job, report, no_progress)
        finally:  # the import's report is written even when a job that follows it fails
            self.write_report(report, report_json)
        self.finish(job, "import")

    def run_follow_up(self, follow, job, report, no_progress):
        follow_up = jobs.follow_up_of(job, follow.kind)
        if follow_up is None:
            return
        try:
            if follow_up.status == Job.Status.PENDING:
                follow_up = run_with_bar(follow_up, what=follow.what, no_progress=no_progress, **follow.bar)
                self.stdout.write(follow.describe(follow_up))
        finally:
            if follow.report:
                follow_up.refresh_from_db()
                report[follow.kind] = follow.report(follow_up)

    def write_report(self, report, path):
        if path:
            with open(path, "w", encoding="utf-8") as out:
                json.dump(report, out, ensure_ascii=False, indent=2)


def import_report(job):
    counts = job.counts
    return {
        "status": job.status,
        "rows_read": counts.get("rows_read", 0),
        "imported_pairs": counts.get("imported_pairs", 0),
        "imported_prompts": counts.get("imported_prompts", 0),
        "imported_responses": counts.get("imported_responses", 0),
        "imported_judgements": counts.get("imported_judgements", 0),
        "duplicates": counts.get("duplicates", 0),
        "rejected_rows": [{"line": e.line, "reason": e.reason} for e in job.errors.order_by("line", "pk")],
        # Rows over JOB_MAX_STORED_ERRORS are counted, not listed.
        "rejected_rows_not_stored": counts.get("errors_not_stored", 0),
        "by_domain": created_by_domain(counts),
        "dropped_responses": counts.get("dropped_responses", 0),
        "unknown_domains": counts.get("unknown_domains", {}),
    }
