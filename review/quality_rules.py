"""Low-quality rules: named selections of pairs that are probably wrong or useless for training.

Each rule is a function `(pairs, dataset, settings) -> pairs` registered with `@selection(…, "quality",
…)`; it narrows a queryset in SQL (no Python loop over pairs; `identical-responses` reads the texts of
the pairs whose lengths allow a match and compares them in C, review/near_identical.py), so the same rule
counts a million pairs on the quality page, lists them (`pairs/?view=<name>`), feeds the review queue, and
flags a single pair on its page. To add a rule, write one more function here; review/apps.py imports this module.
Settings are numbers with defaults, overridable in the list's URL (`view=small-gap&gap=1.5`).

The rules that read texts, scores, judgements or duplicates take seconds per list on a large dataset,
so the `quality_counts` job stores their members as it counts them (`@materialised`, review/members.py):
their lists, at the default settings, read the stored pairs until a job of the dataset changes its data.
"""

from django.db import transaction
from django.db.models import Count, Exists, F, FloatField, Func, OuterRef, Q, Value
from django.db.models.functions import Cast, Greatest, Left, Least, Length, Mod, Replace
from django.utils.translation import gettext_lazy as _

from annotation.jobs import JobContext, job_runner
from annotation.models import ContaminationMatch, Dataset, Job, Judgement, NearDuplicateMember, Pair
from annotation.reward.features import REFUSAL_PHRASES

from . import members, near_identical
from .members import materialised
from .selections import selection

CJK = "\u4e00-\u9fff"
# A response that ends with one of these stopped in mid-sentence.
_UNFINISHED_END = r"[，,、：:；;（(“\[{—-]\s*$"


class _RegexpReplace(Func):
    function = "regexp_replace"

    def __init__(self, expression, pattern, replacement=""):
        super().__init__(expression, Value(pattern), Value(replacement), Value("g"))


def _float(expression):
    return Cast(expression, FloatField())


def _on_either_response(pairs, condition):
    """condition(column) → Q on one response column ("chosen" / "rejected"); true for either."""
    return pairs.filter(condition("chosen") | condition("rejected"))


def stored_counts(dataset):
    """The newest completed quality_counts job of the dataset, or None."""
    return (Job.objects.filter(dataset=dataset, kind="quality_counts", status__in=Job.COMPLETED)
            .order_by("-finished_at", "-pk").first())


def counted_at(dataset, name):
    """When the newest finished quality_counts job that stored the rule's members began, or None."""
    job = stored_counts(dataset)
    return job.started_at if job is not None and name in job.cursor.get("stored", ()) else None


@selection("reward-filtered", _("Filtered by the reward model"), "quality",
           _("Pairs a reward model filtered: margin r(chosen) − r(rejected) at or below its threshold."))
def reward_filtered(pairs, dataset, settings):
    return pairs.filter(status=Pair.Status.FILTERED, status_reason__startswith="reward:")


@selection("small-gap", _("Score gap below a setting"), "quality",
           _("Pairs whose panel score gap (chosen − rejected) is below `gap`; pairs without panel scores "
             "(imported ones) are not counted."), gap=3.0)
@materialised("small-gap", counted_at)
def small_gap(pairs, dataset, settings):
    return pairs.alias(quality_gap=F("chosen_score") - F("rejected_score")).filter(quality_gap__lt=settings["gap"])


@selection("judge-failures", _("Judge parse failures or refusals"), "quality",
           _("A judge's answer about the chosen or the rejected response could not be parsed, or the judge "
             "refused."))
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


def _fences(column):
    return (Length(column) - Length(Replace(column, Value("```"), Value("")))) / 3


@selection("empty-or-truncated", _("Empty or truncated responses"), "quality",
           _("A response with fewer than `min_chars` characters besides spaces, an unclosed code fence, or "
             "ending in mid-sentence (a comma, colon or opening bracket)."), min_chars=2)
@materialised("empty-or-truncated", counted_at)
def empty_or_truncated(pairs, dataset, settings):
    condition = Q()
    for side in ("chosen", "rejected"):
        text = f"{side}__text"
        pairs = pairs.alias(**{f"quality_{side}_chars": Length(_RegexpReplace(text, r"\s+")),
                               f"quality_{side}_fences": Mod(_fences(text), 2)})
        condition |= (Q(**{f"quality_{side}_chars__lt": settings["min_chars"]})
                      | Q(**{f"quality_{side}_fences": 1}) | Q(**{f"{text}__regex": _UNFINISHED_END}))
    return pairs.filter(condition)


