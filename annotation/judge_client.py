"""Talking to an LLM judge over HTTP, whatever its API: the request and reply shapes are its
provider's (judge_providers.py: OpenAI-compatible `/chat/completions`, Anthropic Messages).

aiohttp, because it was measured fastest on the loopback benchmark (BENCHMARKS.md, "LLM-judge
scoring": the loopback server bench/score.py uses, answering after 200 ms: 302 req/s at 64
concurrent against 198 for the openai SDK's async client and 46 for httpx with default settings).
Per judge: a semaphore caps requests in flight, token buckets keep to requests/minute and
tokens/minute, and transient failures (429, 408/409/425, 5xx, timeouts, dropped connections,
malformed replies) are retried with exponential backoff and full jitter, never sooner than
`Retry-After`. Other 4xx answers (bad request, bad key, no such model) are permanent: retrying
cannot help, so the job stops with the provider's own message.

Clients are made in one place, `open_clients` (or `judge_clients`), for scoring, pairwise re-judging
and the admin's connection test alike. A client lives inside one event loop; nothing here touches
the database.
"""

import asyncio
import email.utils
import os
import random
import re
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone

import aiohttp
import orjson

from .judge_providers import DEFAULT_PROVIDER, get_provider

RETRYABLE_STATUS = {408, 409, 425, 429}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")


def check_env_name(value):
    """The name of an environment variable that may hold a provider's API key, or a ValueError.

    A pasted key must never be stored, and a judge or reward endpoint must not be able to name just any
    variable: its key is sent (as a Bearer token or an x-api-key header, as its provider asks) to a URL an
    admin typed, so `DJANGO_SECRET_KEY` or `DATABASE_URL` would leak to whoever runs that URL. Only names
    the operator marked as provider keys are accepted: those starting with a prefix in
    settings.PROVIDER_KEY_ENV_PREFIXES, or listed in settings.PROVIDER_KEY_ENV_ALLOWED."""
    if not value:
        return value
    if not _ENV_NAME.match(value):
        raise ValueError(f"{value[:4]}… is not the name of an environment variable (letters, digits, _); "
                         "give the NAME of the variable holding the API key, never the key itself")
    from django.conf import settings  # noqa: PLC0415 - this module is also used outside Django's setup

    prefixes = tuple(settings.PROVIDER_KEY_ENV_PREFIXES)
    if not value.startswith(prefixes) and value not in settings.PROVIDER_KEY_ENV_ALLOWED:
        raise ValueError(
            f"{value} is not marked as a provider API key variable: its name must start with "
            f"{' or '.join(prefixes)} (or the operator lists it in COIGP_PROVIDER_KEY_ENV_ALLOWED), "
            "so that no other secret of the server can be sent to a provider's URL"
        )
    return value


def provider_key(owner, env_name, error):
    """The API key in the variable `env_name` for `owner` (a judge's or endpoint's name), checked again
    at use, so a name stored before the rule existed cannot send another secret; `error(message)` makes
    the permanent error to raise."""
    try:
        check_env_name(env_name)
    except ValueError as exc:
        raise error(f"{owner}: {exc}") from None
    key = os.environ.get(env_name)
    if not key:
        raise error(f"{owner}: the environment variable {env_name} (the API key) is not set where the worker runs")
    return key


class JudgeError(Exception):
    def __init__(self, message, *, permanent=False):
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class JudgeSettings:
    """What the client needs of a Judge row, as a plain value the event-loop thread may hold."""

    pk: int
    name: str
    base_url: str
    model: str
    api_key_env: str = ""
    temperature: float = 0.0
    max_tokens: int = 1024
    timeout_s: float = 120.0
    max_concurrency: int = 16
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    provider: str = DEFAULT_PROVIDER

    @classmethod
    def of(cls, judge):
        return cls(
            pk=judge.pk, name=judge.name, base_url=judge.base_url, model=judge.model, api_key_env=judge.api_key_env,
            temperature=judge.temperature, max_tokens=judge.max_tokens, timeout_s=judge.timeout_s,
            max_concurrency=max(1, judge.max_concurrency), rpm_limit=judge.rpm_limit, tpm_limit=judge.tpm_limit,
            provider=judge.provider,
        )

    def api_key(self):
        if not self.api_key_env:
            return None
        return provider_key(self.name, self.api_key_env, lambda message: JudgeError(message, permanent=True))


@dataclass
class Completion:
    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: int = 0
    attempts: int = 1


@dataclass
class Failure:
    """A request that still failed after every retry; the judgement is stored as an error."""

    message: str
    attempts: int = 0
    raw: str = ""


@dataclass
class Retry:
    policy_max: int = 6
    base_s: float = 0.5
    cap_s: float = 60.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt, retry_after=None):
        # Full jitter (AWS architecture blog): uniform in [0, min(cap, base * 2^attempt)].
        backoff = self.rng.uniform(0, min(self.cap_s, self.base_s * 2**attempt))
        return max(backoff, retry_after or 0.0)


class TokenBucket:
    """`per_minute` tokens a minute, in bursts of at most a tenth of that. Waiters queue in order."""

    def __init__(self, per_minute):
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, per_minute / 10.0)
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self.lock = asyncio.Lock()

    async def take(self, n=1.0):
        n = min(float(n), self.capacity)  # a request larger than a burst waits for a full bucket
        async with self.lock:
            while True:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= n:
                    self.tokens -= n
                    return
                await asyncio.sleep((n - self.tokens) / self.rate)

    def charge(self, n):
        """Take (or give back, when negative) the difference between an estimate and the real use."""
        self.tokens = min(self.capacity, self.tokens - n)


