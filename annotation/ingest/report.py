"""The import report: what an import job did, in words a person reads (the job page of an import)."""

from django.utils.translation import gettext_lazy as _

from ..models import Domain
from . import near_duplicates

# Labels for the keys of Job.counts, for every job page; a key without a label is shown as is.
COUNT_LABELS = {
    "rows_read": _("Rows read"),
    "imported_pairs": _("Pairs created"),
    "imported_prompts": _("Prompts created"),
    "imported_responses": _("Responses created"),
    "imported_judgements": _("Judge scores created"),
    "duplicates": _("Duplicate pairs (skipped)"),
    "rejected_rows": _("Rejected rows"),
    "prompts_signed": _("Prompts signed (MinHash)"),
    "candidate_pairs": _("Candidate pairs checked"),
    "near_duplicate_pairs": _("Near-duplicate pairs"),
    "near_duplicate_groups": _("Near-duplicate groups"),
    "prompts_in_groups": _("Prompts in near-duplicate groups"),
    "benchmarks_checked": _("Benchmarks checked"),
    "contaminated_prompts": _("Prompts matching a benchmark item"),
    "benchmark_items_matched": _("Benchmark items matched"),
}


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
            ((domain_labels.get(d, d), n) for d, n in counts.get("by_domain", {}).items()), key=lambda r: -r[1]
        ),
        "unknown_domains": sorted(counts.get("unknown_domains", {}).items(), key=lambda r: -r[1]),
        "rows_per_s": counts.get("rows_read", 0) / seconds if seconds else None,
        "pairs_per_s": counts.get("imported_pairs", 0) / seconds if seconds else None,
        "mb_per_s": job.done / 1e6 / seconds if seconds else None,
        "follow_up": follow_up,
        "follow_up_counts": [
            (COUNT_LABELS[k], follow_up.counts[k])
            for k in ("near_duplicate_groups", "prompts_in_groups", "contaminated_prompts", "benchmark_items_matched")
            if k in follow_up.counts
        ] if follow_up else [],
    }
