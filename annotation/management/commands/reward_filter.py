import json

from django.core.management.base import CommandError

from annotation.job_progress import JobCommand, run_with_bar
from annotation.jobs import create_job
from annotation.models import Dataset, RewardModel
from annotation.reward.filtering import MODES, filter_params


class Command(JobCommand):
    help = ("Score a dataset's pairs with a reward model and filter those whose margin r(chosen) - r(rejected) "
            "is at or below the threshold (or only score, or undo the filter).")

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True)
        parser.add_argument("--model", required=True, help="the reward model's name")
        parser.add_argument("--model-version", dest="model_version", type=int,
                            help="the model's version (default: the latest)")
        parser.add_argument("--threshold", type=float, default=0.0, help="filter margins at or below this (0)")
        parser.add_argument("--mode", choices=MODES, default="apply")
        parser.add_argument("--report-json", help="write pairs scored, filtered and kept, by domain, here")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, dataset, model, model_version, threshold, mode, report_json, no_progress, **options):
        ds = Dataset.objects.filter(name=dataset).first()
        if ds is None:
            raise CommandError(f"no dataset is called {dataset!r}")
        models = RewardModel.objects.filter(name=model).order_by("-version")
        reward_model = (models.filter(version=model_version) if model_version else models).first()
        if reward_model is None:
            in_version = f" in version {model_version}" if model_version else ""
            raise CommandError(f"no reward model is called {model!r}{in_version}")
        try:
            params = filter_params(reward_model, mode=mode, threshold=threshold)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        job = create_job("reward_filter", dataset=ds, params=params, enqueue_it=False)
        run_with_bar(job, what="reward filtering", unit="item", desc=mode, no_progress=no_progress,
                     postfix=lambda c: {"scored": c.get("responses_scored", 0), "filtered": c.get("pairs_filtered", 0)})
        report = filter_report(job, reward_model)
        if report_json:
            with open(report_json, "w", encoding="utf-8") as out:
                json.dump(report, out, ensure_ascii=False, indent=2)
        self.stdout.write(
            f"{reward_model} ({mode}, threshold {threshold:g}): {report['responses_scored']} responses scored; "
            f"{report['pairs_scored']} pairs scored, {report['pairs_filtered']} filtered, {report['pairs_kept']} kept, "
            f"{report['restored']} restored (job {job.pk})"
        )
        for domain, row in sorted(report["by_domain"].items()):
            self.stdout.write(f"  {domain:<8} scored {row['scored']:>8}  filtered {row['filtered']:>8}  "
                              f"kept {row['kept']:>8}")
        self.finish(job, "reward filtering")


def filter_report(job, reward_model):
    counts = job.counts
    return {
        "model": reward_model.name, "version": reward_model.version, "mode": job.params["mode"],
        "threshold": job.params["threshold"], "job": job.pk,
        **{key: counts.get(key, 0) for key in ("responses_scored", "pairs_scored", "pairs_filtered", "pairs_kept",
                                               "newly_filtered", "restored")},
        "by_domain": counts.get("reward_by_domain", {}),
    }
