"""Named selections of pairs: the one place that turns "which pairs?" into a queryset.

Every number on the dashboards links to the list behind it, the browse page filters with the same
parameters, and the review queue draws from any such list. So they all go through `PairFilter`:
a form over GET parameters (the URL of a list *is* its definition) that narrows
`Pair.objects.filter(dataset=…)`.

Base parameters (all optional, repeatable where it says so):
    domain=<code>         repeatable; Domain values (chat, code, math, …)
    status=<status>       repeatable; Pair.Status values (pending, kept, filtered, withdrawn)
    reason=<prefix>       status_reason starts with it ("reward:", "rule:gap", "withdrawn by")
    origin=<origin>       imported | constructed
    reviewed=yes|no       has at least one review / has none
    judge=<name>          a response of the pair has an ok judgement by this judge
    score_min, score_max  … with a score in this range (by `judge` when given); score_side=either|chosen|rejected
    gap_min, gap_max      panel gap chosen_score − rejected_score (pairs without panel scores drop out)
    margin_min, margin_max  reward margin r(chosen) − r(rejected) of `reward_model` (an id; default: the
                          newest reward model that scored the dataset)
    reviewer=<username>   reviewed by this user
    verdict=<verdict>     repeatable; has a review with this verdict (by `reviewer` when given)
    q=<text>              substring of the prompt's query or of either response, case-insensitive
                          (search.py: trigram-indexed from 3 characters on, once the dataset is indexed)
    flagged=no|yes        no defect rule flags the pair / one does (the low-quality rules that are no
                          signal, by the members the quality-count job stored: e.g. the suspicious pairs
                          that no rule explains, to re-judge pairwise)
    order=<name>          suspicious (most suspicious first), gap (narrowest panel gap first), margin
                          (lowest reward margin first), length (longest responses first), newest;
                          default: pair id order. See ORDERS.
    pair=<id>             repeatable; these pairs (the pair page's "Review this pair", a decision over one pair)
    decision=<batch id>   the pairs a decision changed (review/decisions.py)
    view=<name>           a registered selection (a disagreement view, a low-quality rule, …)
    <setting>=<value>     the settings that view declares (e.g. spread=3), validated as numbers

A view is registered once, in the module of its workflow (review/disagreements.py,
review/quality_rules.py, …), with `@selection(...)`; that module is imported by `review/apps.py`
so the registry is complete whenever Django is ready.
"""

import contextlib
import contextvars
from dataclasses import dataclass, field
from typing import Callable

from django import forms
from django.db.models import Exists, F, FloatField, Func, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.lookups import GreaterThan, GreaterThanOrEqual, IsNull, LessThan, LessThanOrEqual
from django.utils.translation import gettext_lazy as _

from annotation.models import Domain, Judge, Judgement, Pair, RewardModel, RewardScore

from . import search


@dataclass(frozen=True)
class Selection:
    name: str
    label: str
    group: str  # "disagreement", "quality", … : how the dashboards group the views
    narrow: Callable[[QuerySet, object, dict], QuerySet]  # (pairs of the dataset, dataset, settings) → pairs
    description: str = ""
    settings: dict = field(default_factory=dict)  # name → default value (a number)
    # A signal, not a defect flag: most of its pairs are fine (on the audit benchmark, bench/audit_power.py,
    # 60-80 % of them); the pages show it apart, as where the automatic label is less sure, and the
    # suspicion score weighs it with the other signals.
    signal: bool = False


REGISTRY: dict[str, Selection] = {}


def selection(name, label, group, description="", signal=False, **settings):
    """Register `fn(pairs, dataset, settings) -> pairs` as the named view `name`; `signal=True` for a view
    that marks uncertainty rather than a defect (Selection.signal)."""

    def register(fn):
        if name in REGISTRY:
            raise ValueError(f"a selection named {name!r} is already registered")
        REGISTRY[name] = Selection(name, label, group, fn, description, dict(settings), signal)
        return fn

    return register


