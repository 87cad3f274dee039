import json
import os

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotation import jobs
from annotation.ingest.formats import FORMATS
from annotation.ingest.importer import BATCH_SIZE, import_params
from annotation.models import Dataset, Domain, Job


class Command(BaseCommand):
    help = "Import preference pairs (or prompts with scored responses) from a file into a dataset."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--dataset", required=True, help="an existing dataset's name, or a new one to create")
        parser.add_argument("--format", default="auto", choices=["auto", *FORMATS])
        parser.add_argument("--domain", choices=Domain.values, help="the domain of every row, for files without one")
        parser.add_argument("--report-json", help="write the import report to this file")
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, path, dataset, format, domain, report_json, batch_size, no_progress, **options):
        if not os.path.isfile(path):
            raise CommandError(f"{path}: no such file")
        ds, created = Dataset.objects.get_or_create(name=dataset)
        if created:
            self.stderr.write(f"created dataset {dataset!r}")
        params = import_params(os.path.abspath(path), fmt=format, domain=domain, batch_size=batch_size)
        job = Job.objects.create(kind="import", dataset=ds, params=params, unit="bytes")
        bar = tqdm(total=os.path.getsize(path), unit="B", unit_scale=True, disable=no_progress, desc="import")

        def on_progress(job_state, counts):
            bar.total = job_state.total or bar.total
            bar.update(job_state.done - bar.n)
            bar.set_postfix(pairs=counts.get("imported_pairs", 0), rejected=counts.get("rejected_rows", 0))

        status = jobs.execute(job.pk, on_progress=on_progress)
        bar.close()
        job.refresh_from_db()
        if status != Job.Status.SUCCEEDED:
            raise CommandError(job.error or f"import ended as {job.status}")
        report = import_report(job)
        if report_json:
            with open(report_json, "w", encoding="utf-8") as out:
                json.dump(report, out, ensure_ascii=False, indent=2)
        self.stdout.write(
            f"{report['imported_pairs']} pairs, {report['imported_prompts']} prompts, "
            f"{report['imported_responses']} responses imported; {report['duplicates']} duplicates; "
            f"{len(report['rejected_rows'])} rows rejected (job {job.pk})"
        )
        for row in report["rejected_rows"][:20]:
            self.stdout.write(f"  line {row['line']}: {row['reason']}")


def import_report(job):
    counts = job.counts
    return {
        "imported_pairs": counts.get("imported_pairs", 0),
        "imported_prompts": counts.get("imported_prompts", 0),
        "imported_responses": counts.get("imported_responses", 0),
        "imported_judgements": counts.get("imported_judgements", 0),
        "duplicates": counts.get("duplicates", 0),
        "rejected_rows": [{"line": e.line, "reason": e.reason} for e in job.errors.order_by("line", "pk")],
        "by_domain": counts.get("by_domain", {}),
        "unknown_domains": counts.get("unknown_domains", {}),
    }
