"""The reward filter job: scores responses, filters pairs whose margin is at or below the threshold,
re-applies with another threshold, undoes itself (as the pair page's unfilter undoes one pair), and leaves
other rules' decisions alone."""

import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from annotation import jobs
from annotation.models import Dataset, Job, Pair, Response, RewardScore
from annotation.reward.filtering import filter_params

from .reward_data import import_lines, learnable_lines, media_root, random_model  # noqa: F401


@pytest.fixture
def world(db, tmp_path):
    dataset = Dataset.objects.create(name="filtering")
    import_lines(dataset, learnable_lines(n_prompts=40, pairs_per_prompt=3), tmp_path / "pairs.jsonl")
    return dataset, random_model("rm", dataset)


def _run(dataset, model, mode="apply", threshold=0.0):
    job = Job.objects.create(kind="reward_filter", dataset=dataset,
                             params=filter_params(model, mode=mode, threshold=threshold))
    status = jobs.execute(job.pk)
    job.refresh_from_db()
    assert status == Job.Status.SUCCEEDED, job.error
    return job


def _margins(model):
    rewards = dict(RewardScore.objects.filter(reward_model=model).values_list("response_id", "reward"))
    return {p.pk: rewards[p.chosen_id] - rewards[p.rejected_id] for p in Pair.objects.all()}


def test_scoring_stores_one_reward_per_response_of_the_pairs_and_is_idempotent(world):
    dataset, model = world
    job = _run(dataset, model, mode="score")
    n_responses = Response.objects.filter(dataset=dataset).count()
    assert job.counts["responses_scored"] == n_responses == RewardScore.objects.filter(reward_model=model).count()
    assert set(Pair.objects.values_list("status", flat=True)) == {"pending"}
    before = dict(RewardScore.objects.values_list("response_id", "reward"))
    again = _run(dataset, model, mode="score")
    assert again.counts.get("responses_scored", 0) == 0
    assert dict(RewardScore.objects.values_list("response_id", "reward")) == before


