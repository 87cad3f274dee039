"""Audit power: how many of the benchmark's seeded defects each low-quality rule and disagreement view
finds, and how many of the pairs it flags are clean (issue 12).

    .venv/bin/python bench/audit_power.py [--pairs 3000] [--seed 1] [--data ../shared/data] [--json FILE]

Against DATABASE_URL, on fresh datasets, the app's way end to end: generate the benchmark
(bench/audit_data.py), import its benchmark questions as a benchmark dataset and its prompts with their
generated responses (import_pairs, with the near-duplicate and contamination check that follows), start
the loopback judge panel (bench/audit_judges.py) and register its four judges (`judges add`, key in a
COIGP_JUDGE_KEY_ variable), score every response (`score --force`: the panel, not the cache, answers),
build pairs with gap > 2 (`build_pairs`), train the built-in reward model and filter with it
(`train_reward_model`, `reward_filter`), run the quality-count job, then read every low-quality rule and
disagreement view (review.selections.select_pairs, as the pair list does) and the judge analysis
(review.judge_analysis.judges_data). Each built pair's truth comes from the benchmark (audit_data.pair_truth).

Prints recall per defect kind (by the rule meant for it, and by any list), per list its size and the
share of its pairs that are clean, the hard negatives each rule trips, the judge analysis's verdict, and
the reward model's accuracy. Progress goes to stderr. The datasets are kept, so the lists can be opened
in the app (their names are printed); the run's benchmark dataset is unmarked as a benchmark at the end,
so that no later import is checked against it.
"""

import argparse
import json
import math
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coigp_web.settings")

import audit_data  # noqa: E402
import audit_text  # noqa: E402

KEY_ENV = "COIGP_JUDGE_KEY_AUDIT_BENCH"
# The list (or lists) whose job it is to find each defect kind.
MEANT_FOR = {"truncated": ("empty-or-truncated",), "near_empty": ("empty-or-truncated",),
             "refusal": ("refusal-chosen",), "wrong_language": ("non-chinese-answer",),
             "near_identical": ("identical-responses",), "near_duplicate_prompt": ("near-duplicate-prompt",),
             "contaminated": ("contaminated",), "swapped": ("pairwise-disagrees",)}
# The judge asked side by side about the most suspicious pairs (the pairwise re-judging job of issue 12,
# item 5), and how many: what a team would do with the "re-judge these" form on the suspicious-first list.
# Pairs a defect rule flags are not asked about: the rule already says what is wrong with them.
REJUDGE_JUDGE, REJUDGE_TOP = "audit-gpt", 500


def say(message):
    print(message, file=sys.stderr, flush=True)


@contextmanager
def step(name, timings):
    say(f"… {name}")
    started = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - started
    say(f"  {name}: {timings[name]:.1f} s")


def command(*args):
    """A management command, its output on stderr (our progress), its report (--report-json) returned."""
    from django.core.management import call_command

    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        report = f.name
    try:
        wants_report = args[0] in ("import_pairs", "build_pairs", "train_reward_model", "reward_filter", "score")
        extra = ["--report-json", report] if wants_report else []
        call_command(*args, *extra, stdout=sys.stderr, stderr=sys.stderr)
        return json.loads(Path(report).read_text()) if wants_report and Path(report).stat().st_size else {}
    finally:
        os.unlink(report)


