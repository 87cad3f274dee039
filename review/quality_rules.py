"""Low-quality rules: named selections of pairs that are probably wrong or useless for training.

Each rule is a function `(pairs, dataset, settings) -> pairs` registered with `@selection(…, "quality",
…)`; it narrows a queryset in SQL (no Python loop over pairs; `identical-responses` reads the texts of
the pairs whose lengths allow a match and compares them in C, review/near_identical.py), so the same rule
counts a million pairs on the quality page, lists them (`pairs/?view=<name>`), feeds the review queue, and
flags a single pair on its page. To add a rule, write one more function here; review/apps.py imports this
module. Settings are numbers with defaults, overridable in the list's URL (`view=small-gap&gap=1.5`).

The rules that read texts, scores, judgements or duplicates take seconds per list on a large dataset,
so the `quality_counts` job stores their members as it counts them (`@materialised`, review/members.py):
their lists, at the default settings, read the stored pairs until a job of the dataset changes its data.
The text rules (cut off, empty, refusal, language) read each response once, in Python
(review/text_checks.py), and select by the stored readings (ResponseTextCheck): the count job reads the
texts a dataset has not had read before it counts.
"""

from django.db import transaction
from django.db.models import Count, Exists, F, FloatField, OuterRef, Q, Value
from django.db.models.functions import Cast, Greatest, Least, Length
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from annotation.jobs import JobContext, create_job, job_kind, jobs_under_way, running_job
from annotation.models import ContaminationMatch, Dataset, Job, Judgement, NearDuplicateMember, Pair, Response

from . import members, near_identical, suspicion, text_checks
from .members import materialised
from .models import ResponseTextCheck
from .selections import selection

KIND = "quality_counts"


def _float(expression):
    return Cast(expression, FloatField())


def _on_either_response(pairs, condition):
    """condition(column) → Q on one response column ("chosen" / "rejected"); true for either."""
    return pairs.filter(condition("chosen") | condition("rejected"))


def stored_counts(dataset):
    """The newest completed quality_counts job of the dataset, or None."""
    return (Job.objects.filter(dataset=dataset, kind=KIND, status__in=Job.COMPLETED)
            .order_by("-finished_at", "-pk").first())


def counted_at(dataset, name):
    """When the newest finished quality_counts job that stored the rule's members began, or None."""
    job = stored_counts(dataset)
    return job.started_at if job is not None and name in job.cursor.get("stored", ()) else None


# Signals, not defect flags (Selection.signal): on the audit benchmark (bench/audit_power.py, held-out seed 3)
# reward-filtered flags 783 of 2,852 pairs, 72 % of them clean (the built-in reward model is at chance
# there), judge-failures 337 (69 % clean), length-ratio 453 (61 % clean: short correct answers).
@selection("reward-filtered", _("Filtered by the reward model"), "quality",
           _("Pairs a reward model filtered: margin r(chosen) − r(rejected) at or below its threshold."),
           signal=True)
def reward_filtered(pairs, dataset, settings):
    return pairs.filter(status=Pair.Status.FILTERED, status_reason__startswith="reward:")


# A confidence band, not a defect: with a build threshold of 2, gap < 3 holds a fifth of all pairs, 68 % of
# them clean on the benchmark (seed 1). It is listed with the charts, not counted as a low-quality rule; the
# suspicion score (review/suspicion.py) weighs a narrow gap with the other signals instead.
@selection("small-gap", _("Score gap below a setting"), "confidence",
           _("Pairs whose panel score gap (chosen − rejected) is below `gap`: the panel is less sure of them; "
             "pairs without panel scores (imported ones) are not counted."), gap=3.0)
def small_gap(pairs, dataset, settings):
    return pairs.alias(quality_gap=F("chosen_score") - F("rejected_score")).filter(quality_gap__lt=settings["gap"])


@selection("judge-failures", _("Judge parse failures or refusals"), "quality",
           _("A judge's answer about the chosen or the rejected response could not be parsed, or the judge "
             "refused."), signal=True)
@materialised("judge-failures", counted_at)
def judge_failures(pairs, dataset, settings):
    failed = Judgement.objects.filter(status__in=[Judgement.Status.PARSE_ERROR, Judgement.Status.REFUSED])
    return _on_either_response(pairs, lambda side: Q(Exists(failed.filter(response_id=OuterRef(f"{side}_id")))))


@selection("near-duplicate-prompt", _("Near-duplicate prompts"), "quality",
           _("The prompt is in a group of near-duplicate prompts of this dataset (MinHash check after import)."))
