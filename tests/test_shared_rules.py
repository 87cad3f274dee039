"""Rules that several pages, jobs and exports apply, each written once: on data where the copies they
replace used to disagree, every reader gives the same answer.

- the newest reward model of a dataset (RewardModel.objects.newest_for).
"""

import re
from datetime import timedelta

import orjson
import pytest
from django.core.management import call_command
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone

from annotation.models import Dataset, RewardModel, RewardScore
from review import dashboards
from review.selections import select_pairs

from .pair_data import make_pair

HX = {"HTTP_HX_REQUEST": "true"}


def selected(dataset, query):
    pairs, form = select_pairs(dataset, QueryDict(query))
    assert pairs is not None, form.errors
    return list(pairs.values_list("pk", flat=True))


def exported(tmp_path, dataset):
    """{pair id: row} of a JSONL export of every pair of the dataset, with the metadata columns."""
    out = tmp_path / "pairs.jsonl"
    call_command("export_pairs", "--dataset", dataset.name, "--format", "trl", "--out", str(out), "--no-progress",
                 "--status", "all", "--with-meta")
    return {row["pair_id"]: row for row in map(orjson.loads, out.read_bytes().splitlines())}


def queue_item(client, dataset, query):
    """The review queue's item for the pair list `query` (a reviewer's view), as HTML."""
    response = client.get(reverse("review-queue", args=[dataset.pk]) + f"?{query}", **HX)
    assert response.status_code == 200
    return response.content.decode()


# --- newest reward model ---------------------------------------------------------------------------


@pytest.fixture
def two_models(team):
    """Two pairs with a panel gap of +4. crm v1 scored both (margins −1 and +2); crm v2, made later, scored only
    the first (a filter job scores the pairs it may filter: pairs v1 filtered are not among them), margin +4;
    a model made later still scored only another dataset."""
    dataset = team.dataset
    first = make_pair(dataset, "问题一", "回答甲", "回答乙", domain="math", chosen_score=8.0, rejected_score=4.0)
    second = make_pair(dataset, "问题二", "回答丙", "回答丁", domain="code", chosen_score=8.0, rejected_score=4.0)
    elsewhere = make_pair(Dataset.objects.create(name="别的数据集"), "问题", "好", "差")
    then = timezone.now() - timedelta(hours=1)
    old, new, other = (RewardModel.objects.create(name=name, version=version, backend="builtin",
                                                  created_at=then + timedelta(minutes=k))
                       for k, (name, version) in enumerate([("crm", 1), ("crm", 2), ("other", 1)]))
    rewards = {old: {first: (1.0, 2.0), second: (3.0, 1.0)}, new: {first: (5.0, 1.0)}, other: {elsewhere: (0.0, 1.0)}}
    for model, by_pair in rewards.items():
        for pair, (chosen, rejected) in by_pair.items():
            RewardScore.objects.create(response=pair.chosen, reward_model=model, reward=chosen)
            RewardScore.objects.create(response=pair.rejected, reward_model=model, reward=rejected)
    return first, second, new


def test_every_reader_of_reward_margins_takes_the_newest_model_that_scored_the_dataset(client, team, two_models,
                                                                                     tmp_path):
    first, second, newest = two_models
    dataset = team.dataset
    overview = dashboards.reward_overview(dataset)
    assert overview["reward_model"]["id"] == newest.pk
    assert sum(b["n"] for b in overview["margin_hist"]["buckets"]) == 1
    assert selected(dataset, "view=reward-vs-panel") == []  # +4 agrees with the panel; v1's −1 would not
    assert selected(dataset, "margin_min=3") == [first.pk]
    assert selected(dataset, "margin_max=3") == []
    rows = exported(tmp_path, dataset)
    assert (rows[first.pk]["reward_margin"], rows[second.pk]["reward_margin"]) == (4.0, None)

    client.force_login(team.reviewer)
    assert re.search(r'id="reward-margin">[^<]*crm v2[^<]*4\.000', queue_item(client, dataset, "domain=math"))
    assert 'id="reward-margin"' not in queue_item(client, dataset, "domain=code")

    assert RewardModel.objects.newest_for(dataset) == newest