def panel_truth(dataset, truth):
    """{panel response key: truth response} for the dataset's responses, with {db response id: truth response}
    and {db prompt id: truth prompt}: rows matched to the benchmark by their normalised texts."""
    from annotation.models import Prompt, Response
    from annotation.rubrics import conversation_parts
    from audit_judges import response_key

    by_messages = {audit_text.normalise("\x1e".join(m["content"] for m in p["messages"])): p
                   for p in truth["prompts"].values()}
    prompts, lookup, ids = {}, {}, {}
    for pk, messages in Prompt.objects.filter(dataset=dataset).values_list("pk", "messages"):
        prompt = by_messages.get(audit_text.normalise("\x1e".join(m["content"] for m in messages)))
        if prompt is None:
            sys.exit(f"prompt {pk} of the dataset is not in the benchmark's truth")
        prompts[pk] = (prompt, "\n\n".join(conversation_parts(messages)),
                       {audit_text.normalise(r["text"]): r for r in prompt["responses"]})
    for pk, prompt_id, text in Response.objects.filter(dataset=dataset).values_list("pk", "prompt_id", "text"):
        prompt, part, responses = prompts[prompt_id]
        response = responses.get(audit_text.normalise(text))
        if response is None:
            sys.exit(f"response {pk} of the dataset is not in the benchmark's truth")
        lookup[response_key(part, text)] = response
        ids[pk] = response
    return lookup, ids, {pk: p for pk, (p, _part, _r) in prompts.items()}


def run(args):
    import django

    django.setup()
    from annotation import jobs
    from annotation.models import Dataset, Job, Judge, Pair, RewardModel
    from audit_judges import start_panel

    timings = {}
    with step("generate the benchmark", timings):
        bench = audit_data.build(args.pairs, args.seed, args.data)
        paths = audit_data.write(bench, audit_data.out_dir(args.pairs, args.seed))
        truth = json.loads(paths["truth"].read_text())
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    name = f"audit power {args.pairs} seed {args.seed} {stamp}"
    with step("import the benchmark questions", timings):
        command("import_pairs", str(paths["benchmark"]), "--dataset", f"{name} benchmark", "--format", "prompts",
                "--benchmark", "--no-progress")
    with step("import prompts and responses (with the near-duplicate check)", timings):
        imported = command("import_pairs", str(paths["responses"]), "--dataset", name, "--format", "responses",
                           "--no-progress")
    dataset = Dataset.objects.get(name=name)
    if imported["rejected_rows"]:
        sys.exit(f"the import rejected rows: {imported['rejected_rows'][:5]}")

    lookup, response_truth, prompt_truth = panel_truth(dataset, truth)
    os.environ[KEY_ENV] = secrets.token_hex(16)
    server = start_panel(lookup, args.seed, os.environ[KEY_ENV])
    try:
        with step("register the panel's judges", timings):
            for j in audit_data.JUDGES:
                command("judges", "add", j.name, "--base-url", server.base_url, "--model", j.model,
                        "--api-key-env", KEY_ENV, "--family", j.family, "--concurrency", "32", "--timeout", "30")
        with step("score every response with four judges", timings):
            scored = command("score", "--dataset", name, *[a for j in audit_data.JUDGES for a in ("--judge", j.name)],
                             "--force", "--no-progress")
    finally:
        server.stop()
    with step("build pairs (gap > 2)", timings):
        built = command("build_pairs", "--dataset", name, "--threshold", str(audit_data.PAIR_THRESHOLD),
                        "--no-progress")
    model_name = f"audit-rm-{dataset.pk}"
    with step("train the built-in reward model", timings):
        command("train_reward_model", "--dataset", name, "--name", model_name, "--no-progress")
    with step("filter with it", timings):
        filtered = command("reward_filter", "--dataset", name, "--model", model_name, "--no-progress")
    with step("count the low-quality rules (the quality-count job)", timings):
        job = jobs.create_job("quality_counts", dataset=dataset, enqueue_it=False)
        if jobs.execute(job.pk) != Job.Status.SUCCEEDED:
            job.refresh_from_db()
            sys.exit(f"the quality count failed: {job.error}")
    with step("analyze the tables (as autovacuum would before anyone reads the lists)", timings):
        analyze()
    bad = {pk for pk, (kinds, _hard) in truth_of_pairs(dataset, prompt_truth, response_truth).items() if kinds}
    before_rejudge = top_k(dataset, bad)
    server = start_panel(lookup, args.seed, os.environ[KEY_ENV])
    Judge.objects.filter(name__in=[j.name for j in audit_data.JUDGES]).update(base_url=server.base_url)
    try:
        what = f"re-judge the {args.rejudge_top} most suspicious unflagged pairs pairwise ({args.rejudge_judge})"
        with step(what, timings):
            rejudged = rejudge_suspicious(dataset, args.rejudge_judge, args.rejudge_top)
    finally:
        server.stop()
    with step("read every list and the judge analysis", timings):
        pairs = {pk: (prompt_id, chosen, rejected) for pk, prompt_id, chosen, rejected in
                 Pair.objects.filter(dataset=dataset).values_list("pk", "prompt_id", "chosen_id", "rejected_id")}
        pair_kinds = truth_of_pairs(dataset, prompt_truth, response_truth)
        pair_forms = {pk: {kind: defect_form(kind, prompt_truth[p], response_truth[c], response_truth[r])
                           for kind in pair_kinds[pk][0]} for pk, (p, c, r) in pairs.items()}
        lists = read_lists(dataset)
        judges = judge_verdict(dataset, response_truth)
        ranked = suspicion_figures(dataset, pair_kinds, args)
        ranked["before_rejudge"] = before_rejudge
        ranked["rejudged"] = rejudged
    foreign = foreign_matches(dataset, f"{name} benchmark", prompt_truth)
    # The run's benchmark is this run's only: a later run (other seed, or the sample data alone, whose
    # benchmark questions are sample prompts) must not find its clean prompts in it.
    Dataset.objects.filter(name=f"{name} benchmark").update(is_benchmark=False)
    held_out = RewardModel.objects.get(name=model_name).metrics["held_out"]["overall"]
    figures = {
        "machine": machine(), "command": " ".join(sys.argv), "dataset": name, "seed": args.seed,
        "pairs_target": args.pairs, "prompts": len(prompt_truth), "responses": len(response_truth),
        "judgements": scored.get("by_status"), "pairs_built": len(pairs),
        "planned_pairs": len(truth["pairs"]), "planned_and_built": planned_built(truth, pairs, response_truth),
        "build": {k: built.get(k) for k in ("pairs_created", "prompts_without_pairs")},
        "prompts_matching_other_benchmarks": foreign,
        **score_lists(pair_kinds, pair_forms, lists),
        "judges": judges,
        "suspicion": ranked,
        "reward_model": {"held_out_accuracy": held_out["accuracy"], "longer_wins": held_out["longer_wins"],
                         "held_out_pairs": held_out["n"], "pairs_filtered": filtered.get("pairs_filtered"),
                         "pairs_scored": filtered.get("pairs_scored")},
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
    }
    figures["total_s"] = round(sum(timings.values()), 1)
    return figures


