"""Training and filtering as jobs on a real Celery worker over Redis."""

import pytest

from annotation import jobs
from annotation.models import Dataset, Job, Pair, RewardModel, RewardScore
from annotation.reward.filtering import filter_params
from annotation.reward.training import train_params

from .conftest import wait_for
from .reward_data import import_lines, learnable_lines, media_root  # noqa: F401

pytestmark = pytest.mark.worker


def _finished(job):
    job.refresh_from_db()
    return job.is_finished()


def test_a_worker_trains_a_model_then_filters_the_dataset_with_it(thread_worker, tmp_path):
    dataset = Dataset.objects.create(name="worker reward")
    import_lines(dataset, learnable_lines(n_prompts=200, pairs_per_prompt=3), tmp_path / "pairs.jsonl")
    train = jobs.create_job("train_reward_model", dataset=dataset, params=train_params("worker-bt"))
    wait_for(lambda: _finished(train), timeout=120, message="the training job")
    assert train.status == Job.Status.SUCCEEDED, train.error
    assert train.done == train.total and train.celery_task_id
    model = RewardModel.objects.get(pk=train.cursor["reward_model"])
    assert model.metrics["held_out"]["overall"]["accuracy"] > 0.9

    apply = jobs.create_job("reward_filter", dataset=dataset, params=filter_params(model, threshold=0.0))
    wait_for(lambda: _finished(apply), timeout=120, message="the filter job")
    assert apply.status == Job.Status.SUCCEEDED, apply.error
    assert apply.done == apply.total
    assert RewardScore.objects.filter(reward_model=model).count() == apply.counts["responses_scored"] > 0
    filtered = Pair.objects.filter(dataset=dataset, status="filtered")
    assert filtered.count() == apply.counts["pairs_filtered"]
    reasons = filtered.values_list("status_reason", flat=True)
    assert all(reason.startswith("reward:worker-bt v1 margin=") for reason in reasons)
    # The model is right on most pairs, so most survive; the ones it gets wrong are filtered.
    assert apply.counts["pairs_kept"] > 0.85 * Pair.objects.filter(dataset=dataset).count()