@materialised("near-duplicate-prompt", counted_at)
def near_duplicate_prompt(pairs, dataset, settings):
    return pairs.filter(Exists(NearDuplicateMember.objects.filter(prompt_id=OuterRef("prompt_id"))))


@selection("contaminated", _("Prompt found in a benchmark"), "quality",
           _("The prompt near-duplicates a prompt of a dataset marked as a benchmark."))
@materialised("contaminated", counted_at)
def contaminated(pairs, dataset, settings):
    return pairs.filter(Exists(ContaminationMatch.objects.filter(prompt_id=OuterRef("prompt_id"))))


@selection("identical-responses", _("Chosen and rejected (nearly) identical"), "quality",
           _("Case, spaces and punctuation ignored: an edit similarity of at least `similarity`, or the shorter "
             "response, at least `length_ratio` of the longer's length, has at least `containment` of its "
             "characters in order in the longer (typos, a sentence dropped or added)."),
           similarity=near_identical.SIMILARITY, containment=near_identical.CONTAINMENT,
           length_ratio=near_identical.LENGTH_RATIO)
@materialised("identical-responses", counted_at)
def identical_responses(pairs, dataset, settings):
    # Compared in Python (rapidfuzz), the texts of the pairs whose lengths allow it: review/near_identical.py.
    return pairs.filter(pk__in=near_identical.near_identical_ids(pairs, **settings))


def _read(pairs):
    """The texts of the pairs' responses that were never read by the text checks are read first (a list of
    the rules at a job's end, a pair added since the last count), at most READ_ON_LIST of them; the count
    job reads the rest of a large dataset."""
    responses = Response.objects.filter(Q(pk__in=pairs.values("chosen_id")) | Q(pk__in=pairs.values("rejected_id")))
    text_checks.read_unread(responses, limit=READ_ON_LIST)


# Texts read when a rule is listed live: ~1 s of reading (BENCHMARKS.md). The quality page counts live up to
# LIVE_LIMIT pairs, whose texts the first count reads in a few seconds; a larger dataset has its texts read
# by the count job.
READ_ON_LIST = 50_000


def _checked(side, condition):
    """Q: the `side` response's stored reading meets `condition`."""
    return Q(Exists(ResponseTextCheck.objects.filter(condition, response_id=OuterRef(f"{side}_id"))))


# Seeded-defect benchmark (bench/audit_power.py, 3,000 pairs; defaults chosen on seed 1, figures of seeds
# 2 and 3, held out, in BENCHMARKS.md): cut-off responses 84-91 % found, empty ones 100 %, 7-8 % of the
# flagged pairs clean (most of them texts of the sources that do end cut off or unpunctuated).
@selection("empty-or-truncated", _("Empty or truncated responses"), "quality",
           _("A response cut off by a token budget (an unclosed code block, formula, table row, bracket or "
             "quote; ending on a comma, colon or dash; or stopped in a running sentence), or with less than "
             "`min_content` of content (a character, half a word: placeholders such as N/A and "
             "acknowledgements such as 好的 count nothing) where its prompt does not ask for a short answer."),
           min_content=2)
@materialised("empty-or-truncated", counted_at)
def empty_or_truncated(pairs, dataset, settings):
    _read(pairs)
    bad = Q(cut__gt="") | Q(content=0) | Q(content__lt=settings["min_content"], short_ok=False)
    return pairs.filter(_checked("chosen", bad) | _checked("rejected", bad))


# Benchmark (as above): refusals found 97-98 %, 2-3 % of the flagged pairs clean (refusals of harmful
# requests that do not say why).
@selection("refusal-chosen", _("Refusal in the chosen response"), "quality",
           _("The chosen response opens by declining to answer: a refusal said by the speaker in its first "
             "sentences (我无法回答, 恕难奉告, I can't help with that), scored with the apology, the \"as an "
             "AI\" and the policy that come with one, at least `min_score` (0-1). Apologies followed by the "
             "answer, the words in another sense and refusals that name the request's harm score lower."),
           min_score=0.5)
@materialised("refusal-chosen", counted_at)
def refusal_chosen(pairs, dataset, settings):
    _read(pairs)
    return pairs.filter(_checked("chosen", Q(refusal__gte=settings["min_score"])))


# Benchmark (as above): Japanese, Korean, Russian and English answers found 97-100 %, no clean pair
# flagged.
@selection("non-chinese-answer", _("Answer in another language than the prompt asks for"), "quality",
           _("The prompt is Chinese, and at least `off_share` of the chosen response's prose (code, formulas "
             "and links left out) is in a language it did not ask for, told by script: kana, Hangul, "
             "Cyrillic, Latin-script sentences (names and terms in Latin letters are no sentences). A prompt "
             "that asks for a translation or names a language, or quotes text in one, allows it."),
           off_share=0.5)
