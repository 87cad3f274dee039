"""How a judge's API is asked and answered: one class per kind of API, registered by name.

A provider turns a judge's chat messages into one HTTP request and reads the answer's text and token
usage out of the reply. Everything else (concurrency, rate limits, retries, which errors are
permanent, the API-key rule) is the client's (judge_client.py), the same for every provider. Another
API (a vendor's native one, a batch endpoint answering one request at a time) is one subclass with
`@register`; a judge names its provider in `Judge.provider`.

Nothing here touches the database or Django's settings.
"""

import orjson
from django.utils.translation import gettext_lazy as _

DEFAULT_PROVIDER = "openai"

PROVIDERS = {}


def register(cls):
    PROVIDERS[cls.name] = cls()
    return cls


def get_provider(name):
    """The provider called `name`, or a ValueError naming the ones there are."""
    try:
        return PROVIDERS[name]
    except KeyError:
        raise ValueError(f"unknown provider {name!r}; expected one of {', '.join(PROVIDERS)}") from None


def provider_choices():
    """(name, label) of every provider: the choices of Judge.provider (a callable, so adding a provider
    needs no migration)."""
    return [(name, provider.label) for name, provider in PROVIDERS.items()]


class Provider:
    name = ""
    label = ""

    def request(self, judge, messages, max_tokens, api_key):
        """(url, headers, body bytes) asking `judge` (JudgeSettings) to answer `messages`; `api_key` is
        None when the judge names no key variable."""
        raise NotImplementedError

    def parse(self, data):
        """(text, input tokens, output tokens) of a decoded reply. A reply not of this API's shape raises
        KeyError, IndexError, TypeError or AttributeError: the client retries it as malformed."""
        raise NotImplementedError


@register
class OpenAIChat(Provider):
    """`/chat/completions` as OpenAI and the APIs compatible with it (DeepSeek, DashScope, vLLM, …) take it."""

    name = "openai"
    label = _("OpenAI-compatible (/chat/completions)")

    def request(self, judge, messages, max_tokens, api_key):
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        body = {"model": judge.model, "messages": messages, "temperature": judge.temperature, "max_tokens": max_tokens}
        return judge.base_url.rstrip("/") + "/chat/completions", headers, orjson.dumps(body)

    def parse(self, data):
        choice = data["choices"][0]["message"]
        text = choice.get("content") or choice.get("refusal") or ""
        usage = data.get("usage") or {}
        return text, int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)


@register
class AnthropicMessages(Provider):
    """Anthropic's own Messages API: `/messages` under a base URL such as https://api.anthropic.com/v1,
    the key in `x-api-key`, the system prompt beside the turns rather than among them, the answer in
    content blocks."""

    name = "anthropic"
    label = _("Anthropic Messages (/messages)")
    VERSION = "2023-06-01"  # the API version the request and reply shapes here are written for

    def request(self, judge, messages, max_tokens, api_key):
        headers = {"Content-Type": "application/json", "anthropic-version": self.VERSION}
        if api_key:
            headers["x-api-key"] = api_key
        body = {"model": judge.model, "max_tokens": max_tokens, "temperature": judge.temperature,
                "messages": [m for m in messages if m["role"] != "system"]}
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        if system:
            body["system"] = system
        return judge.base_url.rstrip("/") + "/messages", headers, orjson.dumps(body)

    def parse(self, data):
        text = "".join(block["text"] for block in data["content"] if block["type"] == "text")
        usage = data.get("usage") or {}
        return text, int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