TOP_K = (50, 100, 200, 500)


def truth_of_pairs(dataset, prompt_truth, response_truth):
    """{pair id: (seeded defect kinds, hard-negative kinds)} of the dataset's pairs (audit_data.pair_truth)."""
    from annotation.models import Pair

    return {pk: audit_data.pair_truth(prompt_truth[p], response_truth[c], response_truth[r]) for pk, p, c, r in
            Pair.objects.filter(dataset=dataset).values_list("pk", "prompt_id", "chosen_id", "rejected_id")}


def top_k(dataset, bad):
    """{k: defective pairs among the k most suspicious} by the stored suspicion score."""
    from review.models import PairSuspicion

    scores = dict(PairSuspicion.objects.filter(dataset=dataset).values_list("pair_id", "score"))
    order = sorted(scores, key=lambda pk: (-scores[pk], pk))
    return {k: len(bad & set(order[:k])) for k in TOP_K}


def rejudge_suspicious(dataset, judge_name, top):
    """The pairwise re-judging job (annotation/rejudging.py) over the `top` most suspicious pairs that no defect
    rule flags (a rule already explains the others), as the pair list's "re-judge these" form starts it on
    `flagged=no&order=suspicious`, run here in-process; then the suspicion
    scores again, which read the verdicts. Returns the job's counts."""
    from django.http import QueryDict

    from annotation import jobs
    from annotation.models import Job, Judge
    from annotation.rejudging import start_rejudge
    from review import suspicion
    from review.selections import select_pairs

    pairs, _form = select_pairs(dataset, QueryDict("flagged=no&order=suspicious"))
    job = start_rejudge(dataset, Judge.objects.get(name=judge_name), pairs, limit=top,
                        described=f"the {top} most suspicious", enqueue_it=False)
    if jobs.execute(job.pk) != Job.Status.SUCCEEDED:
        job.refresh_from_db()
        sys.exit(f"the pairwise re-judging failed: {job.error}")
    suspicion.store(dataset)
    job.refresh_from_db()
    return {"judge": judge_name, "pairs": top, **job.counts}


