"""The judge client against a real HTTP server on 127.0.0.1: retries, no retries, limits."""

import asyncio
import time

import orjson
import pytest

from annotation.judge_client import Completion, Failure, JudgeError, JudgeSettings, Retry, TokenBucket, judge_clients
from annotation.judge_providers import PROVIDERS

from .llm_server import LLMServer, Reply

MESSAGES = [{"role": "system", "content": "评分标准"}, {"role": "user", "content": "问题 MARK"}]


@pytest.fixture
def server():
    with LLMServer() as srv:
        yield srv


def judge_for(server, **overrides):
    values = dict(pk=1, name="loop", base_url=server.base_url, model="m", timeout_s=5.0, max_concurrency=4)
    values.update(overrides)
    return JudgeSettings(**values)


def complete(judge, messages=MESSAGES, retries=4, n=1):
    async def go():
        async with judge_clients([judge], Retry(policy_max=retries, base_s=0.01, cap_s=0.05)) as clients:
            return await asyncio.gather(*(clients[judge.pk].complete(messages) for _ in range(n)))

    results = asyncio.run(go())
    return results[0] if n == 1 else results


def test_it_returns_the_answer_and_token_usage(server):
    server.default = Reply(content="很好。[9]", usage=(321, 45))
    result = complete(judge_for(server))
    assert isinstance(result, Completion)
    assert (result.text, result.input_tokens, result.output_tokens, result.attempts) == ("很好。[9]", 321, 45, 1)
    assert '"model":"m"' in server.bodies[0] and "评分标准" in server.bodies[0]


def test_it_retries_a_429_no_sooner_than_retry_after(server):
    server.when("MARK", Reply(status=429, error="Rate limit reached", headers={"Retry-After": "1"}), Reply())
    started = time.monotonic()
    result = complete(judge_for(server))
    assert isinstance(result, Completion) and result.attempts == 2
    assert time.monotonic() - started >= 0.95
    assert server.requests == 2


@pytest.mark.parametrize("first", [
    Reply(status=500, error="internal error"),
    Reply(status=503, body=b"upstream overloaded"),
    Reply(drop=True),
    Reply(body=b'{"choices": [{"message": {"content": "[8]"'),
    Reply(body=b"<html>bad gateway</html>"),
], ids=["500", "503", "dropped-connection", "truncated-json", "not-json"])
def test_it_retries_transient_failures(server, first):
    server.when("MARK", first, Reply(content="[8]"))
    result = complete(judge_for(server))
    assert isinstance(result, Completion) and result.text == "[8]"
    assert result.attempts == 2 and server.requests == 2


def test_it_retries_a_request_that_hangs_past_the_timeout(server):
    server.when("MARK", Reply(hang=True), Reply(content="[6]"))
    result = complete(judge_for(server, timeout_s=0.3))
    assert isinstance(result, Completion) and result.text == "[6]" and result.attempts == 2


def test_it_gives_up_after_the_last_retry_with_the_reason(server):
    server.when("MARK", Reply(status=502, error="bad gateway"))
    result = complete(judge_for(server), retries=3)
    assert isinstance(result, Failure)
    assert "HTTP 502" in result.message and "bad gateway" in result.message and "4 attempts" in result.message
    assert server.requests == 4


@pytest.mark.parametrize("status, message", [
    (400, "This model's maximum context length is 8192 tokens."),
    (401, "Incorrect API key provided."),
    (403, "Your account is not allowed to use this model."),
    (404, "The model `gpt-9` does not exist."),
])
def test_it_never_retries_permanent_errors_and_keeps_the_providers_message(server, status, message):
    server.when("MARK", Reply(status=status, error=message))
    with pytest.raises(JudgeError) as raised:
        complete(judge_for(server))
    assert raised.value.permanent
    assert f"HTTP {status}" in str(raised.value) and message in str(raised.value)
    assert server.requests == 1


def test_the_api_key_comes_from_the_named_environment_variable(monkeypatch):
    with LLMServer(api_key="sk-loop") as server:
        monkeypatch.setenv("COIGP_JUDGE_KEY_LOOP", "sk-loop")
        assert isinstance(complete(judge_for(server, api_key_env="COIGP_JUDGE_KEY_LOOP")), Completion)
        monkeypatch.setenv("COIGP_JUDGE_KEY_LOOP", "sk-wrong")
        with pytest.raises(JudgeError, match="HTTP 401.*Incorrect API key"):
            complete(judge_for(server, api_key_env="COIGP_JUDGE_KEY_LOOP"))


def test_a_missing_api_key_variable_is_a_permanent_error_naming_it(server, monkeypatch):
    monkeypatch.delenv("COIGP_JUDGE_KEY_NO_SUCH", raising=False)
    with pytest.raises(JudgeError, match="COIGP_JUDGE_KEY_NO_SUCH") as raised:
        complete(judge_for(server, api_key_env="COIGP_JUDGE_KEY_NO_SUCH"))
    assert raised.value.permanent and server.requests == 0


def test_requests_in_flight_never_exceed_the_judges_concurrency(server):
    server.latency = 0.05
    results = complete(judge_for(server, max_concurrency=3), n=12)
    assert all(isinstance(r, Completion) for r in results)
    assert server.requests == 12 and server.max_in_flight == 3


