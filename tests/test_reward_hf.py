"""The Hugging Face reward-model backend, with a tiny randomly initialised Llama and tokenizer the test
builds and saves itself: rewards equal a direct forward pass, batching does not change them, the
chat template is applied, and the CUDA/bfloat16 choice."""

import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
torch = pytest.importorskip("torch", reason="the Hugging Face backend is an optional install: "
                                            "pip install -r requirements-hf.txt -c constraints.txt")
pytest.importorskip("transformers", reason="pip install -r requirements-hf.txt -c constraints.txt")

from django.core.management import CommandError, call_command  # noqa: E402

from annotation import jobs  # noqa: E402
from annotation.models import Dataset, Job, Pair, RewardModel, RewardScore  # noqa: E402
from annotation.reward import hf  # noqa: E402
from annotation.reward.filtering import filter_params  # noqa: E402

from . import hf_tiny  # noqa: E402
from .reward_data import import_lines, learnable_lines, media_root  # noqa: E402,F401


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hf._CACHE.clear()
    yield
    hf._CACHE.clear()


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    return str(hf_tiny.build(tmp_path_factory.mktemp("tiny-rm")))


@pytest.fixture
def dataset(db, tmp_path):
    dataset = Dataset.objects.create(name="hf")
    import_lines(dataset, learnable_lines(n_prompts=6, pairs_per_prompt=2), tmp_path / "pairs.jsonl")
    return dataset


def _add(name, path, **options):
    call_command("reward_models", "add", name, backend="hf", path=path, **options)
    return RewardModel.objects.filter(name=name).order_by("-version").first()


def _score(dataset, model):
    job = Job.objects.create(kind="reward_filter", dataset=dataset, params=filter_params(model, mode="score"))
    status = jobs.execute(job.pk)
    job.refresh_from_db()
    assert status == Job.Status.SUCCEEDED, job.error
    return dict(RewardScore.objects.filter(reward_model=model).values_list("response_id", "reward"))


def _conversations(dataset):
    rows = {}
    for pair in Pair.objects.filter(dataset=dataset).select_related("prompt", "chosen", "rejected"):
        for response in (pair.chosen, pair.rejected):
            rows[response.pk] = [*pair.prompt.messages, {"role": "assistant", "content": response.text}]
    return rows


def test_the_filter_job_stores_the_rewards_of_a_direct_forward_pass(dataset, tiny_path):
    model = _add("tiny", tiny_path, batch_size=4)
    rewards = _score(dataset, model)
    conversations = _conversations(dataset)
    assert set(rewards) == set(conversations)
    direct = hf_tiny.direct_rewards(tiny_path, list(conversations.values()))
    for (response_id, _conv), expected in zip(conversations.items(), direct):
        assert rewards[response_id] == pytest.approx(expected, rel=1e-4, abs=1e-5)
    assert len({round(r, 6) for r in rewards.values()}) > len(rewards) // 2  # not one constant


def test_batching_does_not_change_the_rewards(dataset, tiny_path):
    one = _score(dataset, _add("tiny-b1", tiny_path, batch_size=1))
    hf._CACHE.clear()
    many = _score(dataset, _add("tiny-b16", tiny_path, batch_size=16))
    assert set(one) == set(many)
    for response_id, reward in one.items():
        assert many[response_id] == pytest.approx(reward, rel=1e-4, abs=1e-5)


def test_the_model_sees_the_conversation_rendered_by_the_chat_template(dataset, tiny_path):
    model = _add("tiny", tiny_path, batch_size=4)
    loaded = hf.load_for(model)
    seen = []
    loaded.model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.extend(kwargs["input_ids"].tolist()), with_kwargs=True)
    _score(dataset, model)
    vocab = hf_tiny.vocabulary()
    pad = vocab["<pad>"]
    rows = [[t for t in row if t != pad] for row in seen]
    expected = sorted(tuple(hf_tiny.expected_ids(c)) for c in _conversations(dataset).values())
    assert sorted(tuple(r) for r in rows) == expected
    for row in rows:
        assert row[:2] == [vocab["<s>"], vocab["<|user|>"]]
        assert vocab["<|assistant|>"] in row and row[-2:] == [vocab["<|end|>"], vocab["</s>"]]


def test_cuda_gets_bfloat16_and_the_cpu_float32():
    assert hf.device_and_dtype(True) == ("cuda", "bfloat16")
    assert hf.device_and_dtype(False) == ("cpu", "float32")


def test_on_this_machine_the_model_is_loaded_in_float32_on_the_cpu(tiny_path):
    loaded = hf.HFRewardModel.load(tiny_path, cuda_available=torch.cuda.is_available())
    expected_device, expected_dtype = hf.device_and_dtype(torch.cuda.is_available())
    parameter = next(loaded.model.parameters())
    assert parameter.device.type == expected_device and parameter.dtype == getattr(torch, expected_dtype)


def test_a_model_that_cannot_be_loaded_fails_the_job_with_the_path(dataset, tmp_path):
    model = _add("missing", str(tmp_path / "no-such-model"))
    job = Job.objects.create(kind="reward_filter", dataset=dataset, params=filter_params(model, mode="score"))
    assert jobs.execute(job.pk) == Job.Status.FAILED
    job.refresh_from_db()
    assert "could not load the reward model" in job.error and "no-such-model" in job.error
    assert not RewardScore.objects.exists()


def test_registration_checks_its_options_and_lists_the_models(db, tiny_path, capsys):
    with pytest.raises(CommandError, match="needs --path"):
        call_command("reward_models", "add", "x", backend="hf")
    with pytest.raises(CommandError, match="--batch-size must be at least 1"):
        call_command("reward_models", "add", "x", backend="hf", path=tiny_path, batch_size=0)
    _add("tiny", tiny_path, batch_size=2, max_length=128)
    again = _add("tiny", tiny_path)
    assert again.version == 2 and again.config == {"path": tiny_path}
    assert RewardModel.objects.get(name="tiny", version=1).config == {"path": tiny_path, "batch_size": 2,
                                                                      "max_length": 128}
    call_command("reward_models", "list")
    out = capsys.readouterr().out
    assert f"tiny\tv1\thf\t{tiny_path}" in out and f"tiny\tv2\thf\t{tiny_path}" in out


def test_a_slow_chunk_renews_the_lease_and_a_cancel_stops_it_between_batches(dataset, tiny_path, monkeypatch):
    from annotation.reward import filtering

    monkeypatch.setattr(filtering, "HEARTBEAT_S", 0.0)
    model = _add("tiny", tiny_path, batch_size=2)
    job = Job.objects.create(kind="reward_filter", dataset=dataset, params=filter_params(model, mode="score"))
    loaded = hf.load_for(model)
    beats = []

    def on_forward(module, args, kwargs):
        row = Job.objects.get(pk=job.pk)
        beats.append(row.heartbeat_at)
        if len(beats) == 3:
            Job.objects.filter(pk=job.pk).update(cancel_requested=True)

    loaded.model.register_forward_pre_hook(on_forward, with_kwargs=True)
    assert jobs.execute(job.pk) == Job.Status.CANCELLED
    assert len(beats) == 3 and beats[0] < beats[1] < beats[2]  # renewed before every batch
    assert not RewardScore.objects.filter(reward_model=model).exists()  # the unfinished chunk wrote nothing
