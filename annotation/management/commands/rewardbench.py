import json
import os
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.job_progress import JobCommand, run_with_bar
from annotation.jobs import create_job
from annotation.models import Dataset, Judge, RewardModel
from annotation.reward import benchmark as B
from annotation.reward.filtering import filter_params
from annotation.reward.pairwise import pairwise_params


class Command(JobCommand):
    help = ("Pairwise accuracy of reward models and LLM judges on a gold set (a benchmark file, imported into a "
            "benchmark dataset, or a dataset), per domain and overall, with n and a 95% Wilson interval.")

    def add_arguments(self, parser):
        parser.add_argument("--gold", required=True, help="a dataset's name, or a benchmark file (CRBench style: "
                                                          "prompt, chosen, rejected, domain) to import first")
        parser.add_argument("--gold-dataset", help="the dataset a gold FILE is imported into (default: rewardbench-"
                                                   "<file name>)")
        parser.add_argument("--source", choices=list(B.GOLD_SOURCES), default="pairs",
                            help="; ".join(f"{name}: {source.label}" for name, source in B.GOLD_SOURCES.items()))
        parser.add_argument("--model", action="append", required=True,
                            help="a reward model's name (latest version; scored first when needed) or a judge's "
                                 "name (its stored scores); repeat for several")
        parser.add_argument("--pairwise", action="store_true",
                            help="also ask each judge named in --model which response is better, A or B, in both "
                                 "orders (a verdict that flips with the order is a miss)")
        parser.add_argument("--split", choices=list(B.SPLITS), default=B.HELD_OUT,
                            help="a built-in reward model trained on the gold dataset itself: held_out (default) "
                                 "measures it on the prompts it held out; all on every pair, its training pairs "
                                 "included (marked in-sample)")
        parser.add_argument("--report-json", help="write accuracy, n and the interval per domain and overall here")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, gold, gold_dataset, source, split, model, pairwise, report_json, no_progress, **options):
        dataset = self.gold_dataset(gold, gold_dataset, no_progress)
        if not B.gold_size(dataset, source):
            raise CommandError(f"the gold set {dataset.name!r} has no {'reviewed ' if source == 'reviewed' else ''}"
                               "pairs")
        report = {"gold": dataset.name, "source": source, "gold_pairs": B.gold_size(dataset, source), "models": {}}
        for name in model:
            reward_model = RewardModel.objects.filter(name=name).order_by("-version").first()
            if reward_model is not None:
                self.score(dataset, reward_model, no_progress)
                result = B.reward_model_accuracy(dataset, reward_model, source, split)
                report["models"][name] = {"kind": "reward", "version": reward_model.version, **result}
                continue
            judge = Judge.objects.filter(name=name).first()
            if judge is None:
                raise CommandError(f"no reward model or judge is called {name!r}")
            result = B.judge_accuracies(dataset, source, [judge]).get(judge.name)
            if result is None and not pairwise:
                raise CommandError(f"judge {name!r} has no ok judgement of a response in {dataset.name!r}; "
                                   "score the gold set with it first (manage.py score), or use --pairwise")
            if result is not None:
                report["models"][name] = {"kind": "judge", **result}
            if pairwise:
                if source != "pairs":
                    raise CommandError("--pairwise asks about every pair of the gold set: use --source pairs")
                report["models"][f"{name} (A/B)"] = {"kind": "pairwise", **self.pairwise(dataset, judge, no_progress)}
        if report_json:
            with open(report_json, "w", encoding="utf-8") as out:
                json.dump(report, out, ensure_ascii=False, indent=2)
        self.stdout.write(table(report))

    def gold_dataset(self, gold, gold_dataset, no_progress):
        dataset = Dataset.objects.filter(name=gold).first()
        if dataset is not None:
            return dataset
        if not os.path.isfile(gold):
            raise CommandError(f"--gold {gold!r} is neither a dataset's name nor a file")
        name = gold_dataset or f"rewardbench-{Path(gold).name}"
        # The import workflow itself: formats detected, bad rows reported, a re-run adds nothing.
        call_command("import_pairs", gold, dataset=name, benchmark=True, no_progress=no_progress,
                     stdout=self.stderr, stderr=self.stderr)
        return Dataset.objects.get(name=name)

    def score(self, dataset, reward_model, no_progress):
        job = create_job("reward_filter", dataset=dataset, params=filter_params(reward_model, mode="score"),
                         enqueue_it=False)
        run_with_bar(job, what=f"scoring with {reward_model}", unit="response", desc=f"score {reward_model}",
                     no_progress=no_progress)
        self.finish(job, f"scoring with {reward_model}")


    def pairwise(self, dataset, judge, no_progress):
        try:
            params = pairwise_params(judge)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        job = create_job("pairwise_judge", dataset=dataset, params=params, enqueue_it=False)
        run_with_bar(job, what=f"pairwise judging with {judge.name}", unit="pair", desc=f"{judge.name} A/B",
                     no_progress=no_progress)
        self.finish(job, f"pairwise judging with {judge.name}")
        return B.pairwise_summary(job.counts.get("pairwise_by_domain", {}))


def _cell(row):
    if not row or row["accuracy"] is None:
        return f"{'—':>22}"
    return f"{row['accuracy']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}]".rjust(22)


def table(report):
    """One row per model, one column per domain and overall: accuracy [95% interval], and n below."""
    models = report["models"]
    domains = []
    for result in models.values():
        domains += [d for d in result["by_domain"] if d not in domains]
    lines = [f"gold: {report['gold']} ({report['source']}, {report['gold_pairs']} pairs); "
             "accuracy [95% Wilson interval]; a tie is a miss",
             f"{'model':<24}" + "".join(f"{d:>22}" for d in [*domains, "overall"])]
    for name, result in models.items():
        cells = [_cell(result["by_domain"].get(d)) for d in domains] + [_cell(result["overall"])]
        lines.append(f"{name[:24]:<24}" + "".join(cells))
        if result.get("sample") in ("held_out", "in_sample"):
            lines.append("  trained on this dataset: " + ("measured on the prompts it held out"
                                                          if result["sample"] == "held_out"
                                                          else "IN-SAMPLE, its training pairs included"))
        ns = [str(result["by_domain"].get(d, {}).get("n", 0)) for d in domains] + [str(result["overall"]["n"])]
        lines.append(f"{'  n':<24}" + "".join(f"{n:>22}" for n in ns))
        extra = {k: result[k] for k in ("unscored", "missing", "ties", "inconsistency_rate", "unparseable", "errors")
                 if result.get(k) or (k == "inconsistency_rate" and result.get(k) is not None)}
        if extra:
            lines.append("  " + ", ".join(f"{k} {v}" for k, v in extra.items()))
    return "\n".join(lines)
