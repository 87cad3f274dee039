"""Speed of the text checks (review/text_checks.py) on real texts, and their verdicts kept for a comparison.

    .venv/bin/python bench/text_checks.py [--pairs 30000] [--data /work/bench-data/p100k.jsonl]
        [--save verdicts.pickle | --compare verdicts.pickle] [--profile 3000]

Reads the chosen and rejected responses of the first --pairs pairs of a ShareGPT-style JSONL file (the
1M-pair shape of ../shared/bench/gen_pairs.py), then those of ../shared/data (dpo_zh_demo_200's pairs,
AlignBench's reference answers) and sample_data/, with their prompts, and times `read` (the check the
quality-count job stores per response) and `PromptReading.of` apart. --save writes every verdict;
--compare reads a saved file and counts the texts whose verdict differs (a speed-up must leave them all
identical). --profile prints cProfile's top functions over the first N texts. No database.
"""

import argparse
import cProfile
import json
import os
import pickle
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from review import text_checks  # noqa: E402


def sharegpt_items(path, limit=None):
    with open(path, encoding="utf-8") as lines:
        for i, line in enumerate(lines):
            if limit is not None and i >= limit:
                break
            row = json.loads(line)
            turns = row.get("conversations", [])
            system = "\n".join(t["value"] for t in turns if t.get("from") == "system")
            query = next((t["value"] for t in reversed(turns) if t.get("from") == "human"), "")
            for side in ("chosen", "rejected"):
                value = row.get(side)
                if isinstance(value, dict):
                    yield value.get("value", ""), query, system


def corpus(data, pairs):
    items = list(sharegpt_items(data, pairs))
    shared = ROOT.parent / "shared" / "data"
    if not shared.exists():
        shared = Path("/work/shared/data")
    if (shared / "dpo_zh_demo_200.jsonl").exists():
        items += sharegpt_items(shared / "dpo_zh_demo_200.jsonl")
    if (shared / "alignbench_v1.1_questions.jsonl").exists():
        with open(shared / "alignbench_v1.1_questions.jsonl", encoding="utf-8") as lines:
            for line in lines:
                row = json.loads(line)
                items.append((row.get("reference") or "", row.get("question", ""), ""))
    sample = ROOT / "sample_data" / "coigp_sample.jsonl"
    if sample.exists():
        items += sharegpt_items(sample)
    return items


def read_all(items):
    prompts, verdicts = {}, []
    for text, query, system in items:
        key = (query, system)
        if key not in prompts:
            prompts[key] = text_checks.PromptReading.of(query, system)
        verdicts.append((prompts[key], text_checks.read(text, prompts[key])))
    return verdicts


def cpu():
    times = os.times()
    return times.user + times.system


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="/work/bench-data/p100k.jsonl")
    parser.add_argument("--pairs", type=int, default=30_000)
    parser.add_argument("--save")
    parser.add_argument("--compare")
    parser.add_argument("--profile", type=int, default=0)
    args = parser.parse_args()
    items = corpus(args.data, args.pairs)
    chars = sum(len(text) for text, _, _ in items)
    print(f"load average at start {os.getloadavg()[0]:.2f}; {len(items):,} texts, "
          f"{chars / len(items):.0f} characters a text on average")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        read_all(items[:args.profile])
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    started, cpu_started = time.perf_counter(), cpu()
    verdicts = read_all(items)
    wall, spent = time.perf_counter() - started, cpu() - cpu_started
    print(f"read {len(items):,} texts in {wall:.1f} s wall, {spent:.1f} s CPU: {len(items) / spent:,.0f} texts/s "
          f"of CPU; load average at end {os.getloadavg()[0]:.2f}")
    if args.save:
        with open(args.save, "wb") as out:
            pickle.dump(verdicts, out)
    if args.compare:
        with open(args.compare, "rb") as saved:
            before = pickle.load(saved)
        differ = [i for i, (old, new) in enumerate(zip(before, verdicts)) if old[1] != new[1]]
        prompts = sum(1 for old, new in zip(before, verdicts) if old[0] != new[0])
        print(f"compared with {args.compare}: {len(before):,} verdicts before, {len(verdicts):,} now, "
              f"{len(differ)} differ (and {prompts} texts' prompt readings)")
        for i in differ[:10]:
            print(f"  #{i} {items[i][0][-80:]!r}\n    before {before[i]}\n    now    {verdicts[i]}")


if __name__ == "__main__":
    main()
