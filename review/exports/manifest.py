"""The manifest and the dataset card written beside every export (job.py writes them):
what was selected and counted, who judged with which rubric, thresholds, reward models, review
coverage and agreement, the code version and each file's checksum."""

import subprocess
import tomllib
from dataclasses import asdict
from pathlib import Path

import orjson
from django.conf import settings
from django.utils import timezone

from annotation.csv_cells import FORMULA_LEADS, QUOTE, UNDO
from annotation.models import Judge, PairBuildRun, RewardModel
from annotation.statistics import cohen_kappa

from .selection import query_cursor


def build_manifest(export, sel, counts, files):
    dataset = export.dataset
    return {
        "export_id": export.pk,
        "dataset": {"id": dataset.pk, "name": dataset.name},
        "format": export.format,
        "created_at": timezone.now().isoformat(),
        "selection": {**asdict(sel), "swap_rule": "status swapped (a decision); for pairs no decision covers, "
                                                  "rejected_better verdicts outnumber chosen_better verdicts"},
        "counts": counts,
        "judges": judges_used(dataset),
        "thresholds": [
            {"build_run": run.pk, "params": run.params, "created_at": run.created_at.isoformat()}
            for run in PairBuildRun.objects.filter(dataset=dataset).order_by("pk")
        ],
        "reward_models": [
            {"name": m.name, "version": m.version, "backend": m.backend}
            for m in RewardModel.objects.filter(scores__response__dataset=dataset).distinct().order_by("name", "version")
        ],
        "review": review_summary(dataset),
        "decisions": decisions_summary(dataset),
        "code_version": code_version(),
        "files": files,
        # Written by a CSV writer (writers.py), whose cells may have been changed.
        **({"csv_cells": csv_cells(sel, counts)} if "neutralised_cells" in counts else {}),
    }


def decisions_summary(dataset):
    """The decisions in force on the dataset's pairs (not undone), newest first, and how many pairs carry each
    status set by a decision (review/decisions.py): who decided, when, why, and over which list."""
    from ..decisions import DECIDED_SQL
    from ..models import DecisionBatch

    with query_cursor() as cursor:
        cursor.execute(f"SELECT p.status, count(*) FROM annotation_pair p WHERE p.dataset_id = %s AND {DECIDED_SQL} "
                       "GROUP BY 1 ORDER BY 1", [dataset.pk])
        by_status = dict(cursor.fetchall())
    batches = (DecisionBatch.objects.filter(dataset=dataset, undone_at__isnull=True)
               .exclude(action=DecisionBatch.Action.POLICY).select_related("actor")[:MAX_DECISIONS_LISTED])
    return {"pairs_by_status": by_status,
            "batches": [{"id": b.pk, "action": b.action, "by": b.actor.username if b.actor else None,
                         "at": b.at.isoformat(), "reason": b.reason, "selection": b.selection, "changed": b.changed}
                        for b in batches]}


# Decisions listed in a manifest (the newest); the counts by status cover them all.
MAX_DECISIONS_LISTED = 1000


def csv_cells(sel, counts):
    """Whether a CSV export's formula-leading cells were neutralised, and how to get the text back."""
    if sel.raw_csv:
        return {"neutralised": False,
                "note": "cells are written as stored: do not open this file in a spreadsheet (formula injection)"}
    return {"neutralised": True, "rule": "OWASP CSV injection", "prefix": QUOTE, "formula_leads": list(FORMULA_LEADS),
            "cells_changed": counts["neutralised_cells"], "undo": UNDO}


def judges_used(dataset):
    """Judges that scored this dataset, with the rubric versions their judgements used."""
    with query_cursor() as cursor:
        cursor.execute(
            """SELECT jm.judge_id, rb.domain, rb.version, count(*)
               FROM annotation_judgement jm
               JOIN annotation_response r ON r.id = jm.response_id
               LEFT JOIN annotation_rubric rb ON rb.id = jm.rubric_id
               WHERE r.dataset_id = %s GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""",
            [dataset.pk],
        )
        rows = cursor.fetchall()
    judges = {j.pk: j for j in Judge.objects.filter(pk__in={row[0] for row in rows})}
    out = {}
    for judge_id, domain, version, n in rows:
        judge = judges[judge_id]
        entry = out.setdefault(judge_id, {"name": judge.name, "model": judge.model, "judgements": 0, "rubrics": []})
        entry["judgements"] += n
        entry["rubrics"].append({"domain": domain, "version": version} if version else {"imported": True})
    return sorted(out.values(), key=lambda e: e["name"])


def review_summary(dataset):
    """Review coverage, and Cohen's kappa between the first two reviewers of doubly reviewed pairs."""
    with query_cursor() as cursor:
        cursor.execute(
            """SELECT count(*), count(*) FILTER (WHERE EXISTS (SELECT 1 FROM review_review v WHERE v.pair_id = p.id))
               FROM annotation_pair p WHERE p.dataset_id = %s""",
            [dataset.pk],
        )
        total, reviewed = cursor.fetchone()
        cursor.execute(
            """WITH ordered AS (
                   SELECT v.pair_id, v.verdict, row_number() OVER (PARTITION BY v.pair_id ORDER BY v.id) AS n
                   FROM review_review v WHERE v.dataset_id = %s)
               SELECT a.verdict, b.verdict, count(*) FROM ordered a JOIN ordered b
                 ON a.pair_id = b.pair_id AND a.n = 1 AND b.n = 2 GROUP BY 1, 2""",
            [dataset.pk],
        )
        table = cursor.fetchall()
    return {
        "total_pairs": total,
        "reviewed_pairs": reviewed,
        "coverage": reviewed / total if total else 0.0,
        "doubly_reviewed_pairs": sum(n for _a, _b, n in table),
        "kappa": cohen_kappa(table),
    }