def selections_in(group):
    return [s for s in REGISTRY.values() if s.group == group]


class IdListField(forms.Field):
    """Repeatable positive integer ids (`pair=1&pair=2`), carried as hidden inputs."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value):
        if not value:
            return []
        try:
            ids = [int(v) for v in value if str(v).strip() != ""]
        except (TypeError, ValueError):
            raise forms.ValidationError(_("Pair ids are whole numbers.")) from None
        if any(i < 1 for i in ids):
            raise forms.ValidationError(_("Pair ids are whole numbers."))
        return ids


class PairFilter(forms.Form):
    # Ticked boxes, not <select multiple>: choosing two needs no Ctrl-click.
    domain = forms.MultipleChoiceField(choices=Domain.choices, required=False, label=_("Domain"),
                                       widget=forms.CheckboxSelectMultiple)
    status = forms.MultipleChoiceField(choices=Pair.Status.choices, required=False, label=_("Status"),
                                       widget=forms.CheckboxSelectMultiple)
    reason = forms.CharField(required=False, max_length=200, label=_("Reason starts with"))
    origin = forms.ChoiceField(choices=[("", _("Any"))] + list(Pair.Origin.choices), required=False,
                               label=_("Origin"))
    reviewed = forms.ChoiceField(choices=[("", _("Any")), ("yes", _("Reviewed")), ("no", _("Not reviewed"))],
                                 required=False, label=_("Reviewed"))
    view = forms.ChoiceField(choices=(), required=False, label=_("View"))
    q = forms.CharField(required=False, max_length=200, strip=True, label=_("Search prompts and responses"))
    judge = forms.ModelChoiceField(queryset=Judge.objects.all(), to_field_name="name", required=False,
                                   label=_("Judge"))
    score_min = forms.FloatField(required=False, label=_("Score from"))
    score_max = forms.FloatField(required=False, label=_("Score to"))
    score_side = forms.ChoiceField(
        choices=[("either", _("Either response")), ("chosen", _("Chosen")), ("rejected", _("Rejected"))],
        required=False, label=_("Score of"))
    gap_min = forms.FloatField(required=False, label=_("Gap from"))
    gap_max = forms.FloatField(required=False, label=_("Gap to"))
    margin_min = forms.FloatField(required=False, label=_("Margin from"))
    margin_max = forms.FloatField(required=False, label=_("Margin to"))
    reward_model = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput,
                                      label=_("Reward model"))
    reviewer = forms.CharField(required=False, max_length=150, label=_("Reviewer"))
    verdict = forms.MultipleChoiceField(choices=(), required=False, label=_("Verdict"),
                                        widget=forms.CheckboxSelectMultiple)
    flagged = forms.ChoiceField(choices=[("", _("Any")), ("yes", _("A defect rule flags it")),
                                         ("no", _("No defect rule flags it"))], required=False,
                                label=_("Defect rules"))
    order = forms.ChoiceField(choices=(), required=False, label=_("Order"))
    pair = IdListField(required=False, label=_("Pairs"))
    decision = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput, label=_("Decision"))

    def __init__(self, data=None, **kwargs):
        super().__init__(data, **kwargs)
        self.fields["view"].choices = [("", _("All pairs"))] + [(s.name, s.label) for s in REGISTRY.values()]
        from .models import Review

        self.fields["verdict"].choices = Review.Verdict.choices
        self.fields["order"].choices = [(name, spec.label) for name, spec in ORDERS.items()]
        self.view_settings = {}

    def clean(self):
        data = super().clean()
        view = REGISTRY.get(data.get("view") or "")
        if view is not None:
            for key, default in view.settings.items():
                raw = self.data.get(key, "") if self.data else ""
                if raw in ("", None):
                    self.view_settings[key] = default
                    continue
                try:
                    self.view_settings[key] = type(default)(raw)
                except (TypeError, ValueError):
                    self.add_error(None, _("%(setting)s must be a number, not %(value)r.")
                                   % {"setting": key, "value": raw})
        for low, high in (("score_min", "score_max"), ("gap_min", "gap_max"), ("margin_min", "margin_max")):
            if data.get(low) is not None and data.get(high) is not None and data[low] > data[high]:
                self.add_error(high, _("%(high)s is below %(low)s.") % {"high": high, "low": low})
        return data

    def pairs(self, dataset, search_text=True):
        """The selected pairs of `dataset` (a queryset, id order). Call after is_valid().
        `search_text=False` leaves `q` out, for the pair list, which searches a page at a time."""
        data = self.cleaned_data
        pairs = Pair.objects.filter(dataset=dataset)
        if data.get("domain"):
            pairs = pairs.filter(domain__in=data["domain"])
        if data.get("status"):
            pairs = pairs.filter(status__in=data["status"])
        if data.get("reason"):
            pairs = pairs.filter(status_reason__startswith=data["reason"])
        if data.get("origin"):
            pairs = pairs.filter(origin=data["origin"])
        if data.get("pair"):
            pairs = pairs.filter(pk__in=data["pair"])
        if data.get("decision"):
            from .models import PairDecision

            pairs = pairs.filter(pk__in=PairDecision.objects.filter(batch_id=data["decision"]).values("pair_id"))
        if data.get("reviewed"):
            from .models import Review

            has_review = Exists(Review.objects.filter(pair=OuterRef("pk")))
            pairs = pairs.filter(has_review if data["reviewed"] == "yes" else ~has_review)
        pairs = self._narrow_scores(pairs, data)
        pairs = self._narrow_margin(pairs, dataset, data)
        pairs = self._narrow_reviews(pairs, data)
        if data.get("flagged"):
            pairs = _narrow_flagged(pairs, dataset, data["flagged"] == "yes")
        if data.get("q") and search_text:
            pairs = search.narrow(pairs, dataset, data["q"])
        view = REGISTRY.get(data.get("view") or "")
        if view is not None:
            pairs = view.narrow(pairs, dataset, dict(self.view_settings))
        return ordered(pairs, data.get("order"))

    @staticmethod
    def _narrow_scores(pairs, data):
        if data.get("judge") is not None or data.get("score_min") is not None or data.get("score_max") is not None:
            judgements = Judgement.objects.filter(status=Judgement.Status.OK)
            if data.get("judge") is not None:
                judgements = judgements.filter(judge=data["judge"])
            if data.get("score_min") is not None:
                judgements = judgements.filter(score__gte=data["score_min"])
            if data.get("score_max") is not None:
                judgements = judgements.filter(score__lte=data["score_max"])
            side = data.get("score_side") or "either"
            columns = {"chosen": ["chosen_id"], "rejected": ["rejected_id"]}.get(side, ["chosen_id", "rejected_id"])
            scored = Q()
            for column in columns:
                scored |= Exists(judgements.filter(response_id=OuterRef(column)))
            pairs = pairs.filter(scored)
        if data.get("gap_min") is not None or data.get("gap_max") is not None:
            pairs = pairs.alias(panel_gap=F("chosen_score") - F("rejected_score"))
            if data.get("gap_min") is not None:
                pairs = pairs.filter(panel_gap__gte=data["gap_min"])
            if data.get("gap_max") is not None:
                pairs = pairs.filter(panel_gap__lte=data["gap_max"])
        return pairs

    @staticmethod
    def _narrow_margin(pairs, dataset, data):
        if data.get("margin_min") is None and data.get("margin_max") is None:
            return pairs
        model = data.get("reward_model") or RewardModel.objects.newest_for(dataset)
        rewards = RewardScore.objects.filter(reward_model=model)

        def reward_of(column):
            return Subquery(rewards.filter(response_id=OuterRef(column)).values("reward")[:1])

        pairs = pairs.alias(reward_margin=reward_of("chosen_id") - reward_of("rejected_id"))
        if data.get("margin_min") is not None:
            pairs = pairs.filter(reward_margin__gte=data["margin_min"])
        if data.get("margin_max") is not None:
            pairs = pairs.filter(reward_margin__lte=data["margin_max"])
        return pairs

    @staticmethod
    def _narrow_reviews(pairs, data):
        if not data.get("reviewer") and not data.get("verdict"):
            return pairs
        from .models import Review

        reviews = Review.objects.filter(pair=OuterRef("pk"))
        if data.get("reviewer"):
            reviews = reviews.filter(reviewer__username=data["reviewer"])
        if data.get("verdict"):
            reviews = reviews.filter(verdict__in=data["verdict"])
        return pairs.filter(Exists(reviews))

    def query_string(self):
        """The parameters as a URL query string (for links, pagination and the queue)."""
        return self.data.urlencode() if hasattr(self.data, "urlencode") else ""


def _narrow_flagged(pairs, dataset, flagged):
    """The pairs some defect rule flags (flagged) or none does, by the rules' stored members (probes of the
    (dataset, view, pair) index, so a suspicious-first page stays a walk down the score index)."""
    from .models import SelectionMember

    rules = [s.name for s in REGISTRY.values() if s.group == "quality" and not s.signal]
    member = _ProbedExists(SelectionMember.objects.filter(dataset=dataset, view__in=rules, pair=OuterRef("pk")))
    return pairs.filter(member if flagged else ~member)


class _ProbedExists(Exists):
    """EXISTS that PostgreSQL keeps as a probe of the subquery's index per pair (OFFSET 0 stops it turning the
    subquery into a join). As a join, a page of `flagged=no` after pair 683,332 of a million was a merge
    anti-join that read the members' pair index from its start, 185,000 rows (890 ms); as a probe, 62 index
    probes (0.6 ms). The planner guesses that half the pairs pass a probe, so the list's estimated count is
    asked of the join (probes_as_joins), whose estimate follows the members' statistics."""
    template = "EXISTS(%(subquery)s OFFSET 0)"

    def as_sql(self, compiler, connection, template=None, **extra_context):
        if _AS_JOIN.get():
            template = Exists.template
        return super().as_sql(compiler, connection, template=template, **extra_context)


