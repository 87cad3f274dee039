import os
from pathlib import Path

from django.core.management.base import CommandError

from annotation.job_progress import JobCommand, run_with_bar
from annotation.models import Dataset, Domain
from review.exports import FORMATS, ExportError, Selection, create_export, file_names, side_file_names
from review.exports.selection import DEFAULT_STATUSES


class Command(JobCommand):
    help = (
        "Export a dataset's audited pairs for training (LLaMA-Factory, TRL, OpenRLHF, Alpaca, CSV, Parquet), "
        "with manifest.json and a dataset card (README.md) beside the data files."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True)
        parser.add_argument("--format", required=True, choices=FORMATS)  # the registry itself: every format
        parser.add_argument("--out", required=True, help="the data file; with --split, FILE_train and FILE_test")
        parser.add_argument("--status", action="append",
                            help="pair statuses to export (repeatable or comma-separated); 'all' exports every "
                                 "pair with no exclusion. Default: pending, kept and swapped (written the other way round), "
                                 "minus pairs reviews exclude (an admin's decision overrides reviews)")
        parser.add_argument("--domain", action="append", choices=Domain.values, help="repeatable; default all")
        parser.add_argument("--min-gap", type=float, help="minimum panel gap (chosen score minus rejected score)")
        parser.add_argument("--split", type=float, help="train fraction, e.g. 0.95: a train/test split by prompt")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--limit", type=int, help="at most this many rows")
        parser.add_argument("--with-meta", action="store_true", help="add the metadata columns")
        parser.add_argument("--bom", action="store_true", help="CSV: start with a UTF-8 byte-order mark (Excel)")
        parser.add_argument("--raw-csv", action="store_true",
                            help="CSV: write cells as stored, for machine consumers, not spreadsheets. By default a "
                                 "cell starting with = + - @ tab or CR gets a leading ' (formula injection)")
        parser.add_argument("--overwrite", action="store_true", help="replace files that exist")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **o):
        try:
            dataset = Dataset.objects.get(name=o["dataset"])
        except Dataset.DoesNotExist:
            raise CommandError(f"no dataset is called {o['dataset']!r}") from None
        statuses = [s.strip() for value in (o["status"] or [",".join(DEFAULT_STATUSES)]) for s in value.split(",") if s.strip()]
        selection = Selection(statuses=statuses, domains=o["domain"] or [], min_gap=o["min_gap"], split=o["split"],
                              seed=o["seed"], limit=o["limit"], with_meta=o["with_meta"], bom=o["bom"],
                              raw_csv=o["raw_csv"])
        out = Path(o["out"]).resolve()
        stem, ext = out.name.removesuffix(out.suffix) if out.suffix else out.name, out.suffix or None
        names = list(file_names(o["format"], stem, ext, o["split"]).values()) + side_file_names(o["format"])
        existing = [n for n in names if (out.parent / n).exists()]
        if existing and not o["overwrite"]:
            raise CommandError(f"{', '.join(existing)} already exist in {out.parent}; pass --overwrite to replace them")
        if not out.parent.is_dir():
            raise CommandError(f"{out.parent}: no such directory")
        try:
            export = create_export(dataset, o["format"], selection, out_dir=out.parent, stem=stem, ext=ext,
                                   enqueue=False)
        except ExportError as exc:
            raise CommandError(str(exc)) from None
        job = run_with_bar(export.job, what="export", unit="pairs", desc="export", no_progress=o["no_progress"],
                     unit_scale=True)
        export.refresh_from_db()
        counts = export.manifest["counts"]
        self.stdout.write(
            f"{counts['rows']} pairs written ({', '.join(f'{k} {v}' for k, v in counts['by_split'].items()) or 'none'}); "
            f"{counts['swapped']} swapped (by a decision or by reviews); left out: "
            f"{', '.join(f'{k} {v}' for k, v in sorted(counts['excluded'].items())) or 'none'}"
        )
        if "neutralised_cells" in counts and not selection.raw_csv:
            self.stdout.write(f"{counts['neutralised_cells']} cells starting with = + - @ tab or CR got a leading ' so "
                              "spreadsheets show them as text (see README.md; --raw-csv keeps them as stored)")
        for f in export.files:
            self.stdout.write(f"  {os.path.join(out.parent, f['name'])}")
        self.finish(job, "export")
