"""Training the built-in reward model: Bradley-Terry on a split by prompt, metrics beside baselines."""

import json
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from annotation import jobs
from annotation.models import Dataset, Job, Pair, RewardModel
from annotation.reward import features as F
from annotation.reward import training
from annotation.reward.builtin import LinearRewardModel, load_for
from annotation.reward.training import FeatureFile, PairData, split_by_prompt, train, train_params

from .reward_data import BAD, GOOD, import_lines, learnable_lines, media_root  # noqa: F401


@pytest.fixture
def learnable(db, tmp_path):
    dataset = Dataset.objects.create(name="learnable")
    import_lines(dataset, learnable_lines(), tmp_path / "pairs.jsonl")
    return dataset


def _train(dataset, name="bt", **kwargs):
    job = Job.objects.create(kind="train_reward_model", dataset=dataset, params=train_params(name, **kwargs))
    status = jobs.execute(job.pk)
    job.refresh_from_db()
    return status, job


def test_it_learns_a_learnable_dataset_far_beyond_both_baselines(learnable):
    status, job = _train(learnable)
    assert status == Job.Status.SUCCEEDED, job.error
    model = RewardModel.objects.get(pk=job.cursor["reward_model"])
    held_out = model.metrics["held_out"]
    assert held_out["overall"]["accuracy"] > 0.9
    assert 0.3 < held_out["overall"]["longer_wins"] < 0.7
    assert held_out["overall"]["random"] == 0.5
    assert set(held_out["by_domain"]) == {d for d in F.DOMAINS if d != "other"}
    assert sum(row["n"] for row in held_out["by_domain"].values()) == held_out["overall"]["n"]
    assert held_out["overall"]["n"] + model.metrics["train"]["n"] == Pair.objects.filter(dataset=learnable).count()
    assert job.done == job.total > 0
    scores = load_for(model).score([f"好的{GOOD}", f"好的{BAD}"], [10, 10], ["chat", "chat"])
    assert scores[0] > scores[1]


def test_each_training_of_a_name_adds_a_version_with_its_own_weights_file(learnable, settings):
    _train(learnable)
    _train(learnable, seed=1)
    models = RewardModel.objects.filter(name="bt").order_by("version")
    assert [m.version for m in models] == [1, 2]
    assert [m.config["path"] for m in models] == ["reward_models/bt-v1.npz", "reward_models/bt-v2.npz"]
    for m in models:
        assert (Path(settings.MEDIA_ROOT) / m.config["path"]).is_file()
        assert m.backend == RewardModel.Backend.BUILTIN and m.trained_on == learnable


def test_the_same_seed_gives_the_same_model_and_another_seed_another_split(learnable):
    _, first = _train(learnable, name="a")
    _, again = _train(learnable, name="b")
    _, other = _train(learnable, name="c", seed=5)
    a, b, c = (RewardModel.objects.get(pk=j.cursor["reward_model"]) for j in (first, again, other))
    assert a.metrics["held_out"] == b.metrics["held_out"]
    assert np.array_equal(load_for(a).ngram, load_for(b).ngram)
    assert a.metrics["held_out"]["overall"]["n"] != c.metrics["held_out"]["overall"]["n"]


def test_the_split_is_by_prompt_so_no_prompt_is_on_both_sides():
    prompts = np.repeat(np.arange(1, 2001), 5)
    test = split_by_prompt(prompts, 0.5, seed=3)
    per_prompt = {}
    for prompt, side in zip(prompts, test):
        per_prompt.setdefault(prompt, set()).add(bool(side))
    assert all(len(sides) == 1 for sides in per_prompt.values())
    share = np.mean([next(iter(s)) for s in per_prompt.values()])
    assert 0.45 < share < 0.55
    assert 0.15 < np.mean(split_by_prompt(np.arange(1, 2001), 0.2, seed=3)) < 0.25
    assert not np.array_equal(test, split_by_prompt(prompts, 0.5, seed=4))