_AS_JOIN = contextvars.ContextVar("probes_as_joins", default=False)


@contextlib.contextmanager
def probes_as_joins():
    """Within it, querysets compile their probed EXISTS as plain ones (for the planner's estimate of a count)."""
    token = _AS_JOIN.set(True)
    try:
        yield
    finally:
        _AS_JOIN.reset(token)


@dataclass(frozen=True)
class Order:
    """A sort of the pair list (and of the queue over it): `key` an expression over the pair, `descending` its
    direction; ties and the pairs without a key (last) go in id order, ascending unless `ids_descending`.
    Each is an index scan (review/migrations/0012_pair_list_sorts.py), so a page costs what the first does."""
    label: str
    key: object = None  # None: pair id order
    descending: bool = False
    ids_descending: bool = False
    # The key is a column of PairSuspicion (F("suspicion__…")), stored by the quality-count job: pages are read
    # from its index on (dataset, key, pair) first, then the pairs it has no row for (keyset_ids).
    stored: bool = False
    index_nulls_last: bool = True  # how the index sorts nulls (a descending index puts them first by default)

    def order_by(self):
        if self.key is None:
            return ["-pk" if self.ids_descending else "pk"]
        key = self.key.desc(nulls_last=True) if self.descending else self.key.asc(nulls_last=True)
        return [key, "-pk" if self.ids_descending else "pk"]

    def index_order_by(self):
        """The order of the pairs that have a key, as their index sorts them (keyset_ids)."""
        key = self.key.desc(nulls_last=self.index_nulls_last or None) if self.descending else self.key.asc()
        ids = self.index_id()
        return [key, ids.desc() if self.ids_descending else ids.asc()]

    def index_id(self):
        # The pair id as the key's index holds it: PairSuspicion's own pair_id for a stored key, so that
        # PostgreSQL sees the index's order (the pair's id is the same number, but not the same column to it).
        return F("suspicion__pair") if self.stored else F("pk")