def code_version():
    """`git describe` of the checkout when there is one, else the version in pyproject.toml."""
    root = Path(settings.BASE_DIR)
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], cwd=root, capture_output=True,
                             text=True, timeout=5)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def _size_category(n):
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return label
    return "10M<n<100M"


def dataset_card(export, manifest):
    """README.md in the Hugging Face datasets convention: YAML front matter, then the audit's facts."""
    counts = manifest["counts"]
    data = [f for f in manifest["files"] if f["kind"] == "data"]
    j = orjson.dumps  # JSON strings are valid YAML scalars, whatever the dataset's name holds
    lines = ["---", "language:", "- zh", "license: other", "task_categories:", "- text-generation",
             "tags:", "- preference", "- dpo", "- rlhf", "size_categories:", f"- {_size_category(counts['rows'])}",
             "configs:", "- config_name: default", "  data_files:"]
    for f in data:
        lines += [f"  - split: {'train' if f['split'] == 'all' else f['split']}", f"    path: {j(f['name']).decode()}"]
    lines += ["---", "", f"# {manifest['dataset']['name']}", "",
              f"Preference pairs exported by coigp-web (export {manifest['export_id']}, format "
              f"`{manifest['format']}`, code {manifest['code_version']}).", "", "## Counts", ""]
    splits = list(counts["by_split_domain"])
    lines += ["| domain | " + " | ".join(splits) + " |", "|---" * (len(splits) + 1) + "|"]
    domains = sorted({d for c in counts["by_split_domain"].values() for d in c})
    for d in domains:
        lines.append(f"| {d} | " + " | ".join(str(counts["by_split_domain"][s].get(d, 0)) for s in splits) + " |")
    lines.append("| **total** | " + " | ".join(str(counts["by_split"].get(s, 0)) for s in splits) + " |")
    sel = manifest["selection"]
    lines += ["", f"Swapped (by a decision or by reviews): {counts['swapped']}. Left out: "
              + (", ".join(f"{k} {v}" for k, v in sorted(counts["excluded"].items())) or "none")
              + (". Not expressible in this format: " + ", ".join(f"{k} ({v})" for k, v in counts["skipped"].items())
                 if counts["skipped"] else "") + ".", "", "## Selection", "",
              f"- statuses: {', '.join(sel['statuses'])}", f"- domains: {', '.join(sel['domains']) or 'all'}",
              f"- minimum panel gap: {sel['min_gap'] if sel['min_gap'] is not None else 'none'}",
              f"- split: {'train fraction ' + str(sel['split']) + ', seed ' + str(sel['seed']) + ', by prompt, stratified by domain' if sel['split'] is not None else 'none'}",
              f"- limit: {sel['limit'] or 'none'}", f"- swap rule: {sel['swap_rule']}", "", "## Judges", ""]
    for judge in manifest["judges"] or []:
        versions = ", ".join(f"{r['domain']} v{r['version']}" if "version" in r else "imported scores"
                             for r in judge["rubrics"])
        lines.append(f"- {judge['name']} ({judge['model'] or 'no model'}): {judge['judgements']} judgements; rubrics {versions}")
    if not manifest["judges"]:
        lines.append("- none")
    lines += ["", "## Thresholds", ""]
    lines += [f"- pair build run {t['build_run']}: `{j(t['params']).decode()}`" for t in manifest["thresholds"]] or ["- none recorded"]
    lines += ["", "## Reward model", ""]
    lines += [f"- {m['name']} v{m['version']} ({m['backend']})" for m in manifest["reward_models"]] or ["- none"]
    review = manifest["review"]
    kappa = f"{review['kappa']:.3f}" if review["kappa"] is not None else "none (no pair reviewed twice)"
    lines += ["", "## Review", "", f"- coverage: {review['reviewed_pairs']} of {review['total_pairs']} pairs reviewed "
              f"({review['coverage']:.1%})", f"- agreement (Cohen's kappa, first two reviewers, "
              f"{review['doubly_reviewed_pairs']} pairs): {kappa}", ""]
    if "csv_cells" in manifest:
        lines += ["## CSV cells", "", _csv_cells_note(manifest["csv_cells"]), ""]
    return "\n".join(lines)


def _csv_cells_note(cells):
    training = ("For training, use a JSONL or Parquet export of the same selection: their texts are never "
                "altered.")
    if not cells["neutralised"]:
        return ("Cells are written exactly as stored (raw CSV cells, for machine consumers): a cell starting with "
                "`=`, `+`, `-`, `@`, a tab or a carriage return runs as a formula if this file is opened in a "
                "spreadsheet, so do not open it in one. " + training)
    return (f"**These cells are altered.** So that spreadsheets show formulas as text (OWASP's CSV-injection rule), "
            f"{cells['cells_changed']} cells that started with `=`, `+`, `-`, `@`, a tab or a carriage return (or "
            f"with quotes before one) got a leading `'`: a math answer `-1` or `=` reads `'-1` or `'=` here, and "
            f"a model trained on this file (e.g. through the `configs` above) would learn the quote. To get the text "
            f"back, {cells['undo']}. " + training)
