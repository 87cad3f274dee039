"""The import report: what an import job did, in words a person reads (the job page of an import)."""

from django.utils.translation import gettext_lazy as _

from ..jobs import KINDS
from ..models import Domain
from . import near_duplicates


def created_by_domain(counts):
    """{domain: {"prompts": n, "pairs": n}} created by an import (a responses import creates prompts only)."""
    pairs, prompts = counts.get("by_domain", {}), counts.get("prompts_by_domain", {})
    return {d: {"prompts": prompts.get(d, 0), "pairs": pairs.get(d, 0)} for d in {**prompts, **pairs}}


# The row formats by name, as the import page says them (README "Import").
FORMAT_LABELS = {
    "sharegpt": _("LLaMA-Factory / COIG-P sharegpt ranking"),
    "trl": _("TRL preference"),
    "alpaca": _("Alpaca ranking"),
    "crbench": _("CRBench style"),
    "responses": _("Raw pipeline output (responses with judge scores)"),
    "prompts": _("Prompts only"),
}


def row_format(job):
    """(label, detected) of the import's row format: read from the file (`detected`) or named by the user;
    None before the first record was read."""
    fmt = job.cursor.get("format") if isinstance(job.cursor, dict) else None
    if not fmt:
        return None
    return FORMAT_LABELS.get(fmt, fmt), job.params.get("format") in (None, "auto")


def import_report(job):
    """Context for the import report section of the job page (the counts themselves are listed
    above it with their labels; this adds rates, the domain table and the near-duplicate check)."""
    counts = job.counts
    elapsed = job.elapsed()
    seconds = elapsed.total_seconds() if elapsed else 0
    domain_labels = dict(Domain.choices)
    follow_up = near_duplicates.follow_up_of(job)
    return {
        "by_domain": sorted(
            ((domain_labels.get(d, d), n["prompts"], n["pairs"]) for d, n in created_by_domain(counts).items()),
            key=lambda r: (-r[2], -r[1]),
        ),
        "unknown_domains": sorted(counts.get("unknown_domains", {}).items(), key=lambda r: -r[1]),
        "rows_per_s": counts.get("rows_read", 0) / seconds if seconds else None,
        "pairs_per_s": counts.get("imported_pairs", 0) / seconds if seconds else None,
        "mb_per_s": job.done / 1e6 / seconds if seconds else None,
        "follow_up": follow_up,
        "format": row_format(job),
        "follow_up_counts": [
            (KINDS[near_duplicates.KIND].counts[k], follow_up.counts[k])
            for k in near_duplicates.REPORTED_COUNTS if k in follow_up.counts
        ] if follow_up else [],
    }