@materialised("non-chinese-answer", counted_at)
def non_chinese_answer(pairs, dataset, settings):
    _read(pairs)
    return pairs.filter(_checked("chosen", Q(off_language__gte=settings["off_share"])))


@selection("length-ratio", _("Extreme length ratio"), "quality",
           _("One response is at least `ratio` times as long as the other (in characters)."), signal=True,
           ratio=10.0)
@materialised("length-ratio", counted_at)
def length_ratio(pairs, dataset, settings):
    pairs = pairs.alias(quality_lc=Length("chosen__text"), quality_lr=Length("rejected__text"))
    pairs = pairs.alias(quality_ratio=_float(Greatest("quality_lc", "quality_lr"))
                        / Greatest(Least("quality_lc", "quality_lr"), Value(1)))
    return pairs.filter(quality_ratio__gte=settings["ratio"])


def rules():
    from .selections import selections_in

    return selections_in("quality")


# Up to this many pairs the quality page counts live (about 5 s at 20k pairs, measured at 100k: 23 s);
# above it, it shows the counts of the newest `quality_counts` job and when they were made.
LIVE_LIMIT = 20_000


def count_rule(rule, dataset):
    """{domain: pairs} that `rule` selects in `dataset`, with its default settings."""
    selected = rule.narrow(Pair.objects.filter(dataset=dataset), dataset, dict(rule.settings))
    return dict(selected.order_by().values_list("domain").annotate(n=Count("pk")))


# Its counts are {domain: pairs} per rule, shown on the quality page.
@job_kind(KIND, label=pgettext_lazy("job kind", "quality count"), unit="rules", changes_data=False)
def run_quality_counts(ctx: JobContext):
    """Count every rule by domain, storing the members of the materialised ones, one rule a transaction;
    a resumed job skips the rules it committed."""
    dataset = Dataset.objects.get(pk=ctx.job.dataset_id)
    ctx.set_total(len(rules()))
    if "pairs" not in ctx.cursor:  # what the counts are out of, so the page need not count a million pairs
        by_domain = dict(Pair.objects.filter(dataset=dataset).order_by().values_list("domain").annotate(n=Count("pk")))
        with transaction.atomic():
            ctx.commit(counts={"pairs": by_domain}, cursor={**ctx.cursor, "pairs": True})
    if "texts" not in ctx.cursor:  # every response's text read once, a batch a transaction (a resumed job goes on)
        text_checks.read_unread(Response.objects.filter(dataset=dataset), each_batch=lambda n: ctx.commit())
        with transaction.atomic():
            ctx.commit(cursor={**ctx.cursor, "texts": True})
    for rule in rules():
        done, stored = ctx.cursor.get("done", []), ctx.cursor.get("stored", [])
        if rule.name in done:
            continue
        live = getattr(rule.narrow, "live", None)
        with transaction.atomic():
            if live is None:
                by_domain = count_rule(rule, dataset)
            else:
                members.store(dataset, rule, live(Pair.objects.filter(dataset=dataset), dataset, dict(rule.settings)))
                by_domain = dict(members.stored(dataset, rule).order_by().values_list("domain").annotate(n=Count("pk")))
                stored = [*stored, rule.name]
            ctx.commit(done=1, counts={rule.name: by_domain},
                       cursor={**ctx.cursor, "done": [*done, rule.name], "stored": stored})
    if "suspicion" not in ctx.cursor:  # after the rules: their stored members are signals of the score
        with transaction.atomic():
            suspicion.store(dataset)
            ctx.commit(cursor={**ctx.cursor, "suspicion": True})


def needs_recount(dataset):
    """A count stored the rules' lists, a job that may change the data finished since it began, and no
    job of the dataset is under way (beat then starts the next count)."""
    job = stored_counts(dataset)
    if job is None or jobs_under_way(dataset).exists():
        return False
    return not members.unchanged_since(dataset, job.started_at)


def start_count(dataset, user=None):
    """A quality_counts job for the dataset, unless one is already waiting or running."""
    return running_job(dataset, KIND) or create_job(KIND, dataset=dataset, user=user)


def flags_of(pair):
    """The quality rules that select `pair` (one small query each, on a one-pair queryset)."""
    one = Pair.objects.filter(pk=pair.pk)
    return [rule for rule in rules() if rule.narrow(one, pair.dataset, dict(rule.settings)).exists()]
