"""The reward benchmark's gold set of reviewed pairs (annotation/reward/benchmark.py): the pairs of a
dataset that some review says have the better and correct response chosen, and that no review says
have the better one rejected."""

from django.utils.translation import gettext_lazy as _

from annotation.reward.benchmark import GoldSource, gold_source

gold_source(GoldSource("reviewed", _("Pairs reviewers verified"), """
    SELECT q.id, q.domain, q.chosen_id, q.rejected_id FROM annotation_pair q
    WHERE q.dataset_id = %(dataset)s AND q.status <> 'withdrawn'
      AND EXISTS (SELECT 1 FROM review_review v WHERE v.pair_id = q.id
                  AND v.verdict = 'chosen_better' AND v.better_correct)
      AND NOT EXISTS (SELECT 1 FROM review_review v WHERE v.pair_id = q.id
                      AND v.verdict = 'rejected_better')"""))
