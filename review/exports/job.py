"""The export as a job: `create_export` records what was asked, the `export` job runs `write_export`,
which streams the selected pairs into one writer per split and writes the manifest, the dataset card
and the format's side files beside them."""

import hashlib
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import orjson
from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy, pgettext_lazy

from annotation.jobs import JobContext, JobFailed, Tally, counted, create_job, job_kind
from annotation.models import Job, RewardModel

from ..models import Export
from .formats import file_names, get_format
from .manifest import build_manifest, dataset_card
from .meta import add_meta
from .selection import ExportError, Selection, exclusion_counts, test_prompt_ids
from .stream import Unrepresentable, stream_pairs


def create_export(dataset, fmt, selection, *, user=None, out_dir=None, stem="pairs", ext=None, enqueue=True):
    """Record an export and its job. Web exports go under MEDIA_ROOT/exports/<id>/ and run on a
    worker (`enqueue`); the CLI names its own directory and runs the job itself."""
    get_format(fmt)
    selection.check()
    with transaction.atomic():
        export = Export.objects.create(dataset=dataset, format=fmt, created_by=user, params={})
        directory = Path(out_dir) if out_dir else Path(settings.MEDIA_ROOT) / "exports" / str(export.pk)
        export.params = {**asdict(selection), "out_dir": str(directory), "stem": stem, "ext": ext}
        export.job = create_job("export", dataset=dataset, user=user, params={"export_id": export.pk},
                                enqueue_it=enqueue)
        export.save(update_fields=["params", "job"])
    return export


# Every selected pair is an item; one the format cannot express (skipped, reason in the manifest) is a failure.
EXPORT_TALLY = Tally(
    items=counted("rows", "skipped"), failures=counted("skipped"),
    summary=ngettext_lazy("%(failed)s of %(items)s pair skipped (the format cannot express it)",
                          "%(failed)s of %(items)s pairs skipped (the format cannot express them)", "n"),
)


# Its skipped pairs are listed in the manifest, not as job errors; the job page shows its files.
@job_kind("export", label=pgettext_lazy("job kind", "export"), unit="pairs", changes_data=False, tally=EXPORT_TALLY,
          counts={"rows": _("Pairs written"), "skipped": _("Pairs skipped"), "swapped": _("Pairs swapped (by a decision or by reviews)")},
          errors_heading=None, page_section="review/_export_job.html")
def run_export(ctx: JobContext):
    export = Export.objects.select_related("dataset").get(pk=ctx.params["export_id"])
    if ctx.cursor or ctx.counts:
        # A file cannot be resumed mid-row group: an interrupted export starts over and rewrites its files.
        ctx.counts, ctx.cursor, ctx.job.done = {}, {}, 0
        Job.objects.filter(pk=ctx.job.pk).update(counts={}, cursor={}, done=0)
    try:
        write_export(export, ctx)
    except ExportError as exc:
        raise JobFailed(str(exc)) from None


def write_export(export, ctx=None):
    """Write the export's data files, manifest, card and the format's side files."""
    dataset = export.dataset
    fmt = get_format(export.format)
    sel = Selection.from_params(export.params)
    sel.check()
    directory = export.directory()
    directory.mkdir(parents=True, exist_ok=True)
    names = file_names(fmt.name, export.params["stem"], export.params.get("ext"), sel.split)
    selected, excluded = exclusion_counts(dataset, sel)
    total = min(selected, sel.limit) if sel.limit else selected
    if ctx:
        ctx.set_total(total)
    test_ids = test_prompt_ids(dataset, sel) if sel.split is not None else None
    reward_model = RewardModel.objects.newest_for(dataset) if sel.with_meta else None
    writers = {split: fmt.writer(directory / name, fmt, sel) for split, name in names.items()}
    rows, by_domain, skipped = Counter(), {split: Counter() for split in names}, Counter()
    swapped = written = 0
    batches = stream_pairs(dataset, sel)
    try:
        for batch in batches:
            if sel.limit:
                batch = batch[: sel.limit - written]
            if sel.with_meta:
                add_meta(batch, reward_model)
            batch_counts = Counter()
            for p in batch:
                split = "all" if test_ids is None else ("test" if p.prompt_id in test_ids else "train")
                try:
                    writers[split].write(p)
                except Unrepresentable as exc:
                    skipped[str(exc)] += 1
                    batch_counts["skipped"] += 1
                    continue
                rows[split] += 1
                by_domain[split][p.domain] += 1
                batch_counts["rows"] += 1
                batch_counts["swapped"] += p.swapped
            written += batch_counts["rows"]
            swapped += batch_counts["swapped"]
            if ctx and batch:
                with transaction.atomic():
                    ctx.commit(done=len(batch), counts=dict(batch_counts), cursor={"after": batch[-1].pair_id})
            if sel.limit and written >= sel.limit:
                break
    finally:
        batches.close()  # stops the prefetching thread at once on cancel or error
        for writer in writers.values():
            writer.close()
    files = [_describe(directory, name, split, rows[split]) for split, name in names.items()]
    counts = {
        "rows": written,
        "by_split": dict(rows),
        "by_domain": dict(sum(by_domain.values(), Counter())),
        "by_split_domain": {split: dict(c) for split, c in by_domain.items()},
        "selected_before_limit": selected,
        "excluded": excluded,
        "swapped": swapped,
        "skipped": dict(skipped),
    }
    for writer in writers.values():
        for key, n in writer.counts().items():
            counts[key] = counts.get(key, 0) + n
    manifest = build_manifest(export, sel, counts, files)
    (directory / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    (directory / "README.md").write_text(dataset_card(export, manifest), encoding="utf-8")
    side = [{"name": "manifest.json", "kind": "manifest"}, {"name": "README.md", "kind": "card"}]
    for side_file in fmt.side_files:
        content = side_file.build(dataset, names)
        (directory / side_file.name).write_bytes(orjson.dumps(content, option=orjson.OPT_INDENT_2))
        side.append({"name": side_file.name, "kind": side_file.kind})
    export.files = files + side
    export.manifest = manifest
    export.save(update_fields=["files", "manifest"])
    return export


def _describe(directory, name, split, rows):
    digest = hashlib.sha256()
    path = directory / name
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return {"name": name, "kind": "data", "split": split, "rows": rows, "bytes": path.stat().st_size,
            "sha256": digest.hexdigest()}