ORDERS = {
    "": Order(_("Pair id")),
    # The stored score (review/suspicion.py); pairs the quality-count job has not scored come last.
    "suspicious": Order(_("Most suspicious first"), F("suspicion__score"), descending=True, stored=True,
                        index_nulls_last=False),
    # The panel's gap, narrowest first: the pairs the panel was least sure of (expression index pair_dataset_gap).
    "gap": Order(_("Narrowest gap first"), F("chosen_score") - F("rejected_score")),
    # Reward margin and length as the quality-count job stored them beside the suspicion (PairSuspicion).
    "margin": Order(_("Lowest reward margin first"), F("suspicion__margin"), stored=True),
    "length": Order(_("Longest responses first"), F("suspicion__length"), descending=True, ids_descending=True,
                    stored=True),
    "newest": Order(_("Newest first"), F("created_at"), descending=True, ids_descending=True, index_nulls_last=False),
}


def ordered(pairs, order):
    """The pairs in the list's order (ORDERS; unknown names: pair id)."""
    return pairs.order_by(*ORDERS.get(order or "", ORDERS[""]).order_by())


def after(pairs, order, pair_id, inclusive=False):
    """The pairs that come after pair `pair_id` in `order` (keyset pagination: page 1,000 costs what page 1 does),
    with it when `inclusive`; all of them when `pair_id` is None."""
    if pair_id is None:
        return pairs
    return pairs.filter(_beyond(ORDERS.get(order or "", ORDERS[""]), pair_id, forward=True, inclusive=inclusive))


