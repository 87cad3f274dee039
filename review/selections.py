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
    order=suspicious      most suspicious first (review/suspicion.py's stored score; unscored pairs last);
                          default: pair id order
    pair=<id>             repeatable; these pairs (the pair page's "Review this pair", a decision over one pair)
    decision=<batch id>   the pairs a decision changed (review/decisions.py)
    view=<name>           a registered selection (a disagreement view, a low-quality rule, …)
    <setting>=<value>     the settings that view declares (e.g. spread=3), validated as numbers

A view is registered once, in the module of its workflow (review/disagreements.py,
review/quality_rules.py, …), with `@selection(...)`; that module is imported by `review/apps.py`
so the registry is complete whenever Django is ready.
"""

from dataclasses import dataclass, field
from typing import Callable

from django import forms
from django.db.models import Exists, F, OuterRef, Q, QuerySet, Subquery
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
    domain = forms.MultipleChoiceField(choices=Domain.choices, required=False, label=_("Domain"))
    status = forms.MultipleChoiceField(choices=Pair.Status.choices, required=False, label=_("Status"))
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
    verdict = forms.MultipleChoiceField(choices=(), required=False, label=_("Verdict"))
    flagged = forms.ChoiceField(choices=[("", _("Any")), ("yes", _("A defect rule flags it")),
                                         ("no", _("No defect rule flags it"))], required=False,
                                label=_("Defect rules"))
    order = forms.ChoiceField(choices=[("", _("Pair id")), ("suspicious", _("Most suspicious first"))],
                              required=False, label=_("Order"))
    pair = IdListField(required=False, label=_("Pairs"))
    decision = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput, label=_("Decision"))

    def __init__(self, data=None, **kwargs):
        super().__init__(data, **kwargs)
        self.fields["view"].choices = [("", _("All pairs"))] + [(s.name, s.label) for s in REGISTRY.values()]
        from .models import Review

        self.fields["verdict"].choices = Review.Verdict.choices
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
    member = Exists(SelectionMember.objects.filter(dataset=dataset, view__in=rules, pair=OuterRef("pk")))
    return pairs.filter(member if flagged else ~member)


def ordered(pairs, order):
    """The pairs in the list's order: pair id, or most suspicious first (an index scan of PairSuspicion's
    (dataset, score desc, pair); pairs the quality-count job has not scored come last, in id order)."""
    if order == "suspicious":
        return pairs.order_by(F("suspicion__score").desc(nulls_last=True), "pk")
    return pairs.order_by("pk")


def after(pairs, order, pair_id):
    """The pairs that come after pair `pair_id` in `order` (keyset pagination: page 1,000 costs what page 1 does);
    all of them when `pair_id` is None."""
    if pair_id is None:
        return pairs
    if order != "suspicious":
        return pairs.filter(pk__gt=pair_id)
    from .models import PairSuspicion

    score = PairSuspicion.objects.filter(pair_id=pair_id).values_list("score", flat=True).first()
    if score is None:
        return pairs.filter(suspicion__isnull=True, pk__gt=pair_id)
    return pairs.filter(Q(suspicion__score__lt=score) | Q(suspicion__score=score, pk__gt=pair_id)
                        | Q(suspicion__isnull=True))


def select_pairs(dataset, params):
    """(pairs, form) for GET-style `params`; pairs is None when the form is invalid."""
    form = PairFilter(params)
    if not form.is_valid():
        return None, form
    return form.pairs(dataset), form