def test_it_trains_on_kept_pairs_and_falls_back_to_pending_with_a_notice(learnable):
    _, job = _train(learnable, name="fallback")
    model = RewardModel.objects.get(pk=job.cursor["reward_model"])
    assert model.metrics["statuses"] == ["pending", "kept", "swapped"]
    assert "no kept pairs" in model.metrics["notice"]

    kept_prompts = list(Pair.objects.filter(dataset=learnable).values_list("prompt_id", flat=True).distinct()[:60])
    Pair.objects.filter(prompt_id__in=kept_prompts).update(status=Pair.Status.KEPT)
    _, job = _train(learnable, name="kept")
    model = RewardModel.objects.get(pk=job.cursor["reward_model"])
    assert model.metrics["statuses"] == ["kept", "swapped"] and model.metrics["notice"] == ""
    n = model.metrics["held_out"]["overall"]["n"] + model.metrics["train"]["n"]
    assert n == Pair.objects.filter(dataset=learnable, status=Pair.Status.KEPT).count()


def test_a_dataset_without_pairs_or_with_one_prompt_fails_with_the_reason(db, tmp_path):
    empty = Dataset.objects.create(name="empty")
    status, job = _train(empty)
    assert status == Job.Status.FAILED and "has no pairs with status pending or kept" in job.error
    single = Dataset.objects.create(name="single")
    import_lines(single, learnable_lines(n_prompts=1), tmp_path / "one.jsonl")
    status, job = _train(single)
    assert status == Job.Status.FAILED and "cannot be split" in job.error
    assert not RewardModel.objects.exists()


def test_bad_settings_are_refused_with_the_field_named():
    with pytest.raises(ValueError, match="test fraction must be between 0 and 1"):
        train_params("x", test_fraction=1.0)
    with pytest.raises(ValueError, match="unknown pair status done"):
        train_params("x", statuses=["done"])
    with pytest.raises(ValueError, match="needs a name"):
        train_params("  ")


def test_the_command_prints_accuracy_per_domain_and_writes_the_report(learnable, tmp_path, capsys):
    report_path = tmp_path / "report.json"
    call_command("train_reward_model", dataset="learnable", name="cli", test_fraction=0.5, seed=0,
                 report_json=str(report_path), no_progress=True)
    out = capsys.readouterr().out
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["model"] == "cli" and report["version"] == 1
    overall = report["held_out"]["overall"]
    assert overall["accuracy"] > 0.9 and "longer_wins" in overall and overall["random"] == 0.5
    assert set(report["held_out"]["by_domain"]) == {"chat", "code", "math", "logic", "novel", "role"}
    assert "overall" in out and "longer" in out and f"{overall['accuracy']:.3f}" in out
    with pytest.raises(CommandError, match="no dataset is called 'nope'"):
        call_command("train_reward_model", dataset="nope", name="x", no_progress=True)
    with pytest.raises(CommandError, match="test fraction"):
        call_command("train_reward_model", dataset="learnable", name="x", test_fraction=0, no_progress=True)


def test_features_see_format_and_length():
    texts = ["```python\nprint(1)\n```\n- 一\n- 二\n", "抱歉，我无法回答。", "$x^2$ 和 \\frac{1}{2}", ""]
    batch = F.featurize(texts, [10, 10, 10, 10], ["code", "chat", "math", "chat"])
    col = {name: i for i, name in enumerate(F.DENSE_FEATURES)}
    dense = batch.dense
    assert dense[0, col["log_code_fences"]] > 0 and dense[0, col["log_list_items"]] > 0
    assert dense[1, col["refusal"]] == 1 and dense[0, col["refusal"]] == 0
    assert dense[2, col["log_latex"]] > 0 and dense[1, col["log_latex"]] == 0
    assert dense[3, col["log_chars"]] == 0
    assert list(batch.lengths) == [len(t) for t in texts]
    # unigrams, bigrams and trigrams that stay inside one text
    hits = sum(np.bincount(d, minlength=4) for d in batch.ngram_docs)
    assert list(hits) == [max(len(t), 0) + max(len(t) - 1, 0) + max(len(t) - 2, 0) for t in texts]


def test_a_saved_model_scores_the_same_after_loading(tmp_path):
    model = LinearRewardModel.empty(bits=12)
    rng = np.random.default_rng(0)
    model.ngram = rng.normal(size=model.ngram.size).astype(np.float32).astype(np.float64)
    model.dense = rng.normal(size=model.dense.shape)
    model.save(tmp_path / "m.npz")
    loaded = LinearRewardModel.load(tmp_path / "m.npz")
    texts, lengths, domains = ["你好，世界", "第二个回答\n- 列表"], [3, 3], ["chat", "math"]
    assert np.allclose(model.score(texts, lengths, domains), loaded.score(texts, lengths, domains))