class JudgeClient:
    def __init__(self, judge: JudgeSettings, session: aiohttp.ClientSession, retry: Retry):
        self.judge = judge
        self.session = session
        self.retry = retry
        try:
            self.provider = get_provider(judge.provider)
        except ValueError as exc:
            raise JudgeError(f"{judge.name}: {exc}", permanent=True) from None
        self.semaphore = asyncio.Semaphore(judge.max_concurrency)
        self.rpm = TokenBucket(judge.rpm_limit) if judge.rpm_limit else None
        self.tpm = TokenBucket(judge.tpm_limit) if judge.tpm_limit else None
        # Read (and checked against the key rule) here, for every provider, before any request is made.
        self.api_key = judge.api_key()
        self.timeout = aiohttp.ClientTimeout(total=judge.timeout_s)

    async def complete(self, messages, max_tokens=None):
        """The judge's answer, or a Failure after the last retry; raises JudgeError(permanent=True)."""
        request = self.provider.request(self.judge, messages, max_tokens or self.judge.max_tokens, self.api_key)
        # Chinese text is about a token per character; the reply may use all of max_tokens.
        estimate = sum(len(m["content"]) for m in messages) + (max_tokens or self.judge.max_tokens)
        last = None
        for attempt in range(self.retry.policy_max + 1):
            if attempt:
                await asyncio.sleep(self.retry.delay(attempt - 1, last.retry_after))
            async with self.semaphore:
                if self.rpm:
                    await self.rpm.take(1)
                if self.tpm:
                    await self.tpm.take(estimate)
                last = await self._attempt(*request)
            if isinstance(last, Completion):
                last.attempts = attempt + 1
                if self.tpm:
                    self.tpm.charge(last.input_tokens + last.output_tokens - estimate)
                return last
        return Failure(f"{last.message} (gave up after {self.retry.policy_max + 1} attempts)",
                       attempts=self.retry.policy_max + 1, raw=last.raw)

    async def _attempt(self, url, headers, body):
        started = time.monotonic()
        try:
            async with self.session.post(url, data=body, headers=headers, timeout=self.timeout) as resp:
                payload = await resp.read()
                status, retry_after = resp.status, _retry_after(resp.headers.get("Retry-After"))
        except asyncio.TimeoutError:
            return _Transient(f"no answer within {self.judge.timeout_s:g} s")
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            return _Transient(f"connection failed: {type(exc).__name__}: {exc}")
        latency_ms = int((time.monotonic() - started) * 1000)
        if status >= 400:
            message = f"{self.judge.name}: HTTP {status} from {url}: {_provider_message(payload)}"
            if status in RETRYABLE_STATUS or status >= 500:
                return _Transient(message, retry_after=retry_after)
            raise JudgeError(message, permanent=True)
        try:
            text, input_tokens, output_tokens = self.provider.parse(orjson.loads(payload))
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
            raw = payload[:2000].decode("utf-8", "replace")
            return _Transient(f"{self.judge.name}: malformed reply from {url}: {raw[:200]!r}", raw=raw)
        return Completion(
            text=text if isinstance(text, str) else str(text),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            latency_ms=latency_ms,
        )


@dataclass
class _Transient:
    message: str
    retry_after: float | None = None
    raw: str = ""


def _retry_after(value):
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), capped at 10 minutes."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    return min(max(seconds, 0.0), 600.0)


def _provider_message(payload):
    try:
        data = orjson.loads(payload)
        error = data.get("error", data) if isinstance(data, dict) else data
        message = error.get("message") if isinstance(error, dict) else error
        if message:
            return str(message)[:1000]
    except orjson.JSONDecodeError:
        pass
    return payload[:1000].decode("utf-8", "replace").strip() or "(empty body)"


def new_session(judges):
    # One connection per request in flight: the connector's limit matches the semaphores.
    limit = sum(j.max_concurrency for j in judges) or 1
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0, ttl_dns_cache=300, enable_cleanup_closed=True)
    return aiohttp.ClientSession(connector=connector, json_serialize=lambda o: orjson.dumps(o).decode())


async def open_clients(judges, retry):
    """(session, {pk: client}) for `judges` (JudgeSettings), each speaking its provider's API on one
    shared HTTP session, which the caller closes; a judge that cannot be asked (unknown provider, key
    variable refused or unset) raises JudgeError(permanent=True) before any request."""
    session = new_session(judges)
    try:
        return session, {judge.pk: JudgeClient(judge, session, retry) for judge in judges}
    except BaseException:
        await session.close()
        raise


@asynccontextmanager
async def judge_clients(judges, retry):
    """`open_clients` for the length of a `with` block."""
    session, clients = await open_clients(judges, retry)
    async with session:
        yield clients


def retry_policy():
    from django.conf import settings

    return Retry(
        policy_max=settings.JUDGE_MAX_RETRIES,
        base_s=settings.JUDGE_BACKOFF_BASE_MS / 1000,
        cap_s=settings.JUDGE_BACKOFF_MAX_MS / 1000,
    )


def test_connection(judge):
    """Send one tiny request; the judge's answer, or raise JudgeError with the exact error."""
    settings_ = JudgeSettings.of(judge)
    if not settings_.base_url or not settings_.model:
        raise JudgeError(f"{judge.name}: set a base URL and a model id first", permanent=True)

    async def once():
        async with judge_clients([settings_], Retry(policy_max=0)) as clients:
            result = await clients[settings_.pk].complete([{"role": "user", "content": "请只回答：OK"}], max_tokens=16)
            if isinstance(result, Failure):
                raise JudgeError(result.message)
            return result

    return asyncio.run(once())
