"""Saved filters: a user's named pair lists of a dataset (the list's URL parameters, review/selections.py),
linked above the pair list. Private to the user who saved them; saving a name again replaces its parameters."""

from urllib.parse import parse_qsl, urlencode

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import SavedFilter

# Saved filters one user keeps per dataset at most; the list above the pairs stays a line or two.
MAX_PER_DATASET = 50
# Parameters that say where a page starts, not which pairs: never saved.
POSITION = ("after", "before", "at")


class SaveForm(forms.Form):
    name = forms.CharField(max_length=100, strip=True, label=_("Save this filter as"))
    query = forms.CharField(max_length=2000, required=False, widget=forms.HiddenInput)

    def clean_query(self):
        pairs = [(k, v) for k, v in parse_qsl(self.cleaned_data["query"], keep_blank_values=False)
                 if k not in POSITION]
        return urlencode(pairs)


def of(user, dataset):
    return list(SavedFilter.objects.filter(user=user, dataset=dataset).order_by("name")[:MAX_PER_DATASET])


def save(user, dataset, name, query):
    """Save (or replace) the filter `name`; ValueError when the user already keeps the most there are room for."""
    if (not SavedFilter.objects.filter(user=user, dataset=dataset, name=name).exists()
            and SavedFilter.objects.filter(user=user, dataset=dataset).count() >= MAX_PER_DATASET):
        raise ValueError(_("You keep %(n)s saved filters for this dataset already; delete one first.")
                         % {"n": MAX_PER_DATASET})
    saved, _created = SavedFilter.objects.update_or_create(user=user, dataset=dataset, name=name,
                                                           defaults={"query": query})
    return saved