def test_training_reads_texts_and_features_in_bounded_chunks_and_the_chunk_does_not_change_the_model(
        learnable, monkeypatch):
    featurised, gathered = [], []
    real_featurize, real_read = LinearRewardModel.featurize, FeatureFile.read

    def featurize(self, texts, prompt_lengths, domains):
        featurised.append(len(texts))
        return real_featurize(self, texts, prompt_lengths, domains)

    def read(self, rows):
        gathered.append(rows.size)
        return real_read(self, rows)

    monkeypatch.setattr(LinearRewardModel, "featurize", featurize)
    monkeypatch.setattr(FeatureFile, "read", read)
    settings = {"bits": 14, "batch_size": 64}
    monkeypatch.setattr(training, "FEATURE_CHUNK", 10**6)
    monkeypatch.setattr(training, "READ_ROWS", 10**6)
    _, whole = _train(learnable, name="whole", **settings)
    assert len(featurised) == 1 and featurised[0] > 1000  # one chunk: every response at once
    featurised.clear()
    gathered.clear()
    monkeypatch.setattr(training, "FEATURE_CHUNK", 7)
    monkeypatch.setattr(training, "READ_ROWS", 5)
    status, chunked = _train(learnable, name="chunked", **settings)
    assert status == Job.Status.SUCCEEDED, chunked.error
    responses = sum(featurised)
    assert max(featurised) == 7 and len(featurised) == -(-responses // 7)
    # a mini-batch reads the features of its 64 pairs' 128 responses; scoring reads 5 at a time
    assert max(gathered) == 128 and min(gathered) < 128 and gathered[-1] <= 5
    assert chunked.done == chunked.total
    a, b = (RewardModel.objects.get(pk=job.cursor["reward_model"]) for job in (whole, chunked))
    assert a.metrics["held_out"] == b.metrics["held_out"] and a.metrics["held_out"]["overall"]["accuracy"] > 0.8
    for field in ("ngram", "dense", "mean", "std"):
        assert np.array_equal(getattr(load_for(a), field), getattr(load_for(b), field)), field


def test_the_feature_file_gives_back_each_responses_features_from_disk(tmp_path):
    texts = ["你好，世界", "", "第二个回答\n- 列表", "```\nx\n```", "好" * 50]
    whole = F.featurize(texts, [3] * 5, ["chat", "math", "code", "code", "other"], bits=12)
    expected = [np.concatenate([b[d == i] for d, b in zip(whole.ngram_docs, whole.ngram_buckets)]) for i in range(5)]
    with FeatureFile(tmp_path) as feats:
        for part in ([0, 1], [2], [3, 4]):
            feats.append(F.featurize([texts[i] for i in part], [3] * len(part),
                                     [["chat", "math", "code", "code", "other"][i] for i in part], bits=12))
        feats.finish()
        # in memory: where each response's n-grams start, and its length; the n-grams stay in the file
        held = [a for a in vars(feats).values() if isinstance(a, np.ndarray)]
        assert feats.hits == sum(e.size for e in expected) and max(a.size for a in held) == 6
        for rows in (np.array([4, 0, 2, 1]), np.arange(5), np.array([1, 2, 3, 0])):
            buckets, seg, scale, dense, domains = feats.read(rows)
            for k, row in enumerate(rows):
                assert sorted(buckets[seg == k]) == sorted(expected[row])
            assert np.array_equal(dense, whole.dense[rows]) and np.array_equal(scale, whole.scale[rows])
            assert np.array_equal(domains, whole.domains[rows]) and np.array_equal(feats.dense(rows), dense)
        assert list(feats.lengths) == [len(t) for t in texts]


def test_a_response_gone_missing_while_training_stops_it_with_the_reason():
    def read_responses(chunk):
        yield ["好的" * 10] * 3, np.full(3, 5.0), ["chat"] * 3  # 3 of the 4 responses

    data = PairData(prompt=np.arange(1, 41), domain=np.zeros(40, dtype=np.int64), chosen=np.zeros(40, dtype=np.int64),
                    rejected=np.full(40, 3), n_responses=4, read_responses=read_responses)
    with pytest.raises(ValueError, match="1 of the 4 responses to train on were not found"):
        train(data, train_params("x", bits=10))