def before(pairs, order, pair_id):
    """The pairs that come before pair `pair_id` in `order`, nearest first (the previous page, read backwards)."""
    spec = ORDERS.get(order or "", ORDERS[""])
    reverse = [key.reverse_ordering() if hasattr(key, "reverse_ordering") else
               (key[1:] if key.startswith("-") else "-" + key) for key in spec.order_by()]
    return pairs.filter(_beyond(spec, pair_id, forward=False)).order_by(*reverse)


def keyset_ids(pairs, dataset, order, start=None, inclusive=False, backward=False, limit=51):
    """Ids of the first `limit` pairs after pair `start` in `order` (before it, nearest first, when `backward`).

    A key stored in PairSuspicion is read in two parts, each one index scan: the pairs with a key, in the
    order of the index (dataset, key, pair), then those without, in id order. A single query with the key's
    LEFT JOIN and NULLS LAST cannot follow that index: PostgreSQL joined and sorted every pair (430 ms at
    100k pairs, measured) where the two parts read 51 rows each."""
    spec = ORDERS.get(order or "", ORDERS[""])
    if spec.key is None:
        found = before(pairs, order, start) if backward else after(pairs, order, start, inclusive)
        return list(found.values_list("pk", flat=True)[:limit])
    keyed = pairs.filter(_key_q(spec, "isnull", False))
    if spec.stored:
        keyed = keyed.filter(suspicion__dataset=dataset)  # so that PostgreSQL can walk (dataset, key, pair)
    keyed = keyed.order_by(*spec.index_order_by())
    unkeyed = pairs.filter(_key_q(spec, "isnull", True)).order_by("-pk" if spec.ids_descending else "pk")
    start_key = None
    if start is not None:
        start_key = Pair.objects.filter(pk=start).annotate(sort_key=spec.key).values_list("sort_key", flat=True).first()

    def past_id(forward):
        up = forward != spec.ids_descending
        return Q(**{f"pk__{'gt' if up else 'lt'}{'e' if inclusive and forward else ''}": start})

    if start is None:
        parts = [keyed, unkeyed]
    elif not backward:
        parts = ([keyed.filter(_keyed_past(spec, start, start_key, True, inclusive)), unkeyed]
                 if start_key is not None else [unkeyed.filter(past_id(True))])
    elif start_key is None:
        parts = [unkeyed.filter(past_id(False)).reverse(), keyed.reverse()]
    else:
        parts = [keyed.filter(_keyed_past(spec, start, start_key, False, False)).reverse()]
    ids = []
    for part in parts:
        if len(ids) < limit and not (part is unkeyed and spec.stored and _every_pair_scored(dataset)):
            ids += part.values_list("pk", flat=True)[:limit - len(ids)]
    return ids


