"""The reward benchmark: Wilson intervals and Cohen's kappa against known values, `rewardbench` on a
CRBench-style gold file (reward models and judges, ties are misses), the reviewed gold set, and the
leaderboard page with its filter-agreement table."""

import json

import orjson
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from annotation.models import Dataset, Judgement, Membership, Pair, RewardModel, Role
from annotation.reward import benchmark as B
from annotation.statistics import cohen_kappa, pairs_table, wilson_interval
from review.models import Review

from .helpers import Team, write_jsonl
from .judged import judge
from .llm_server import LLMServer, Reply
from .reward_data import media_root  # noqa: F401


@pytest.mark.parametrize(("k", "n", "low", "high"), [
    (8, 10, 0.4902, 0.9433),
    (0, 10, 0.0, 0.2775),
    (10, 10, 0.7225, 1.0),
    (50, 100, 0.4038, 0.5962),
    (1, 1, 0.2065, 1.0),
])
def test_wilson_interval_matches_known_values(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def kappa(a, b):
    return cohen_kappa(pairs_table(zip(a, b)))


def test_wilson_interval_of_nothing_is_undefined():
    assert wilson_interval(0, 0) is None


def test_cohen_kappa_matches_known_values():
    assert kappa([1, 1, 0, 0], [1, 0, 0, 0]) == pytest.approx(0.5)
    assert kappa([1, 0, 1, 0], [0, 1, 0, 1]) == pytest.approx(-1.0)
    assert kappa([1, 1, 1], [1, 1, 1]) is None  # undefined: nothing to disagree about
    # Table from Cohen (1960)-style worked example: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no → 0.4
    a = [1] * 25 + [0] * 25
    b = [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15
    assert kappa(a, b) == pytest.approx(0.4)
    assert kappa([], []) is None


# Gold rows: (domain, chosen, rejected). The endpoint's reward is the response's length, so the
# reward model is right when the chosen response is longer; equal lengths are a tie, a miss.
GOLD = (
    [("数学", "长" * (5 + i), "短" * 4) for i in range(7)]          # 7 right
    + [("数学", "短" * 3, "长" * (4 + i)) for i in range(2)]        # 2 wrong
    + [("数学", "等" * 6, "同" * 6)]                                  # a tie
    + [("代码", "长" * (8 + i), "短" * 2) for i in range(3)]         # 3 right
    + [("代码", "短", "长" * (3 + i)) for i in range(2)]             # 2 wrong
)


def _gold_file(path):
    rows = [{"prompt": f"第{i}题：请作答。", "chosen": c, "rejected": r, "domain": d} for i, (d, c, r) in enumerate(GOLD)]
    return write_jsonl(path, rows)


@pytest.fixture
def length_rm(db):
    def reply(path, body):
        return Reply(body=orjson.dumps({"reward": len(orjson.loads(body)["response"])}))

    with LLMServer(paths=("/reward",), responder=reply) as server:
        call_command("reward_models", "add", "length-rm", backend="http", protocol="generic",
                     base_url=f"http://127.0.0.1:{server.port}/reward")
        yield RewardModel.objects.get(name="length-rm")


def test_rewardbench_imports_a_gold_file_scores_it_and_reports_accuracy_with_intervals(length_rm, tmp_path, capsys):
    report_path = tmp_path / "report.json"
    call_command("rewardbench", gold=str(_gold_file(tmp_path / "crbench.jsonl")), model=["length-rm"],
                 report_json=str(report_path), no_progress=True)
    dataset = Dataset.objects.get(name="rewardbench-crbench.jsonl")
    assert dataset.is_benchmark and dataset.pairs.count() == len(GOLD)
    report = json.loads(report_path.read_text(encoding="utf-8"))
    result = report["models"]["length-rm"]
    math_, code = result["by_domain"]["math"], result["by_domain"]["code"]
    assert (math_["n"], math_["correct"], math_["accuracy"]) == (10, 7, 0.7)
    assert (code["n"], code["correct"], code["accuracy"]) == (5, 3, 0.6)
    overall = result["overall"]
    assert (overall["n"], overall["correct"], overall["accuracy"]) == (15, 10, round(10 / 15, 4))
    low, high = wilson_interval(10, 15)
    assert (overall["ci_low"], overall["ci_high"]) == (round(low, 4), round(high, 4))
    assert result["unscored"] == 0
    out = capsys.readouterr().out
    assert "length-rm" in out and "0.700 [" in out and "0.667 [" in out

    # A second run reuses the imported set and the stored rewards.
    call_command("rewardbench", gold=dataset.name, model=["length-rm"], report_json=str(report_path), no_progress=True)
    assert json.loads(report_path.read_text(encoding="utf-8"))["models"]["length-rm"]["overall"] == overall


def test_a_judge_is_right_when_it_scored_the_chosen_response_higher_and_a_tie_is_a_miss(db, tmp_path):
    call_command("import_pairs", str(_gold_file(tmp_path / "gold.jsonl")), dataset="gold", no_progress=True)
    dataset = Dataset.objects.get(name="gold")
    gpt = judge("gpt")
    pairs = list(Pair.objects.filter(dataset=dataset).select_related("chosen", "rejected").order_by("pk"))
    right = 0
    for i, pair in enumerate(pairs[:12]):
        chosen, rejected = (8, 5) if i % 3 else (6, 6)  # every third is a tie
        right += chosen > rejected
        Judgement.objects.create(response=pair.chosen, judge=gpt, score=chosen, status="ok")
        Judgement.objects.create(response=pair.rejected, judge=gpt, score=rejected, status="ok")
    result = B.judge_accuracies(dataset)["gpt"]
    assert result["overall"]["n"] == len(GOLD) and result["overall"]["correct"] == right == 8
    assert result["ties"] == 4 and result["missing"] == len(GOLD) - 12
    with pytest.raises(CommandError, match="no reward model or judge is called 'nobody'"):
        call_command("rewardbench", gold="gold", model=["nobody"], no_progress=True)


def test_the_reviewed_gold_set_is_the_pairs_reviewers_verified(length_rm, tmp_path):
    team = Team.create("reviewed gold")
    call_command("import_pairs", str(_gold_file(tmp_path / "gold.jsonl")), dataset=team.dataset.name,
                 no_progress=True)
    pairs = list(Pair.objects.filter(dataset=team.dataset).order_by("pk"))
    for pair in pairs[:4]:
        Review.objects.create(pair=pair, reviewer=team.reviewer, verdict="chosen_better", better_correct=True)
    Review.objects.create(pair=pairs[4], reviewer=team.reviewer, verdict="chosen_better", better_correct=False)
    Review.objects.create(pair=pairs[5], reviewer=team.reviewer, verdict="chosen_better", better_correct=True)
    Review.objects.create(pair=pairs[5], reviewer=team.admin, verdict="rejected_better", better_correct=True)
    assert B.gold_size(team.dataset, "reviewed") == 4
    report = tmp_path / "r.json"
    call_command("rewardbench", gold=team.dataset.name, source="reviewed", model=["length-rm"],
                 report_json=str(report), no_progress=True)
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["gold_pairs"] == 4 and data["models"]["length-rm"]["overall"]["n"] == 4
    assert data["models"]["length-rm"]["overall"]["correct"] == 4  # the first four GOLD rows are right


@pytest.fixture
def board(length_rm, tmp_path):
    team = Team.create("board")
    call_command("import_pairs", str(_gold_file(tmp_path / "gold.jsonl")), dataset=team.dataset.name,
                 no_progress=True)
    call_command("rewardbench", gold=team.dataset.name, model=["length-rm"], no_progress=True)
    gpt, qwen = judge("gpt"), judge("qwen")
    for i, pair in enumerate(Pair.objects.filter(dataset=team.dataset).order_by("pk")):
        for j, (c, r) in ((gpt, (7, 3)), (qwen, (4, 6) if i % 2 else (9, 2))):
            Judgement.objects.create(response=pair.chosen, judge=j, score=c, status="ok")
            Judgement.objects.create(response=pair.rejected, judge=j, score=r, status="ok")
    return team, length_rm


@pytest.mark.parametrize(("role", "status"), [("admin", 200), ("reviewer", 200), ("viewer", 200), ("outsider", 404)])
def test_the_leaderboard_is_for_members_of_the_dataset(board, client, role, status):
    team, _ = board
    client.force_login(getattr(team, role))
    assert client.get(reverse("reward-leaderboard", args=[team.dataset.pk])).status_code == status
    assert client.post(reverse("reward-leaderboard", args=[team.dataset.pk])).status_code == 405


def test_the_leaderboard_ranks_models_and_judges_with_intervals(board, client):
    team, model = board
    client.force_login(team.viewer)
    page = client.get(reverse("reward-leaderboard", args=[team.dataset.pk])).content.decode()
    rows = [line for line in page.splitlines() if "data-model=" in line]
    names = [line.split('data-model="')[1].split('"')[0] for line in rows]
    assert names == ["gpt", "length-rm v1", "qwen"]  # 1.0, 0.667, 8/15 = 0.533
    low, high = wilson_interval(10, 15)
    assert f"[{low:.3f}, {high:.3f}] n=15" in page
    assert 'data-accuracy="1.0"' in page


def test_filter_agreement_gives_the_confusion_matrix_and_kappa_per_domain(board, client):
    team, model = board
    client.force_login(team.viewer)
    url = reverse("reward-leaderboard", args=[team.dataset.pk])
    page = client.get(url, {"filter_a": f"rm:{model.pk}", "filter_b": "panel", "threshold": "0"}).content.decode()
    a = B.filter_decisions(team.dataset, model)
    b = B.filter_decisions(team.dataset, B.PANEL)
    assert len(a) == len(b) == len(GOLD)
    table = B.agreement(a, b)
    overall = table["overall"]
    assert overall["n"] == len(GOLD)
    assert overall["both_kept"] + overall["both_filtered"] + overall["a_kept_b_filtered"] + \
        overall["a_filtered_b_kept"] == len(GOLD)
    xs = [a[k][1] for k in sorted(a)]
    ys = [b[k][1] for k in sorted(a)]
    assert overall["kappa"] == round(kappa(xs, ys), 4)
    assert 'id="agreement"' in page and f'data-kappa="{overall["kappa"]}"' in page
    assert set(table) == {"math", "code", "overall"}


def test_an_outsider_may_not_see_a_model_trained_on_a_hidden_dataset_in_the_filters(board, client):
    team, _ = board
    secret = Dataset.objects.create(name="secret-board")
    RewardModel.objects.create(name="hidden-rm", backend="builtin", trained_on=secret, config={})
    client.force_login(team.viewer)
    page = client.get(reverse("reward-leaderboard", args=[team.dataset.pk])).content.decode()
    assert "hidden-rm" not in page
    Membership.objects.create(dataset=secret, user=team.viewer, role=Role.VIEWER)
    assert "hidden-rm" in client.get(reverse("reward-leaderboard", args=[team.dataset.pk])).content.decode()


def test_a_model_trained_on_the_dataset_is_measured_on_its_held_out_prompts_and_in_sample_figures_are_marked(
        board, client):
    """A built-in model trained here learnt the pairs of half the prompts: right on all of those (its
    rewards below), wrong on every held-out one. The leaderboard reports the held-out half by default."""
    from annotation.models import RewardScore
    from annotation.reward.training import split_by_prompt

    team, _ = board
    trained = RewardModel.objects.create(name="trained-here", backend="builtin", trained_on=team.dataset,
                                         config={"training": {"test_fraction": 0.5, "seed": 0}})
    pairs = list(Pair.objects.filter(dataset=team.dataset).order_by("pk"))
    held_out = split_by_prompt([p.prompt_id for p in pairs], 0.5, 0)
    assert 0 < held_out.sum() < len(pairs), "the gold file's prompts must fall on both sides"
    for pair, test in zip(pairs, held_out):
        RewardScore.objects.create(response=pair.chosen, reward_model=trained, reward=0.0 if test else 1.0)
        RewardScore.objects.create(response=pair.rejected, reward_model=trained, reward=1.0 if test else 0.0)
    n_test = int(held_out.sum())

    result = B.reward_model_accuracy(team.dataset, trained)
    assert result["sample"] == "held_out" and result["overall"]["n"] == n_test
    assert result["overall"]["accuracy"] == 0.0
    everything = B.reward_model_accuracy(team.dataset, trained, split=B.ALL_PAIRS)
    assert everything["sample"] == "in_sample" and everything["overall"]["n"] == len(pairs)
    assert everything["overall"]["correct"] == len(pairs) - n_test
    # A model not trained here is measured on every pair, whatever the split.
    other = B.reward_model_accuracy(team.dataset, RewardModel.objects.get(name="length-rm"))
    assert other["sample"] == "external" and other["overall"]["n"] == len(pairs)

    client.force_login(team.viewer)
    url = reverse("reward-leaderboard", args=[team.dataset.pk])
    page = client.get(url).content.decode()
    assert 'data-sample="held_out"' in page and 'data-sample="in_sample"' not in page
    assert f"n={n_test}" in page
    page = client.get(url, {"split": "all"}).content.decode()
    assert 'data-sample="in_sample"' in page and "in-sample: includes its training pairs" in page
