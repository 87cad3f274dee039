from django import forms
from django.utils.translation import gettext_lazy as _

from ..models import RewardModel
from .benchmark import GOLD_SOURCES, SPLITS


class TrainRewardForm(forms.Form):
    name = forms.CharField(label=_("Model name"), max_length=RewardModel._meta.get_field("name").max_length)
    test_fraction = forms.FloatField(label=_("Held-out share of prompts"), initial=0.5, min_value=0.05, max_value=0.95)
    seed = forms.IntegerField(label=_("Seed"), initial=0, min_value=0)

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError(_("A reward model needs a name."))
        return name


class ThresholdForm(forms.Form):
    threshold = forms.FloatField(label=_("Threshold"), initial=0.0, min_value=-1e6, max_value=1e6,
                                 help_text=_("Pairs whose margin is at or below this are filtered."))


def gold_choices():
    return [(name, source.label) for name, source in GOLD_SOURCES.items()]


class LeaderboardForm(forms.Form):
    source = forms.ChoiceField(label=_("Gold pairs"), initial="pairs", required=False, choices=gold_choices)
    split = forms.ChoiceField(label=_("Pairs of models trained here"), required=False, initial="held_out",
                              choices=list(SPLITS.items()),
                              help_text=_("A reward model trained on this dataset saw half of its prompts; by default "
                                          "it is measured on the other half."))
    filter_a = forms.ChoiceField(label=_("Filter A"), required=False)
    filter_b = forms.ChoiceField(label=_("Filter B"), required=False)
    threshold = forms.FloatField(label=_("Threshold"), required=False, initial=0.0, min_value=-1e6, max_value=1e6,
                                 help_text=_("A filter keeps a pair whose margin (or panel gap) is above this."))

    def __init__(self, *args, models=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.models = {f"rm:{m.pk}": m for m in models}
        choices = [("", "—"), ("panel", _("LLM judge panel"))] + [(k, str(m)) for k, m in self.models.items()]
        self.fields["filter_a"].choices = self.fields["filter_b"].choices = choices

    def clean_split(self):
        return self.cleaned_data["split"] or "held_out"

    def clean_source(self):
        return self.cleaned_data["source"] or "pairs"

    def filter_spec(self, field):
        from .benchmark import PANEL

        key = self.cleaned_data[field]
        return PANEL if key == "panel" else self.models[key]

    def filter_label(self, field):
        return dict(self.fields[field].choices)[self.cleaned_data[field]]


class PairwiseForm(forms.Form):
    judge = forms.ModelChoiceField(label=_("Judge"), queryset=None, help_text=_(
        "Asks the judge which response is better, A or B, for every pair, in both orders."))

    def __init__(self, *args, **kwargs):
        from ..models import Judge

        super().__init__(*args, **kwargs)
        self.fields["judge"].queryset = Judge.objects.filter(is_active=True).exclude(base_url="").exclude(model="")