def suspicion_figures(dataset, pair_kinds, args):
    """How many defective pairs the stored suspicion score (review/suspicion.py) puts in its top k, against
    random order (k × the share of defective pairs), and its ROC AUC; with --fit-suspicion, the logistic
    regression's weights fitted on this run's pairs (to be written into review/suspicion.py by hand)."""
    from review.models import PairSuspicion
    from review.suspicion import SIGNALS, signal_values

    scores = dict(PairSuspicion.objects.filter(dataset=dataset).values_list("pair_id", "score"))
    order = sorted(scores, key=lambda pk: (-scores[pk], pk))
    bad = {pk for pk, (kinds, _hard) in pair_kinds.items() if kinds}
    share = len(bad) / len(pair_kinds) if pair_kinds else 0
    top = {k: {"defective": len(bad & set(order[:k])), "random": round(min(k, len(order)) * share, 1)}
           for k in TOP_K}
    figures = {"scored": len(scores), "top_k": top, "auc": _auc([scores[pk] for pk in order],
                                                                 [pk in bad for pk in order])}
    if args.fit_suspicion:
        values = signal_values(dataset)
        pks = sorted(values)
        x = [[values[pk][s.name] for s in SIGNALS] for pk in pks]
        figures["fitted"] = fit_logistic(x, [pk in bad for pk in pks], [s.name for s in SIGNALS])
    return figures


def fit_logistic(x, y, names, l2=1e-2, steps=5000, rate=0.5):
    """Weights of a logistic regression (gradient descent on the mean log loss + l2 × |w|²), numpy, offline:
    the app ships the fitted constants, not this."""
    import numpy as np

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    scale = np.maximum(x.std(axis=0), 1e-9)  # fitted on standardised values, reported on raw ones
    xs = (x - x.mean(axis=0)) / scale
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(xs @ w + b)))
        w -= rate * (xs.T @ (p - y) / len(y) + 2 * l2 * w)
        b -= rate * float(np.mean(p - y))
    raw = w / scale
    return {"intercept": round(b - float(raw @ x.mean(axis=0)), 3),
            "weights": {n: round(float(v), 3) for n, v in zip(names, raw)}}


def _auc(scores, labels):
    """ROC AUC: the chance that a defective pair scores above a clean one (ties count half)."""
    pos = [s for s, bad in zip(scores, labels) if bad]
    neg = [s for s, bad in zip(scores, labels) if not bad]
    if not pos or not neg:
        return None
    ranks = {}
    for i, s in enumerate(sorted(scores)):
        ranks.setdefault(s, []).append(i + 1)
    mean_rank = {s: sum(r) / len(r) for s, r in ranks.items()}
    return round((sum(mean_rank[s] for s in pos) - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)), 4)


def foreign_matches(dataset, benchmark_name, prompt_truth):
    """Prompts not seeded as contaminated that match a benchmark dataset of the database other than this
    run's: the `contaminated` list flags them, and the truth cannot know why."""
    from annotation.models import ContaminationMatch

    matched = (ContaminationMatch.objects.filter(prompt__dataset=dataset)
               .exclude(benchmark_prompt__dataset__name=benchmark_name).values_list("prompt_id", flat=True))
    return len({pk for pk in matched if "contaminated" not in prompt_truth[pk]["kinds"]})


