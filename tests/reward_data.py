"""A learnable synthetic dataset for reward-model tests: every chosen response contains a phrase no
rejected one has, while lengths are drawn independently, so "the longer wins" is a coin flip."""

import random

import pytest
from annotation import jobs
from annotation.ingest.importer import import_params
from annotation.models import Job

from .helpers import DOMAINS_ZH, write_jsonl

FILLER = "天地玄黄宇宙洪荒日月盈昃辰宿列张寒来暑往秋收冬藏闰余成岁律吕调阳云腾致雨露结为霜金生丽水玉出昆冈"
GOOD = "综上所述可知"
BAD = "我真的不知道"


def _filler(rng, n):
    return "".join(rng.choice(FILLER) for _ in range(n))


def learnable_lines(n_prompts=300, pairs_per_prompt=3, seed=0):
    rng = random.Random(seed)
    lines = []
    for p in range(n_prompts):
        prompt = f"第{p}题：请回答这个问题。{_filler(rng, 10)}"
        for k in range(pairs_per_prompt):
            lines.append({
                "domain": DOMAINS_ZH[p % len(DOMAINS_ZH)],
                "conversations": [{"from": "human", "value": prompt}],
                "chosen": {"from": "gpt", "value": _filler(rng, rng.randint(20, 120)) + GOOD + _filler(rng, 5)},
                "rejected": {"from": "gpt", "value": _filler(rng, rng.randint(20, 120)) + BAD + _filler(rng, 5)},
            })
    return lines


def import_lines(dataset, lines, path):
    write_jsonl(path, lines)
    job = Job.objects.create(kind="import", dataset=dataset, params=import_params(path), unit="bytes")
    assert jobs.execute(job.pk) == Job.Status.SUCCEEDED
    job.refresh_from_db()
    return job


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Model files go to the test's own folder (import this fixture into a test module)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def random_model(name, dataset, seed=0, version=1):
    """A built-in model with random weights, so that margins fall on both sides of 0."""
    import numpy as np

    from annotation.models import RewardModel
    from annotation.reward.builtin import LinearRewardModel, model_path

    model = LinearRewardModel.empty(bits=12)
    rng = np.random.default_rng(seed)
    model.ngram = rng.normal(size=model.ngram.size)
    model.dense = rng.normal(scale=0.1, size=model.dense.shape)
    path = model_path(name, version)
    model.save(path)
    return RewardModel.objects.create(
        name=name, version=version, backend=RewardModel.Backend.BUILTIN, trained_on=dataset,
        config={"path": f"reward_models/{path.name}", "bits": 12}, metrics={},
    )
