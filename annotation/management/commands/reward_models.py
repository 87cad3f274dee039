from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotation.models import RewardModel
from annotation.reward.http import PROTOCOLS, endpoint_config


class Command(BaseCommand):
    help = ("Register a Hugging Face or HTTP-endpoint reward model (each add is a new version of the name), "
            "or list the reward models. The built-in model is added by train_reward_model.")

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="register a reward model")
        add.add_argument("name")
        add.add_argument("--backend", required=True, choices=["hf", "http"])
        add.add_argument("--path", help="hf: a local folder or a Hub id (e.g. Skywork/Skywork-Reward-Llama-3.1-8B)")
        add.add_argument("--batch-size", type=int, help="hf: responses per forward pass (8)")
        add.add_argument("--max-length", type=int, help="hf: tokens per conversation at most (4096)")
        add.add_argument("--base-url", help="http: the server (vllm: POST BASE/pooling; generic: POST BASE)")
        add.add_argument("--protocol", choices=PROTOCOLS, default="vllm")
        add.add_argument("--model", default="", help="http: the served model id (needed for vllm)")
        add.add_argument("--api-key-env", default="", help="http: NAME of the environment variable with the key, "
                         "starting with COIGP_REWARD_KEY_ (see COIGP_PROVIDER_KEY_ENV_PREFIXES)")
        add.add_argument("--concurrency", type=int, default=16)
        add.add_argument("--timeout", type=float, default=120.0)
        add.add_argument("--prompt-field", default="prompt", help="generic: the request's prompt field")
        add.add_argument("--response-field", default="response", help="generic: the request's response field")
        add.add_argument("--reward-path", default="reward", help="generic: where the reply holds the reward "
                                                                 "(dotted, e.g. data.0.score)")
        add.add_argument("--chunk-size", type=int, help="responses scored and committed together (256)")
        sub.add_parser("list", help="list the reward models")

    def handle(self, action, **options):
        if action == "add":
            return self.add(**options)
        for m in RewardModel.objects.order_by("name", "version"):
            where = m.config.get("path") or m.config.get("base_url") or "-"
            trained = f"\ttrained on {m.trained_on.name}" if m.trained_on_id else ""
            self.stdout.write(f"{m.name}\tv{m.version}\t{m.backend}\t{where}{trained}")

    def add(self, name, backend, **o):
        if backend == "hf":
            if not o["path"]:
                raise CommandError("--backend hf needs --path (a local folder or a Hub id)")
            config = {"path": o["path"]}
            for key in ("batch_size", "max_length"):
                if o[key] is not None:
                    if o[key] < 1:
                        raise CommandError(f"--{key.replace('_', '-')} must be at least 1")
                    config[key] = o[key]
        else:
            if not o["base_url"]:
                raise CommandError("--backend http needs --base-url")
            try:
                config = endpoint_config(
                    o["base_url"], protocol=o["protocol"], model=o["model"], api_key_env=o["api_key_env"],
                    timeout_s=o["timeout"], concurrency=o["concurrency"], prompt_field=o["prompt_field"],
                    response_field=o["response_field"], reward_path=o["reward_path"])
            except ValueError as exc:
                raise CommandError(str(exc)) from None
        if o["chunk_size"] is not None:
            if o["chunk_size"] < 1:
                raise CommandError("--chunk-size must be at least 1")
            config["chunk_size"] = o["chunk_size"]
        with transaction.atomic():
            last = RewardModel.objects.select_for_update().filter(name=name).order_by("-version").first()
            if last is not None and last.backend == RewardModel.Backend.BUILTIN:
                raise CommandError(f"{name!r} is a built-in model's name; choose another")
            model = RewardModel.objects.create(name=name, version=(last.version + 1 if last else 1), backend=backend,
                                               config=config)
        self.stdout.write(f"added reward model {model} ({backend})")