def analyze():
    """Fresh statistics for the tables the lists read. Right after the jobs, PostgreSQL still plans with
    the statistics of the empty tables, and the live judge-order query then nests loops over its two scans
    of the latest scores: 320 s for 488 pairs here, against 3 ms once analyzed (bench/pages.py analyzes
    for the same reason)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE annotation_prompt, annotation_response, annotation_judgement, annotation_pair, "
                       "annotation_rewardscore")


def read_lists(dataset):
    """{list name: set of pair ids} for every low-quality rule and disagreement view, through the pair
    list's own selection (stored members where the count job stored them, live otherwise)."""
    from django.http import QueryDict

    from review.selections import select_pairs, selections_in

    out = {}
    for group in ("quality", "disagreement"):
        for view in selections_in(group):
            pairs, form = select_pairs(dataset, QueryDict(f"view={view.name}"))
            if pairs is None:
                sys.exit(f"the list {view.name} did not accept its default settings: {form.errors}")
            out[view.name] = {"group": group, "signal": view.signal, "pairs": set(pairs.values_list("pk", flat=True))}
    return out


def planned_built(truth, pairs, response_truth):
    built = {f"{response_truth[c]['id']}>{response_truth[r]['id']}" for _p, c, r in pairs.values()}
    return len(built & set(truth["pairs"]))


def defect_form(kind, prompt, chosen, rejected):
    """The surface form of a pair's defect of `kind`: the prompt's edit, or the form of the response that
    carries it ("natural": the sources' own)."""
    if kind in ("near_duplicate_prompt", "contaminated"):
        return prompt["edit"] or "original"
    for r in (chosen, rejected):
        if r["defect"] == kind:
            return r["form"] or "natural"
    return "natural"


def score_lists(pair_kinds, pair_forms, lists):
    clean = {pk for pk, (kinds, _hard) in pair_kinds.items() if not kinds}
    by_kind = defaultdict(set)
    for pk, (kinds, _hard) in pair_kinds.items():
        for k in kinds:
            by_kind[k].add(pk)
    # Precision is asked of the defect flags; the signals (Selection.signal) are read for their lift.
    flags = {name: entry for name, entry in lists.items() if not entry["signal"]}
    flagged_any = set().union(*(entry["pairs"] for entry in flags.values()))
    flagged_quality = set().union(*(entry["pairs"] for entry in flags.values() if entry["group"] == "quality"))
    base_rate = 1 - len(clean) / len(pair_kinds) if pair_kinds else 0
    recall = {}
    for kind in audit_data.DEFECT_KINDS:
        members = by_kind.get(kind, set())
        meant = set().union(*(lists[name]["pairs"] for name in MEANT_FOR[kind] if name in lists))
        forms = defaultdict(set)
        for pk in members:
            forms[pair_forms[pk][kind]].add(pk)
        recall[kind] = {"pairs": len(members), "meant_for": list(MEANT_FOR[kind]),
                        "recall_meant": _share(members & meant, members),
                        "recall_any": _share(members & flagged_any, members),
                        "recall_any_quality": _share(members & flagged_quality, members),
                        "by_form": {form: {"pairs": len(pks), "recall_meant": _share(pks & meant, pks)}
                                    for form, pks in sorted(forms.items(), key=lambda f: (-len(f[1]), f[0]))}}
    per_list = {}
    for name, entry in lists.items():
        flagged = entry["pairs"]
        defective = _share_n(len(flagged) - len(flagged & clean), len(flagged))
        per_list[name] = {"group": entry["group"], "signal": entry["signal"], "flagged": len(flagged),
                          "clean": len(flagged & clean), "clean_share": _share(flagged & clean, flagged),
                          # how much likelier a flagged pair is to be defective than a pair at random
                          "lift": round(defective / base_rate, 2) if defective is not None and base_rate else None,
                          "kinds": dict(Counter(k for pk in flagged for k in pair_kinds[pk][0]).most_common()),
                          # what the clean pairs it flags are: hard negatives, or plain pairs
                          "clean_as": dict(Counter(h for pk in flagged & clean
                                                   for h in pair_kinds[pk][1] or ["plain"]).most_common())}
    hard = defaultdict(set)
    for pk in clean:
        for h in pair_kinds[pk][1]:
            hard[h].add(pk)
    hard_negatives = {}
    for h in audit_data.HARD_KINDS:
        members = hard.get(h, set())
        tripped = {name: len(members & entry["pairs"]) for name, entry in flags.items() if entry["group"] == "quality"}
        worst = max(tripped, key=tripped.get) if members else None
        hard_negatives[h] = {"pairs": len(members), "flagged_by_a_rule": _share(members & flagged_quality, members),
                             "worst_rule": worst, "worst_rule_share": _share_n(tripped.get(worst, 0), len(members))}
    signalled = set().union(*(entry["pairs"] for entry in lists.values() if entry["signal"]))
    union = {"flagged": len(flagged_any), "clean": len(flagged_any & clean), "signalled": len(signalled),
             "signalled_clean_share": _share(signalled & clean, signalled),
             "clean_share": _share(flagged_any & clean, flagged_any), "quality_flagged": len(flagged_quality),
             "quality_clean_share": _share(flagged_quality & clean, flagged_quality)}
    defective = len(pair_kinds) - len(clean)
    return {"pairs_with_defects": defective, "clean_pairs": len(clean), "base_rate": round(base_rate, 4),
            "recall": recall, "lists": per_list,
            "all_lists": union, "hard_negatives": hard_negatives}


