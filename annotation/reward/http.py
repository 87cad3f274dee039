"""Reward models behind an HTTP endpoint, configured like a judge (base URL, model, the NAME of the
environment variable holding the key, concurrency, timeout).

Two protocols (`config["protocol"]`):
- `vllm`: vLLM's pooling API, `POST {base_url}/pooling` with `{"model", "messages"}` (the prompt's
  turns and the response as the assistant's turn); the reward is the response's `data[0].data`: a
  number, a one-element list (a classifier's logit), or per-token rows of which the last is taken.
- `generic`: `POST {base_url}` with `{"<prompt_field>": query, "<response_field>": response}` (plus
  `"messages"` when `send_messages` is set); the reward is read at `reward_path` (dotted, list
  indexes allowed: `data.0.reward`), default `reward`.

Transport is the judge client's (annotation/judge_client.py): one aiohttp session, a semaphore per
model, retries with backoff and jitter on 429/408/5xx/timeouts honouring Retry-After; other 4xx are
permanent. A reply that is not JSON or has no number where the reward should be is never guessed:
the job fails naming the response and showing the reply.
"""

import asyncio
import math
from dataclasses import dataclass

import aiohttp
import numpy as np
import orjson

from ..judge_client import (RETRYABLE_STATUS, JudgeError, Retry, _provider_message, _retry_after, check_env_name,
                            new_session, provider_key, retry_policy)

PROTOCOLS = ("vllm", "generic")


@dataclass(frozen=True)
class EndpointSettings:
    name: str
    url: str
    protocol: str = "vllm"
    model: str = ""
    api_key_env: str = ""
    timeout_s: float = 120.0
    max_concurrency: int = 16
    prompt_field: str = "prompt"
    response_field: str = "response"
    reward_path: str = "reward"
    send_messages: bool = False

    @classmethod
    def of(cls, reward_model):
        c = reward_model.config
        protocol = c.get("protocol", "vllm")
        base = c["base_url"].rstrip("/")
        return cls(
            name=str(reward_model), url=base + "/pooling" if protocol == "vllm" else base, protocol=protocol,
            model=c.get("model", ""), api_key_env=c.get("api_key_env", ""), timeout_s=float(c.get("timeout_s", 120)),
            max_concurrency=max(1, int(c.get("concurrency", 16))), prompt_field=c.get("prompt_field", "prompt"),
            response_field=c.get("response_field", "response"), reward_path=c.get("reward_path", "reward"),
            send_messages=bool(c.get("send_messages", False)),
        )

    def body(self, messages):
        if self.protocol == "vllm":
            return {"model": self.model, "messages": messages}
        query = next((m["content"] for m in reversed(messages[:-1]) if m["role"] == "user"), "")
        body = {self.prompt_field: query, self.response_field: messages[-1]["content"]}
        if self.send_messages:
            body["messages"] = messages
        if self.model:
            body["model"] = self.model
        return body


def endpoint_config(base_url, *, protocol="vllm", model="", api_key_env="", timeout_s=120.0, concurrency=16,
                    prompt_field="prompt", response_field="response", reward_path="reward", send_messages=False):
    """A RewardModel.config for the http backend, validated (a pasted key is refused)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
    if not base_url.startswith(("http://", "https://")):
        raise ValueError(f"{base_url!r} is not an http(s) URL")
    if protocol == "vllm" and not model:
        raise ValueError("the vllm protocol needs the served model's id (--model)")
    check_env_name(api_key_env)
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    return {"base_url": base_url, "protocol": protocol, "model": model, "api_key_env": api_key_env,
            "timeout_s": float(timeout_s), "concurrency": int(concurrency), "prompt_field": prompt_field,
            "response_field": response_field, "reward_path": reward_path, "send_messages": bool(send_messages)}


class RewardError(JudgeError):
    pass


def _dig(data, path):
    for part in path.split("."):
        if isinstance(data, list) and part.lstrip("-").isdigit():
            data = data[int(part)]
        elif isinstance(data, dict):
            data = data[part]
        else:
            raise KeyError(part)
    return data


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TypeError(f"{value!r} is not a finite number")
    return float(value)


def read_reward(settings, payload):
    """The reward in a reply's body; raises ValueError saying what was wrong."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise ValueError("the reply is not JSON") from None
    try:
        if settings.protocol == "vllm":
            value = data["data"][0]["data"]
            if isinstance(value, list) and value and isinstance(value[-1], list):
                value = value[-1]  # per-token rewards: the last token's is the sequence's
            if isinstance(value, list):
                if len(value) != 1:
                    raise TypeError(f"{len(value)} values where one reward was expected")
                value = value[0]
            return _number(value)
        return _number(_dig(data, settings.reward_path))
    except (KeyError, IndexError, TypeError) as exc:
        where = "data[0].data" if settings.protocol == "vllm" else settings.reward_path
        raise ValueError(f"no reward at {where}: {exc}") from None


class RewardEndpointClient:
    def __init__(self, settings: EndpointSettings, session: aiohttp.ClientSession, retry: Retry):
        self.settings = settings
        self.session = session
        self.retry = retry
        self.semaphore = asyncio.Semaphore(settings.max_concurrency)
        self.headers = {"Content-Type": "application/json"}
        if settings.api_key_env:
            key = provider_key(settings.name, settings.api_key_env, lambda message: RewardError(message, permanent=True))
            self.headers["Authorization"] = f"Bearer {key}"
        self.timeout = aiohttp.ClientTimeout(total=settings.timeout_s)

    async def score(self, label, messages):
        """The reward of one response (`label` names it in errors); raises RewardError."""
        body = orjson.dumps(self.settings.body(messages))
        last = None
        for attempt in range(self.retry.policy_max + 1):
            if attempt:
                await asyncio.sleep(self.retry.delay(attempt - 1, last[1]))
            async with self.semaphore:
                result = await self._attempt(label, body)
            if isinstance(result, float):
                return result
            last = result
        raise RewardError(f"{last[0]} (gave up after {self.retry.policy_max + 1} attempts)", permanent=True)

    async def _attempt(self, label, body):
        s = self.settings
        try:
            async with self.session.post(s.url, data=body, headers=self.headers, timeout=self.timeout) as resp:
                payload = await resp.read()
                status, retry_after = resp.status, _retry_after(resp.headers.get("Retry-After"))
        except asyncio.TimeoutError:
            return (f"{s.name}: no answer from {s.url} within {s.timeout_s:g} s", None)
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            return (f"{s.name}: connection to {s.url} failed: {type(exc).__name__}: {exc}", None)
        if status >= 400:
            message = f"{s.name}: HTTP {status} from {s.url}: {_provider_message(payload)}"
            if status in RETRYABLE_STATUS or status >= 500:
                return (message, retry_after)
            raise RewardError(message, permanent=True)
        try:
            return read_reward(s, payload)
        except ValueError as exc:
            excerpt = payload[:300].decode("utf-8", "replace")
            raise RewardError(f"{s.name}: malformed reply from {s.url} for {label}: {exc}: {excerpt!r}",
                              permanent=True) from None


def score_all(reward_model, labelled_messages):
    """Rewards of [(label, messages), …] in order, as float64; raises RewardError on the first failure."""
    settings = EndpointSettings.of(reward_model)

    async def run():
        async with new_session([settings]) as session:
            client = RewardEndpointClient(settings, session, retry_policy())
            tasks = [asyncio.ensure_future(client.score(label, m)) for label, m in labelled_messages]
            try:
                return await asyncio.gather(*tasks)
            finally:
                for task in tasks:
                    task.cancel()

    return np.array(asyncio.run(run()), dtype=np.float64)
