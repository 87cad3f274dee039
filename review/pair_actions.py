"""Admin actions on one pair, from its page: rescore its responses, rebuild its prompt's pairs, unfilter it.

Each is the dataset-wide workflow narrowed to the pair, never a second copy of it: rescoring is a
scoring job (annotation/judging.py) with `pair_ids=[pair]`; rebuilding is a pair-building job
(annotation/pairing.py) over the pair's prompt with the parameters of the build run that formed the
pair; unfiltering is the reward filter's own unfilter for one pair.
"""

from django.utils.translation import gettext as _

from annotation import pairing
from annotation.judging import start_scoring
from annotation.models import Pair
from annotation.reward.filtering import unfilter_pair

# Parameters a build run records besides BuildParams (resolved ids and statistics).
_RECORDED_ONLY = {"judge_ids", "judge_stats", "pooled"}


class ActionRefused(Exception):
    """The action does not apply to this pair; the message says why."""


def unfilter(pair):
    """Set a filtered pair back as the reward filter's unfilter does; returns the new status. The update is
    conditional, so a pair that someone else changed in the meantime is left alone."""
    if pair.status != Pair.Status.FILTERED:
        raise ActionRefused(_("Pair %(pk)s is %(status)s, not filtered.") % {"pk": pair.pk, "status": pair.status})
    status = unfilter_pair(pair)
    if status is None:
        raise ActionRefused(_("Pair %(pk)s changed meanwhile; reload the page.") % {"pk": pair.pk})
    return status


def rescore(pair, user, options):
    """A scoring job for the pair's two responses; `options` are ScoreForm.options()."""
    options = {**options, "pair_ids": [pair.pk], "domains": [pair.domain], "pair_statuses": []}
    return start_scoring(pair.dataset, user=user, **options)


def rebuild_params(pair):
    """BuildParams that rebuild the pair's prompt as the run that formed the pair did, or None when the
    pair was imported or its run is gone (then only the dataset's build form applies)."""
    if pair.origin != Pair.Origin.CONSTRUCTED or pair.build_run is None:
        return None
    recorded = {k: v for k, v in pair.build_run.params.items() if k not in _RECORDED_ONLY}
    recorded["prompts"] = [pair.prompt_id]
    recorded.pop("domains", None)
    return pairing.BuildParams.from_dict(recorded)


def rebuild(pair, user):
    params = rebuild_params(pair)
    if params is None:
        raise ActionRefused(_("Pair %(pk)s was not built from judge scores by a recorded run; use the build page.")
                            % {"pk": pair.pk})
    return pairing.start_build(pair.dataset, params, user=user)
