from functools import reduce
from operator import or_

from django.core.management.base import CommandError
from django.db.models import Q
from django.http import QueryDict

from annotation.job_progress import JobCommand, run_with_bar
from annotation.models import Dataset, Judge, Pair
from annotation.rejudging import DEFAULT_LIMIT, start_rejudge
from review.selections import REGISTRY, select_pairs


class Command(JobCommand):
    help = ("Ask a judge which response of each pair is better, A or B, in both orders (pairwise re-judging), "
            "about the pairs of the named views; the verdicts are stored on the pairs.")

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True)
        parser.add_argument("--judge", required=True, help="a judge with an API (base URL and model id)")
        parser.add_argument("--view", action="append", choices=sorted(REGISTRY),
                            help="a named list (repeatable: pairs in any of them); default every pair")
        parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                            help=f"at most this many pairs, the first in id order (default {DEFAULT_LIMIT}; 0: all)")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, dataset, judge, view, limit, no_progress, **options):
        found = Dataset.objects.filter(name=dataset).first()
        if found is None:
            raise CommandError(f"no dataset is called {dataset!r}")
        asked = Judge.objects.filter(name=judge).first()
        if asked is None:
            raise CommandError(f"no judge is called {judge!r}")
        if limit < 0:
            raise CommandError(f"--limit must be 0 (all) or more, not {limit}")
        pairs = self.selected(found, view or [])
        try:
            job = start_rejudge(found, asked, pairs, limit=limit or None, described=" ".join(
                f"view={name}" for name in view or []), enqueue_it=False)
        except ValueError as exc:
            raise CommandError(f"{exc} ({found.name}{', views ' + ', '.join(view) if view else ''})") from None
        job = run_with_bar(job, what="pairwise re-judging", unit="pair", desc=f"{asked.name} A/B",
                           no_progress=no_progress,
                           postfix=lambda c: {k: c.get(k, 0) for k in ("disagree", "inconsistent", "failed")})
        counts = job.counts
        self.stdout.write(f"{counts.get('pairs', 0)} pairs: judge prefers chosen {counts.get('agree', 0)}, rejected "
                          f"{counts.get('disagree', 0)}, position-inconsistent {counts.get('inconsistent', 0)}, "
                          f"no verdict {counts.get('unparseable', 0)}, not judged {counts.get('failed', 0)} "
                          f"(job {job.pk})")
        self.finish(job, "pairwise re-judging")

    @staticmethod
    def selected(dataset, views):
        pairs = Pair.objects.filter(dataset=dataset)
        if not views:
            return pairs.order_by("pk")
        in_views = [select_pairs(dataset, QueryDict(f"view={name}"))[0] for name in views]
        return pairs.filter(reduce(or_, (Q(pk__in=p.values("pk")) for p in in_views))).order_by("pk")
