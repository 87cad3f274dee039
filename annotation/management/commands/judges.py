from django.core.management.base import BaseCommand, CommandError
from django.core.validators import URLValidator
from django.core.exceptions import ValidationError

from annotation.judge_client import check_env_name
from annotation.judge_providers import PROVIDERS
from annotation.models import Judge


class Command(BaseCommand):
    help = "Add, change or list LLM judges (OpenAI-compatible or Anthropic APIs; the key is named, never stored)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="add a judge, or change the one of that name")
        add.add_argument("name")
        add.add_argument("--base-url", required=True, help="e.g. https://api.deepseek.com/v1 or http://127.0.0.1:8000/v1")
        add.add_argument("--model", required=True, help="the provider's model id")
        add.add_argument("--provider", choices=PROVIDERS,
                         help="the kind of API at the base URL (default for a new judge: openai, any "
                              "OpenAI-compatible /chat/completions; anthropic: the Messages API)")
        add.add_argument("--api-key-env", default="",
                         help="name of the environment variable holding the API key; it must start with "
                              "COIGP_JUDGE_KEY_ (or another prefix in COIGP_PROVIDER_KEY_ENV_PREFIXES) and be set "
                              "where the worker runs")
        add.add_argument("--family", default="", help="model family for self-preference analysis, e.g. qwen, gpt")
        add.add_argument("--concurrency", type=int, help="requests in flight at most")
        add.add_argument("--rpm", type=int, help="requests per minute at most")
        add.add_argument("--tpm", type=int, help="tokens per minute at most")
        add.add_argument("--timeout", type=float, help="seconds per request")
        add.add_argument("--temperature", type=float)
        add.add_argument("--max-tokens", type=int)
        add.add_argument("--price-in", help="price per 1M input tokens")
        add.add_argument("--price-out", help="price per 1M output tokens")
        sub.add_parser("list", help="list the judges")

    def handle(self, action, **options):
        if action == "add":
            return self.add(**options)
        for judge in Judge.objects.all():
            self.stdout.write(
                f"{judge.name}\t{judge.family or '-'}\t{judge.provider}\t{judge.model or '-'}"
                f"\t{judge.base_url or '(imported scores)'}"
                f"\tkey ${judge.api_key_env or '-'}\tconcurrency {judge.max_concurrency}"
                f"\trpm {judge.rpm_limit or '-'}\t{'active' if judge.is_active else 'inactive'}"
            )

    def add(self, name, base_url, model, api_key_env, family, **options):
        try:
            URLValidator(schemes=["http", "https"])(base_url)
        except ValidationError:
            raise CommandError(f"--base-url {base_url!r} is not an http(s) URL") from None
        try:
            check_env_name(api_key_env)
        except ValueError as exc:
            raise CommandError(f"--api-key-env: {exc}") from None
        fields = {"base_url": base_url, "model": model, "api_key_env": api_key_env, "family": family}
        for option, field in [("provider", "provider"),
                              ("concurrency", "max_concurrency"), ("rpm", "rpm_limit"), ("tpm", "tpm_limit"),
                              ("timeout", "timeout_s"), ("temperature", "temperature"), ("max_tokens", "max_tokens"),
                              ("price_in", "price_input_per_m"), ("price_out", "price_output_per_m")]:
            if options.get(option) is not None:
                fields[field] = options[option]
        if fields.get("max_concurrency", 1) < 1:
            raise CommandError("--concurrency must be at least 1")
        judge, created = Judge.objects.update_or_create(name=name, defaults=fields)
        self.stdout.write(f"{'added' if created else 'updated'} judge {judge.name} ({judge.model} at {judge.base_url})")