def test_empty_content_is_returned_as_empty_text_for_the_parser_to_reject(server):
    server.when("MARK", Reply(content=None))
    result = complete(judge_for(server))
    assert isinstance(result, Completion) and result.text == ""


def test_the_requests_per_minute_bucket_spaces_requests_beyond_a_burst():
    async def go():
        bucket = TokenBucket(per_minute=600)  # 10 a second, bursts of 60
        started = time.monotonic()
        for _ in range(62):
            await bucket.take()
        return time.monotonic() - started

    assert asyncio.run(go()) >= 0.15


def test_retry_after_is_read_as_seconds_or_an_http_date_and_capped():
    from datetime import datetime, timedelta, timezone
    from email.utils import format_datetime

    from annotation.judge_client import _retry_after

    assert _retry_after("2") == 2.0
    in_30s = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    assert 25 <= _retry_after(in_30s) <= 30
    assert _retry_after("86400") == 600.0
    assert _retry_after("soon") is None and _retry_after(None) is None


def test_a_malformed_reply_that_never_heals_is_a_failure_keeping_the_raw_body(server):
    server.when("MARK", Reply(body=b'{"choices": []}'))
    result = complete(judge_for(server), retries=1)
    assert isinstance(result, Failure) and "malformed reply" in result.message
    assert result.raw == '{"choices": []}' and server.requests == 2


# ---------------------------------------------------------------------------------------------- providers

CLAUDE_KEY = "COIGP_JUDGE_KEY_CLAUDE"


@pytest.fixture
def anthropic_server(monkeypatch):
    monkeypatch.setenv(CLAUDE_KEY, "sk-ant-loop")
    with LLMServer(api="anthropic", api_key="sk-ant-loop") as srv:
        yield srv


def claude_for(server, **overrides):
    return judge_for(server, provider="anthropic", api_key_env=CLAUDE_KEY, **overrides)


def test_an_anthropic_judge_is_asked_on_messages_with_its_key_header_and_the_system_prompt_apart(anthropic_server):
    anthropic_server.default = Reply(content="很好。[9]", usage=(321, 45))
    result = complete(claude_for(anthropic_server, max_tokens=512))
    assert isinstance(result, Completion)
    assert (result.text, result.input_tokens, result.output_tokens, result.attempts) == ("很好。[9]", 321, 45, 1)
    assert orjson.loads(anthropic_server.bodies[0]) == {
        "model": "m", "max_tokens": 512, "temperature": 0.0, "system": "评分标准",
        "messages": [{"role": "user", "content": "问题 MARK"}]}
    headers = anthropic_server.headers[0]
    assert headers["x-api-key"] == "sk-ant-loop" and headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in headers


def test_an_anthropic_answer_is_the_text_of_its_text_blocks(anthropic_server):
    anthropic_server.when("MARK", Reply(body=orjson.dumps({
        "type": "message", "content": [{"type": "thinking", "thinking": "先想一想"}, {"type": "text", "text": "分析。"},
                                       {"type": "text", "text": "总体评分：[8]"}],
        "usage": {"input_tokens": 10, "output_tokens": 4}})))
    result = complete(claude_for(anthropic_server))
    assert (result.text, result.input_tokens, result.output_tokens) == ("分析。总体评分：[8]", 10, 4)


@pytest.mark.parametrize("first", [
    Reply(status=529, error="Overloaded"),
    Reply(status=429, error="rate_limit_error", headers={"Retry-After": "0"}),
    Reply(body=b'{"choices": [{"message": {"content": "[8]"}}]}'),
], ids=["529-overloaded", "429", "chat-completions-shaped-reply"])
def test_an_anthropic_judge_retries_transient_failures(anthropic_server, first):
    anthropic_server.when("MARK", first, Reply(content="[8]"))
    result = complete(claude_for(anthropic_server))
    assert isinstance(result, Completion) and result.text == "[8]"
    assert result.attempts == 2 and anthropic_server.requests == 2


def test_an_anthropic_judge_with_a_wrong_key_stops_with_the_providers_message(anthropic_server, monkeypatch):
    monkeypatch.setenv(CLAUDE_KEY, "sk-ant-wrong")
    with pytest.raises(JudgeError, match="HTTP 401 from .*/v1/messages: Incorrect API key") as raised:
        complete(claude_for(anthropic_server))
    assert raised.value.permanent and anthropic_server.requests == 1


@pytest.mark.parametrize("provider", list(PROVIDERS))
@pytest.mark.parametrize("secret", ["DJANGO_SECRET_KEY", "DATABASE_URL"])
def test_no_provider_sends_a_variable_not_marked_as_a_provider_key(server, monkeypatch, provider, secret):
    monkeypatch.setenv(secret, "the-servers-own-secret")
    with pytest.raises(JudgeError, match=f"{secret} is not marked as a provider API key variable") as raised:
        complete(judge_for(server, provider=provider, api_key_env=secret))
    assert raised.value.permanent and server.requests == 0


def test_a_judge_naming_an_unknown_provider_is_a_permanent_error_naming_the_known_ones(server):
    expected = "loop: unknown provider 'gemini'; expected one of openai, anthropic"
    with pytest.raises(JudgeError, match=expected) as raised:
        complete(judge_for(server, provider="gemini"))
    assert raised.value.permanent and server.requests == 0
