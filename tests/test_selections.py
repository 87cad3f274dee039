"""Named pair selections: the base filters, registered views with settings, and bad parameters."""

import pytest
from django.core.management import call_command
from django.http import QueryDict

from annotation.models import Dataset, Pair
from review import selections
from review.models import Review
from review.selections import PairFilter, select_pairs, selection

from .helpers import Team, generated_pairs, write_jsonl


@pytest.fixture
def dataset(db, tmp_path):
    # 24 pairs over 6 prompts, one prompt per domain, four pairs each.
    path = write_jsonl(tmp_path / "pairs.jsonl", generated_pairs(24))
    call_command("import_pairs", str(path), dataset="sel", no_progress=True, no_near_duplicates=True)
    return Dataset.objects.get(name="sel")


def ids(pairs):
    return list(pairs.values_list("pk", flat=True))


def test_without_parameters_every_pair_of_the_dataset_is_selected_in_id_order(dataset):
    Team.create("other")  # another dataset's pairs never leak in
    pairs, form = select_pairs(dataset, QueryDict(""))
    assert ids(pairs) == sorted(Pair.objects.filter(dataset=dataset).values_list("pk", flat=True))
    assert len(ids(pairs)) == 24


def test_domains_and_statuses_are_repeatable_and_combine(dataset):
    all_pairs = Pair.objects.filter(dataset=dataset).order_by("pk")
    first_math, first_code = all_pairs.filter(domain="math")[0], all_pairs.filter(domain="code")[0]
    Pair.objects.filter(pk__in=[first_math.pk, first_code.pk]).update(status="kept")
    pairs, _ = select_pairs(dataset, QueryDict("domain=math&domain=code&status=kept"))
    assert ids(pairs) == sorted([first_math.pk, first_code.pk])
    pairs, _ = select_pairs(dataset, QueryDict("domain=math&status=pending"))
    assert len(ids(pairs)) == 3 and first_math.pk not in ids(pairs)


def test_reason_matches_the_start_of_the_status_reason(dataset):
    pair = Pair.objects.filter(dataset=dataset).first()
    Pair.objects.filter(pk=pair.pk).update(status="filtered", status_reason="reward:crm v1 margin=-0.5")
    assert ids(select_pairs(dataset, QueryDict("reason=reward:"))[0]) == [pair.pk]
    assert ids(select_pairs(dataset, QueryDict("reason=rule:"))[0]) == []


def test_reviewed_yes_and_no_split_the_pairs(dataset):
    team = Team.create("reviewers")
    pair = Pair.objects.filter(dataset=dataset).last()
    Review.objects.create(pair=pair, reviewer=team.reviewer, verdict="chosen_better")
    assert ids(select_pairs(dataset, QueryDict("reviewed=yes"))[0]) == [pair.pk]
    assert pair.pk not in ids(select_pairs(dataset, QueryDict("reviewed=no"))[0])
    assert len(ids(select_pairs(dataset, QueryDict("reviewed=no"))[0])) == 23


def test_flagged_splits_the_pairs_by_the_stored_members_of_the_defect_rules_not_the_signals(dataset):
    from review.models import SelectionMember

    first, second, third = Pair.objects.filter(dataset=dataset).order_by("pk")[:3]
    SelectionMember.objects.create(dataset=dataset, view="empty-or-truncated", pair=first)  # a defect rule
    SelectionMember.objects.create(dataset=dataset, view="length-ratio", pair=second)  # a signal
    SelectionMember.objects.create(dataset=dataset, view="judge-spread", pair=third)  # a disagreement signal
    assert selections.REGISTRY["length-ratio"].signal and not selections.REGISTRY["empty-or-truncated"].signal
    assert ids(select_pairs(dataset, QueryDict("flagged=yes"))[0]) == [first.pk]
    unflagged = ids(select_pairs(dataset, QueryDict("flagged=no"))[0])
    assert first.pk not in unflagged and second.pk in unflagged and third.pk in unflagged and len(unflagged) == 23
    assert select_pairs(dataset, QueryDict("flagged=maybe"))[0] is None
    # a page after a pair: the members are probed per pair (a join read the members' index from its start)
    flagged_no = select_pairs(dataset, QueryDict("flagged=no"))[0]
    assert "OFFSET 0" in str(flagged_no.query)
    assert ids(selections.after(flagged_no, "", first.pk)) == unflagged
    assert ids(selections.after(select_pairs(dataset, QueryDict("flagged=yes"))[0], "", first.pk)) == []
    # ... while the list's estimated count asks the planner about the join (its guess for a probe is one half)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from review import pair_count

    with CaptureQueriesContext(connection) as queries:
        pair_count.estimated(flagged_no)
    assert "NOT EXISTS" in queries.captured_queries[-1]["sql"] and "OFFSET 0" not in queries.captured_queries[-1]["sql"]
    assert "OFFSET 0" in str(flagged_no.query)  # and the queryset itself still probes afterwards


@pytest.fixture
def every_other_view():
    @selection("test-every-other", "Every other pair", "test", step=2)
    def every_other(pairs, dataset, settings):
        keep = list(pairs.order_by("pk").values_list("pk", flat=True))[:: settings["step"]]
        return pairs.filter(pk__in=keep)

    yield selections.REGISTRY["test-every-other"]
    del selections.REGISTRY["test-every-other"]


def test_a_registered_view_narrows_the_selection_with_its_settings(dataset, every_other_view):
    everything = ids(select_pairs(dataset, QueryDict(""))[0])
    assert ids(select_pairs(dataset, QueryDict("view=test-every-other"))[0]) == everything[::2]
    assert ids(select_pairs(dataset, QueryDict("view=test-every-other&step=3"))[0]) == everything[::3]
    # Base filters apply before the view.
    math = ids(select_pairs(dataset, QueryDict("domain=math"))[0])
    assert ids(select_pairs(dataset, QueryDict("domain=math&view=test-every-other"))[0]) == math[::2]
    assert every_other_view in selections.selections_in("test")


def test_bad_parameters_are_refused_with_the_parameter_named(dataset, every_other_view):
    pairs, form = select_pairs(dataset, QueryDict("view=test-every-other&step=lots"))
    assert pairs is None and "step must be a number" in str(form.non_field_errors())
    pairs, form = select_pairs(dataset, QueryDict("domain=astronomy"))
    assert pairs is None and "domain" in form.errors
    pairs, form = select_pairs(dataset, QueryDict("view=no-such-view"))
    assert pairs is None and "view" in form.errors


def test_a_name_cannot_be_registered_twice(every_other_view):
    with pytest.raises(ValueError, match="already registered"):
        selection("test-every-other", "Again", "test")(lambda pairs, dataset, settings: pairs)


def test_the_query_string_round_trips_the_selection(dataset):
    form = PairFilter(QueryDict("domain=math&status=pending&reviewed=no"))
    assert form.is_valid()
    again = PairFilter(QueryDict(form.query_string()))
    assert again.is_valid() and ids(again.pairs(dataset)) == ids(form.pairs(dataset))
