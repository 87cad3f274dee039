import json

from django.core.management.base import CommandError

from annotation.job_progress import JobCommand, run_with_bar
from annotation.jobs import create_job
from annotation.models import Dataset, RewardModel
from annotation.reward.training import DEFAULTS, train_params


class Command(JobCommand):
    help = "Train the built-in Bradley-Terry reward model on a dataset's pairs and report held-out accuracy."

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True)
        parser.add_argument("--name", required=True, help="the model's name; each training adds a version")
        parser.add_argument("--test-fraction", type=float, default=0.5, help="share of prompts held out (0.5)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--statuses", help="comma-separated pair statuses to train on "
                                               "(default: kept, or pending+kept when no pair is kept)")
        parser.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
        parser.add_argument("--report-json", help="write held-out accuracy per domain and the baselines here")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, dataset, name, test_fraction, seed, statuses, epochs, report_json, no_progress, **options):
        ds = Dataset.objects.filter(name=dataset).first()
        if ds is None:
            raise CommandError(f"no dataset is called {dataset!r}")
        wanted = [s.strip() for s in statuses.split(",") if s.strip()] if statuses else None
        try:
            params = train_params(name, test_fraction=test_fraction, seed=seed, statuses=wanted, epochs=epochs)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        job = create_job("train_reward_model", dataset=ds, params=params, enqueue_it=False)
        run_with_bar(job, what="training", unit="step", desc="train", no_progress=no_progress)
        model = RewardModel.objects.get(pk=job.cursor["reward_model"])
        report = {"model": model.name, "version": model.version, "job": job.pk, **model.metrics}
        if report_json:
            with open(report_json, "w", encoding="utf-8") as out:
                json.dump(report, out, ensure_ascii=False, indent=2)
        if model.metrics.get("notice"):
            self.stderr.write(model.metrics["notice"])
        self.stdout.write(accuracy_table(model))
        self.finish(job, "training")


def accuracy_table(model):
    held_out = model.metrics["held_out"]
    lines = [f"{model} trained on {model.metrics['train']['n']} pairs; held out {held_out['overall']['n']} pairs "
             f"({model.metrics['test_prompts']} prompts)",
             f"{'domain':<8} {'n':>8} {'model':>7} {'longer':>7} {'random':>7}"]
    rows = [*held_out["by_domain"].items(), ("overall", held_out["overall"])]
    for domain, row in rows:
        lines.append(f"{domain:<8} {row['n']:>8} {row['accuracy']:>7.3f} {row['longer_wins']:>7.3f} "
                     f"{row['random']:>7.3f}")
    return "\n".join(lines)