def _share(part, whole):
    return _share_n(len(part), len(whole))


def _share_n(n, total):
    return round(n / total, 4) if total else None


def judge_verdict(dataset, response_truth):
    """The judge page's self-preference per judge and whom it names (review.judge_analysis.verdict: the
    judge's excess over the other judges of the same responses, own family against other families, named
    when its 95 % interval lies above SELF_PREFERENCE_MARGIN), its raw own-family difference, and beside
    them the same relative figure computed here independently of the app, as a check."""
    from annotation.models import Judgement
    from review.judge_analysis import judges_data, verdict

    judges = judges_data(dataset)["judges"]
    page = {e["name"]: e for e in judges}
    raw = {}
    for name, e in page.items():
        sp = e.get("self_preference") or {}
        raw[name] = {"family": e["family"], **{k: sp.get(k) for k in ("raw_diff", "raw_own_n", "own_mean",
                                                                     "raw_other_n", "other_mean", "diff", "low",
                                                                     "high")}}
    named = [j["name"] for j in verdict(judges)]
    scores = defaultdict(dict)
    for response_id, judge, score in (Judgement.objects.filter(response__dataset=dataset, status="ok")
                                      .values_list("response_id", "judge__name", "score")):
        scores[response_id][judge] = score
    relative = {}
    for name, e in raw.items():
        own, other = [], []
        for response_id, by_judge in scores.items():
            if name not in by_judge or len(by_judge) < 2:
                continue
            others = [s for j, s in by_judge.items() if j != name]
            delta = by_judge[name] - sum(others) / len(others)
            model = response_truth[response_id]["model"].lower()
            (own if e["family"] and e["family"] in model else other).append(delta)
        if len(own) > 1 and len(other) > 1:
            diff = statistics.fmean(own) - statistics.fmean(other)
            se = math.sqrt(statistics.variance(own) / len(own) + statistics.variance(other) / len(other))
            relative[name] = {"diff": round(diff, 3), "ci95": [round(diff - 1.96 * se, 3), round(diff + 1.96 * se, 3)],
                              "own_n": len(own), "other_n": len(other)}
    seeded = {j.name: j.self_bias for j in audit_data.JUDGES if j.self_bias}
    named_relative = max(relative, key=lambda n: relative[n]["diff"], default=None)
    return {"raw": raw, "named_by_page": named, "relative": relative, "named_by_relative": named_relative,
            "seeded_self_bias": seeded}