def _every_pair_scored(dataset):
    """Every pair of the dataset has its PairSuspicion row: the newest quality count stored the scores (of every
    pair it saw) and no job that may change the data (an import or a build, which add pairs) has finished
    since or is under way. Then the list's pairs without a key need no query: at a million pairs, finding
    that there are none is an anti-join over all of them (973 ms, measured), on the last page of a list or on
    each page of a short one."""
    from . import members, quality_rules

    job = quality_rules.stored_counts(dataset)
    return job is not None and job.cursor.get("suspicion") and members.unchanged_since(dataset, job.started_at)


class _Row(Func):
    template = "ROW(%(expressions)s)"
    output_field = FloatField()  # compared only with another row


def _keyed_past(spec, pair_id, key, forward, inclusive):
    """Q for the pairs with a key past pair `pair_id` (whose key is `key`). Where the key and the ids run the same
    way this is one row comparison, which PostgreSQL answers as a range of the index, so a deep page costs
    what the first does; "most suspicious first" (score down, ids up) needs the OR."""
    if spec.descending != spec.ids_descending:
        return _beyond(spec, pair_id, forward, inclusive, key, with_nulls=False)
    up = forward != spec.descending
    lookup = (GreaterThanOrEqual if inclusive else GreaterThan) if up else (LessThanOrEqual if inclusive else LessThan)
    return Q(lookup(_Row(spec.key, spec.index_id()), _Row(Value(key), Value(pair_id))))


def _beyond(spec, pair_id, forward, inclusive=False, key=..., with_nulls=True):
    """Q for the pairs past pair `pair_id` in `spec`'s order: after it (`forward`) or before it."""
    ids_up = forward != spec.ids_descending
    past_id = Q(**{f"pk__{'gt' if ids_up else 'lt'}{'e' if inclusive else ''}": pair_id})
    if spec.key is None:
        return past_id
    if key is ...:
        key = Pair.objects.filter(pk=pair_id).annotate(sort_key=spec.key).values_list("sort_key", flat=True).first()
    is_null = _key_q(spec, "isnull", True)
    if key is None:  # among the pairs without a key, which come last
        return (is_null & past_id) if forward else (is_null & past_id) | _key_q(spec, "isnull", False)
    up = forward != spec.descending
    # key ≥ k AND (key > k OR id past): the first half is a range of the key's index, the rest filters the ties.
    past = _key_q(spec, "gte" if up else "lte", key) & (_key_q(spec, "gt" if up else "lt", key) | past_id)
    return past | is_null if forward and with_nulls else past


def _key_q(spec, lookup, value):
    if isinstance(spec.key, F):
        return Q(**{f"{spec.key.name}__{lookup}": value})
    lookups = {"gt": GreaterThan, "lt": LessThan, "gte": GreaterThanOrEqual, "lte": LessThanOrEqual, "isnull": IsNull}
    return Q(lookups[lookup](spec.key, value))


def select_pairs(dataset, params):
    """(pairs, form) for GET-style `params`; pairs is None when the form is invalid."""
    form = PairFilter(params)
    if not form.is_valid():
        return None, form
    return form.pairs(dataset), form