_REFUSAL_REGEX = "|".join(
    "".join("\\" + c if not c.isalnum() and not c.isspace() else c for c in phrase) for phrase in REFUSAL_PHRASES
)


@selection("refusal-chosen", _("Refusal in the chosen response"), "quality",
           _("The chosen response opens (first 400 characters) with a refusal phrase, as the reward model's "
             "refusal feature reads it (抱歉, 我无法, I cannot, …)."))
@materialised("refusal-chosen", counted_at)
def refusal_chosen(pairs, dataset, settings):
    return pairs.alias(quality_opening=Left("chosen__text", 400)).filter(quality_opening__iregex=_REFUSAL_REGEX)


# Code and formulas, removed before counting letters (one quantifier each: PostgreSQL takes a regular
# expression's greediness from its first quantifier).
_NOT_PROSE = ["```.*?```", "`[^`]*`", r"\$\$.*?\$\$", r"\$[^$]*\$", r"\\\[.*?\\\]", r"\\\(.*?\\\)"]


def _letters(expression, kind):
    return Length(_RegexpReplace(expression, f"[^{kind}]"))


@selection("non-chinese-answer", _("Non-Chinese answer to a Chinese prompt"), "quality",
           _("The prompt's query has Chinese characters but among the letters of the chosen response, outside "
             "code and formulas, Chinese characters are fewer than `min_share`."), min_share=0.2)
@materialised("non-chinese-answer", counted_at)
def non_chinese_answer(pairs, dataset, settings):
    prose = "chosen__text"
    for pattern in _NOT_PROSE:
        prose = _RegexpReplace(prose, pattern)
    pairs = pairs.filter(prompt__query__regex=f"[{CJK}]")
    pairs = pairs.alias(quality_cjk=_letters(prose, CJK), quality_latin=_letters(prose, "A-Za-z"))
    pairs = pairs.alias(quality_share=_float("quality_cjk") / Greatest(F("quality_cjk") + F("quality_latin"), 1))
    return pairs.filter(quality_latin__gt=0, quality_share__lt=settings["min_share"])


@selection("length-ratio", _("Extreme length ratio"), "quality",
           _("One response is at least `ratio` times as long as the other (in characters)."), ratio=10.0)
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


@job_runner("quality_counts", unit="rules")
def run_quality_counts(ctx: JobContext):
    """Count every rule by domain, storing the members of the materialised ones, one rule a transaction;
    a resumed job skips the rules it committed."""
    dataset = Dataset.objects.get(pk=ctx.job.dataset_id)
    ctx.set_total(len(rules()))
    if "pairs" not in ctx.cursor:  # what the counts are out of, so the page need not count a million pairs
        by_domain = dict(Pair.objects.filter(dataset=dataset).order_by().values_list("domain").annotate(n=Count("pk")))
        with transaction.atomic():
            ctx.commit(counts={"pairs": by_domain}, cursor={**ctx.cursor, "pairs": True})
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


def needs_recount(dataset):
    """A count stored the rules' lists, a job that may change the data finished since it began, and no
    job of the dataset is under way (beat then starts the next count)."""
    job = stored_counts(dataset)
    if job is None or Job.objects.filter(dataset=dataset).exclude(status__in=Job.FINISHED).exists():
        return False
    return not members.unchanged_since(dataset, job.started_at)


def start_count(dataset, user=None):
    """A quality_counts job for the dataset, unless one is already waiting or running."""
    from annotation.jobs import create_job

    running = Job.objects.filter(dataset=dataset, kind="quality_counts").exclude(status__in=Job.FINISHED).first()
    return running or create_job("quality_counts", dataset=dataset, user=user)


def flags_of(pair):
    """The quality rules that select `pair` (one small query each, on a one-pair queryset)."""
    one = Pair.objects.filter(pk=pair.pk)
    return [rule for rule in rules() if rule.narrow(one, pair.dataset, dict(rule.settings)).exists()]