def machine():
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def pct(x):
    return "   –  " if x is None else f"{100 * x:5.1f} %"


def report(f):
    lines = [f"Audit power: {f['pairs_built']:,} pairs built ({f['planned_and_built']:,} of {f['planned_pairs']:,} "
             f"planned), {f['prompts']:,} prompts, {f['responses']:,} responses, seed {f['seed']}; "
             f"{f['pairs_with_defects']:,} pairs carry a seeded defect, {f['clean_pairs']:,} are clean",
             f"dataset: {f['dataset']}"]
    if f["prompts_matching_other_benchmarks"]:
        lines.append(f"warning: {f['prompts_matching_other_benchmarks']} prompts not seeded as contaminated match "
                     "benchmark datasets of this database outside the run: the contaminated list's clean flags")
    lines += ["", "Recall by defect kind",
             f"{'kind':<22} {'pairs':>6}  {'meant-for list':<36} {'recall':>7}  {'any list':>7}  {'any rule':>7}"]
    for kind, r in f["recall"].items():
        lines.append(f"{kind:<22} {r['pairs']:>6}  {' + '.join(r['meant_for']):<36} {pct(r['recall_meant'])}  "
                     f"{pct(r['recall_any'])}  {pct(r['recall_any_quality'])}")
    lines += ["", "Recall of the meant-for list by surface form (flagged / pairs)"]
    for kind, r in f["recall"].items():
        forms = ", ".join(f"{form} {round(x['recall_meant'] * x['pairs'])}/{x['pairs']}"
                          for form, x in r["by_form"].items())
        lines.append(f"{kind:<22} {forms}")
    lines += ["", "Defect flags (clean = the pair has no seeded defect; plain = a clean pair that is no hard negative "
                  "either; goal: clean ≤ 5 %)",
              f"{'list':<24} {'group':<12} {'flagged':>7} {'clean':>6} {'clean %':>8}  {'defects flagged, most':<52} "
              "clean pairs flagged, most"]
    for name, r in f["lists"].items():
        if r["signal"]:
            continue
        top = ", ".join(f"{k} {n}" for k, n in list(r["kinds"].items())[:3])
        clean_as = ", ".join(f"{k} {n}" for k, n in list(r["clean_as"].items())[:3])
        lines.append(f"{name:<24} {r['group']:<12} {r['flagged']:>7} {r['clean']:>6} {pct(r['clean_share'])}  "
                     f"{top:<52} {clean_as}")
    u = f["all_lists"]
    lines.append(f"{'any defect flag':<24} {'':<12} {u['flagged']:>7} {u['clean']:>6} {pct(u['clean_share'])}")
    lines += ["", f"Signals (where the label is less sure; not defect flags): lift = the share of defective pairs "
                  f"among those flagged / among all pairs ({pct(f['base_rate']).strip()})",
              f"{'list':<24} {'group':<12} {'flagged':>7} {'clean':>6} {'clean %':>8} {'lift':>5}  "
              "defects flagged, most"]
    for name, r in f["lists"].items():
        if not r["signal"]:
            continue
        top = ", ".join(f"{k} {n}" for k, n in list(r["kinds"].items())[:3])
        lift = "–" if r["lift"] is None else f"{r['lift']:.2f}"
        lines.append(f"{name:<24} {r['group']:<12} {r['flagged']:>7} {r['clean']:>6} {pct(r['clean_share'])} "
                     f"{lift:>5}  {top}")
    lines.append(f"{'any signal':<24} {'':<12} {u['signalled']:>7} {'':>6} {pct(u['signalled_clean_share'])}")
    lines += ["", "Hard negatives (clean pairs) flagged by a low-quality rule",
              f"{'kind':<24} {'pairs':>6} {'flagged':>8}  worst rule"]
    for h, r in f["hard_negatives"].items():
        worst = f"{r['worst_rule']} ({pct(r['worst_rule_share']).strip()})" if r["worst_rule"] else ""
        lines.append(f"{h:<24} {r['pairs']:>6} {pct(r['flagged_by_a_rule'])}  {worst}")
    j = f["judges"]
    lines += ["", f"Judge analysis: the judges page names {j['named_by_page'] or 'no judge'} as self-preferring; "
                  f"the seeded bias is {j['seeded_self_bias']}",
              f"{'judge':<16} {'family':<9} {'own n':>6} {'own':>6} {'other n':>7} {'other':>6} {'raw diff':>8}   "
              f"{'page: vs other judges':<26} {'bench check':<26}"]
    for name, r in j["raw"].items():
        rel = j["relative"].get(name)
        rel_text = f"{rel['diff']:+.2f} [{rel['ci95'][0]:+.2f}, {rel['ci95'][1]:+.2f}]" if rel else "–"
        page_text = "–" if r["diff"] is None else (
            f"{r['diff']:+.2f}" + (f" [{r['low']:+.2f}, {r['high']:+.2f}]" if r["low"] is not None else ""))
        diff = "–" if r["raw_diff"] is None else format(r["raw_diff"], "+.2f")
        lines.append(f"{name:<16} {r['family']:<9} {r['raw_own_n'] or 0:>6} {r['own_mean'] or 0:>6.2f} "
                     f"{r['raw_other_n'] or 0:>7} {r['other_mean'] or 0:>6.2f} {diff:>8}   {page_text:<26} {rel_text}")
    sp = f["suspicion"]
    lines += ["", f"Suspicion score: {sp['scored']:,} pairs scored, ROC AUC {sp['auc']}; defective pairs in the top k",
              f"{'k':>5} {'score':>6} {'random':>7}"]
    rj = sp["rejudged"]
    lines[-2] += (f" (after re-judging the {rj['pairs']} most suspicious pairs no rule flags pairwise with "
                  f"{rj['judge']}: "
                  f"{rj.get('disagree', 0)} against the label, {rj.get('agree', 0)} for it, "
                  f"{rj.get('inconsistent', 0)} position-inconsistent)")
    lines[-1] += f" {'before re-judging':>18}"
    for k, r in sp["top_k"].items():
        lines.append(f"{k:>5} {r['defective']:>6} {r['random']:>7} {sp['before_rejudge'][k]:>18}")
    if "fitted" in sp:
        lines.append(f"fitted (seed {f['seed']}): {sp['fitted']}")
    rm = f["reward_model"]
    lines += ["", f"Reward model: held-out accuracy {rm['held_out_accuracy']:.3f} on {rm['held_out_pairs']} pairs "
                  f"(longer wins {rm['longer_wins']:.3f}); "
                  f"filtered {rm['pairs_filtered']} of {rm['pairs_scored']} pairs",
              f"Judgements: {f['judgements']}",
              f"Time: {f['total_s']:.0f} s ({', '.join(f'{k} {v:.0f} s' for k, v in f['timings_s'].items())})",
              f"Machine: {f['machine']}"]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3000, help="about this many pairs (default 3000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", type=Path, default=audit_data.DEFAULT_DATA_DIR,
                        help="the folder with the shared sample data (default ../shared/data)")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--rejudge-judge", default=REJUDGE_JUDGE,
                        help=f"the judge that re-judges the most suspicious pairs pairwise (default {REJUDGE_JUDGE})")
    parser.add_argument("--rejudge-top", type=int, default=REJUDGE_TOP,
                        help=f"how many of the most suspicious pairs it re-judges (default {REJUDGE_TOP})")
    parser.add_argument("--fit-suspicion", action="store_true",
                        help="also fit the suspicion score's weights on this run (review/suspicion.py)")
    args = parser.parse_args()
    figures = run(args)
    print(report(figures))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