def test_it_filters_exactly_the_pairs_whose_margin_is_at_or_below_the_threshold(world):
    dataset, model = world
    _run(dataset, model, mode="score")
    margins = _margins(model)
    edge_pair, threshold = sorted(margins.items(), key=lambda kv: kv[1])[len(margins) // 2]
    job = _run(dataset, model, threshold=threshold)
    pairs = {p.pk: p for p in Pair.objects.all()}
    for pk, margin in margins.items():
        assert (pairs[pk].status == "filtered") == (margin <= threshold), (pk, margin, threshold)
    assert pairs[edge_pair].status == "filtered"
    reason = pairs[edge_pair].status_reason
    assert reason.startswith("reward:rm v1 margin=") and reason.endswith(" was=pending")
    assert abs(float(reason.split("margin=")[1].split()[0]) - threshold) < 1e-4
    n_low = sum(m <= threshold for m in margins.values())
    assert job.counts["pairs_filtered"] == job.counts["newly_filtered"] == n_low
    assert job.counts["pairs_kept"] == len(margins) - n_low
    assert sum(row["scored"] for row in job.counts["reward_by_domain"].values()) == len(margins)


def test_a_new_threshold_reapplies_and_unfilter_restores_the_old_statuses(world):
    dataset, model = world
    kept = list(Pair.objects.order_by("pk").values_list("pk", flat=True)[:30])
    Pair.objects.filter(pk__in=kept).update(status="kept", status_reason="rule:gap")
    _run(dataset, model, threshold=1e9)
    assert set(Pair.objects.values_list("status", flat=True)) == {"filtered"}
    assert Pair.objects.filter(status_reason__endswith=" reason=rule:gap was=kept").count() == 30

    job = _run(dataset, model, threshold=0.0)
    margins = _margins(model)
    for pair in Pair.objects.all():
        expected = "filtered" if margins[pair.pk] <= 0 else ("kept" if pair.pk in kept else "pending")
        assert pair.status == expected
    assert job.counts["restored"] == sum(m > 0 for m in margins.values())

    _run(dataset, model, mode="unfilter")
    assert Pair.objects.filter(status="filtered").count() == 0
    assert set(Pair.objects.filter(pk__in=kept).values_list("status", flat=True)) == {"kept"}
    assert set(Pair.objects.filter(pk__in=kept).values_list("status_reason", flat=True)) == {"rule:gap"}
    assert set(Pair.objects.exclude(pk__in=kept).values_list("status_reason", flat=True)) == {""}
    assert Pair.objects.exclude(pk__in=kept).filter(status="pending").count() == Pair.objects.count() - 30


def test_pairs_another_rule_or_another_version_filtered_are_never_touched(world):
    dataset, model = world
    other_version = random_model("rm", dataset, seed=1, version=2)
    ids = list(Pair.objects.order_by("pk").values_list("pk", flat=True))
    Pair.objects.filter(pk__in=ids[:10]).update(status="filtered", status_reason="rule:duplicate")
    Pair.objects.filter(pk__in=ids[10:20]).update(status="filtered", status_reason="reward:rm v2 margin=-1 was=pending")
    _run(dataset, model, threshold=1e9)
    _run(dataset, model, mode="unfilter")
    untouched = Pair.objects.filter(pk__in=ids[:20]).order_by("pk").values_list("status_reason", flat=True)
    assert list(untouched) == ["rule:duplicate"] * 10 + ["reward:rm v2 margin=-1 was=pending"] * 10
    assert other_version.tag() == "reward:rm v2"
    assert Pair.objects.filter(status="pending").count() == len(ids) - 20


def test_the_command_reports_pairs_scored_filtered_and_kept_by_domain(world, tmp_path, capsys):
    dataset, model = world
    report_path = tmp_path / "report.json"
    call_command("reward_filter", dataset=dataset.name, model="rm", threshold=0.0, report_json=str(report_path),
                 no_progress=True)
    report = json.loads(report_path.read_text(encoding="utf-8"))
    filtered = Pair.objects.filter(status="filtered").count()
    assert report["pairs_scored"] == Pair.objects.count()
    assert report["pairs_filtered"] == filtered and report["pairs_kept"] == Pair.objects.count() - filtered
    assert set(report["by_domain"]) == {"chat", "code", "math", "logic", "novel", "role"}
    assert sum(row["filtered"] for row in report["by_domain"].values()) == filtered
    assert report["responses_scored"] == Response.objects.count()
    assert f"{filtered} filtered" in capsys.readouterr().out
    with pytest.raises(CommandError, match="no reward model is called 'nope'"):
        call_command("reward_filter", dataset=dataset.name, model="nope", no_progress=True)
    with pytest.raises(CommandError, match="in version 7"):
        call_command("reward_filter", dataset=dataset.name, model="rm", model_version=7, no_progress=True)


def test_a_model_whose_file_is_missing_fails_the_job_with_the_path(world, media_root):
    dataset, model = world
    (media_root / model.config["path"]).unlink()
    job = Job.objects.create(kind="reward_filter", dataset=dataset, params=filter_params(model, mode="score"))
    assert jobs.execute(job.pk) == Job.Status.FAILED
    job.refresh_from_db()
    assert "rm-v1.npz" in job.error


def test_a_job_taken_over_mid_way_resumes_after_its_last_committed_chunk(world, short_lease, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from annotation.reward import filtering

    dataset, model = world
    _run(dataset, model, mode="score")
    monkeypatch.setattr(filtering, "PAIR_CHUNK", 50)
    ids = list(Pair.objects.order_by("pk").values_list("pk", flat=True))
    job = Job.objects.create(
        kind="reward_filter", dataset=dataset, params=filter_params(model, threshold=1e9), unit="items",
        status=Job.Status.RUNNING, worker_token="dead", heartbeat_at=timezone.now() - timedelta(seconds=10),
        total=len(ids), done=50, cursor={"phase": "pairs", "pairs_after": ids[49]},
    )
    assert jobs.execute(job.pk) == Job.Status.SUCCEEDED
    job.refresh_from_db()
    assert job.done == job.total == len(ids)
    assert not Pair.objects.filter(pk__in=ids[:50], status="filtered").exists()
    assert Pair.objects.filter(pk__in=ids[50:], status="filtered").count() == len(ids) - 50


def test_a_long_earlier_reason_is_cut_to_fit_and_restored_as_far_as_it_was_kept(world):
    dataset, model = world
    long_reason = "rule:" + "很长的理由" * 60
    pair = Pair.objects.order_by("pk").first()
    Pair.objects.filter(pk=pair.pk).update(status="kept", status_reason=long_reason[:200])
    _run(dataset, model, threshold=1e9)
    pair.refresh_from_db()
    assert pair.status == "filtered" and len(pair.status_reason) <= 200
    assert pair.status_reason.startswith("reward:rm v1 margin=") and pair.status_reason.endswith(" was=kept")
    _run(dataset, model, mode="unfilter")
    pair.refresh_from_db()
    assert pair.status == "kept" and long_reason.startswith(pair.status_reason) and len(pair.status_reason) > 100


def test_the_pair_pages_unfilter_restores_what_the_unfilter_job_restores(world, client, django_user_model):
    dataset, model = world
    ids = list(Pair.objects.order_by("pk").values_list("pk", flat=True))
    Pair.objects.filter(pk__in=ids[:10]).update(status="kept", status_reason="rule:gap")
    before = {pk: (status, reason) for pk, status, reason in Pair.objects.values_list("pk", "status", "status_reason")}
    _run(dataset, model, threshold=1e9)
    assert set(Pair.objects.values_list("status", flat=True)) == {"filtered"}
    client.force_login(django_user_model.objects.create_superuser("root", password="x"))
    for pk in (ids[0], ids[-1]):  # one kept with a reason of its own, one pending without
        response = client.post(reverse("pair-unfilter", args=[dataset.pk, pk]))
        assert response.status_code == 302
    _run(dataset, model, mode="unfilter")  # the others
    after = {pk: (status, reason) for pk, status, reason in Pair.objects.values_list("pk", "status", "status_reason")}
    assert after == before
    assert after[ids[0]] == ("kept", "rule:gap") and after[ids[-1]] == ("pending", "")
