"""Reward models behind an HTTP endpoint (vLLM's pooling API, or a generic JSON POST), against a
loopback server the test starts: rewards stored as read, transient errors retried, permanent ones and
malformed replies fail the job with the message, and no reward is ever invented."""

import orjson
import pytest
from django.core.management import CommandError, call_command

from annotation import jobs
from annotation.models import Dataset, Job, Response, RewardModel, RewardScore
from annotation.reward.filtering import filter_params

from .llm_server import LLMServer, Reply
from .reward_data import import_lines, learnable_lines, media_root  # noqa: F401


@pytest.fixture(autouse=True)
def fast_retries(settings):
    settings.JUDGE_BACKOFF_BASE_MS = 5
    settings.JUDGE_BACKOFF_MAX_MS = 50
    settings.JUDGE_MAX_RETRIES = 3


@pytest.fixture
def dataset(db, tmp_path):
    dataset = Dataset.objects.create(name="http")
    import_lines(dataset, learnable_lines(n_prompts=6, pairs_per_prompt=2), tmp_path / "pairs.jsonl")
    return dataset


def reward_of(text):
    """What the loopback endpoint answers: a number the test can recompute from the response alone."""
    return len(text) + text.count("综") * 0.5


def _vllm_reply(path, body):
    messages = orjson.loads(body)["messages"]
    return Reply(body=orjson.dumps({"object": "list", "data": [
        {"index": 0, "object": "pooling", "data": [reward_of(messages[-1]["content"])]}]}))


def _generic_reply(path, body):
    request = orjson.loads(body)
    return Reply(body=orjson.dumps({"result": {"scores": [reward_of(request["answer"])]}}))


@pytest.fixture
def vllm():
    with LLMServer(paths=("/pooling",), responder=_vllm_reply) as server:
        yield server


def _add(name, **options):
    call_command("reward_models", "add", name, backend="http", **options)
    return RewardModel.objects.filter(name=name).order_by("-version").first()


def _score(dataset, model):
    job = Job.objects.create(kind="reward_filter", dataset=dataset, params=filter_params(model, mode="score"))
    jobs.execute(job.pk)
    job.refresh_from_db()
    return job


def _expected(dataset):
    return {r.pk: reward_of(r.text) for r in Response.objects.filter(dataset=dataset)}


def test_vllm_pooling_rewards_are_stored_as_the_server_sent_them(dataset, vllm):
    model = _add("vllm-rm", base_url=f"http://127.0.0.1:{vllm.port}/", model="Skywork-Reward")
    job = _score(dataset, model)
    assert job.status == Job.Status.SUCCEEDED, job.error
    stored = dict(RewardScore.objects.filter(reward_model=model).values_list("response_id", "reward"))
    assert stored == _expected(dataset)
    body = orjson.loads(vllm.bodies[0])
    assert body["model"] == "Skywork-Reward"
    assert body["messages"][0]["role"] == "user" and body["messages"][-1]["role"] == "assistant"


def test_a_generic_endpoint_takes_configured_fields_and_reward_path(dataset):
    with LLMServer(paths=("/reward",), responder=_generic_reply) as server:
        model = _add("generic-rm", base_url=f"http://127.0.0.1:{server.port}/reward", protocol="generic",
                     prompt_field="question", response_field="answer", reward_path="result.scores.0")
        job = _score(dataset, model)
        first = orjson.loads(server.bodies[0])
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert set(first) == {"question", "answer"} and first["question"].startswith("第")
    stored = dict(RewardScore.objects.filter(reward_model=model).values_list("response_id", "reward"))
    assert stored == _expected(dataset)


def test_429_with_retry_after_and_500_are_retried(dataset, vllm):
    target = Response.objects.filter(dataset=dataset).order_by("pk").first()
    ok = _vllm_reply("/pooling", orjson.dumps({"messages": [{"role": "assistant", "content": target.text}]}))
    vllm.when(target.text, Reply(status=429, headers={"Retry-After": "0"}, error="slow down"),
              Reply(status=500, error="overloaded"), ok)
    model = _add("vllm-rm", base_url=f"http://127.0.0.1:{vllm.port}", model="m")
    job = _score(dataset, model)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert vllm.by_marker[target.text] == 3
    assert RewardScore.objects.get(reward_model=model, response=target).reward == reward_of(target.text)


def test_a_500_that_never_heals_fails_the_job_after_the_retries(dataset, vllm):
    target = Response.objects.filter(dataset=dataset).order_by("pk").first()
    vllm.when(target.text, Reply(status=503, error="down for maintenance"))
    model = _add("vllm-rm", base_url=f"http://127.0.0.1:{vllm.port}", model="m")
    job = _score(dataset, model)
    assert job.status == Job.Status.FAILED
    assert "HTTP 503" in job.error and "down for maintenance" in job.error and "gave up after 4 attempts" in job.error
    assert vllm.by_marker[target.text] == 4
    assert not RewardScore.objects.filter(response=target).exists()


def test_a_401_is_not_retried_and_fails_the_job_with_the_message(dataset, monkeypatch):
    monkeypatch.setenv("COIGP_REWARD_KEY_TEST", "wrong")
    with LLMServer(paths=("/pooling",), responder=_vllm_reply, api_key="right") as server:
        model = _add("vllm-rm", base_url=f"http://127.0.0.1:{server.port}", model="m",
                     api_key_env="COIGP_REWARD_KEY_TEST")
        job = _score(dataset, model)
        requests = server.requests
    assert job.status == Job.Status.FAILED
    assert "HTTP 401" in job.error and "Incorrect API key provided." in job.error
    assert requests <= Response.objects.filter(dataset=dataset).count()  # once each at most: no retry
    assert not RewardScore.objects.exists()
    assert model.config["api_key_env"] == "COIGP_REWARD_KEY_TEST" and "wrong" not in orjson.dumps(model.config).decode()


@pytest.mark.parametrize(("body", "reason"), [
    (b"<html>502 Bad Gateway</html>", "the reply is not JSON"),
    (b'{"data": []}', "no reward at data[0].data"),
    (b'{"data": [{"data": [0.1, 0.9]}]}', "2 values where one reward was expected"),
    (b'{"data": [{"data": ["high"]}]}', "is not a finite number"),
])
def test_a_malformed_reply_fails_the_job_naming_the_response_and_invents_no_reward(dataset, vllm, body, reason):
    target = Response.objects.filter(dataset=dataset).order_by("pk").first()
    vllm.when(target.text, Reply(body=body))
    model = _add("vllm-rm", base_url=f"http://127.0.0.1:{vllm.port}", model="m")
    job = _score(dataset, model)
    assert job.status == Job.Status.FAILED
    assert f"response {target.pk}" in job.error and reason in job.error
    assert body[:20].decode() in job.error
    assert not RewardScore.objects.filter(response=target).exists()


def test_registration_refuses_a_pasted_key_and_a_vllm_model_without_an_id(db):
    with pytest.raises(CommandError, match="not the name of an environment variable"):
        _add("x", base_url="http://127.0.0.1:1", model="m", api_key_env="sk-abc123-def")
    for secret in ("DJANGO_SECRET_KEY", "DATABASE_URL", "HF_TOKEN"):
        with pytest.raises(CommandError, match=f"{secret} is not marked as a provider API key variable"):
            _add("x", base_url="http://127.0.0.1:1", model="m", api_key_env=secret)
    with pytest.raises(CommandError, match="needs the served model's id"):
        _add("x", base_url="http://127.0.0.1:1")
    with pytest.raises(CommandError, match="is not an http"):
        _add("x", base_url="ftp://example", model="m")
    assert not RewardModel.objects.exists()
