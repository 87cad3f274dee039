"""Benchmark of the built-in reward model: training on 500k pairs and scoring 1M pairs.

    .venv/bin/python bench/reward.py [--train-pairs 500000] [--score-pairs 1006946] [--db-pairs 0] [--hf-pairs 0]

Texts are generated here (Chinese characters drawn with a skewed frequency, punctuation, line breaks,
lists, code fences and LaTeX by domain, ~400 characters on average like real COIG-P responses), with a
hidden quality per response that shows as good or bad phrases; pairs put the better response first,
with 10% of labels flipped, so about 0.9 is the best accuracy any model can reach.

The in-memory parts time exactly what the training job and the filter job do with texts (featurise,
fit, score); the training's texts are written as the training reads them, 5,000 at a time, as the job
reads them from PostgreSQL, so its peak RSS is the training's. --db-pairs N also writes N pairs into the
database of DATABASE_URL (a dataset named "bench-reward", deleted afterwards) and times the whole
`reward_filter` job over them.
"""

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coigp_web.settings")

import django  # noqa: E402

django.setup()

from annotation.reward import training as T  # noqa: E402
from annotation.reward.builtin import LinearRewardModel  # noqa: E402

# COIG-P's share of pairs by domain (chat, code, math, logic, novel, role)
DOMAIN_SHARE = np.array([702398, 40213, 155872, 54617, 34483, 19363], dtype=np.float64)
DOMAIN_NAMES = ["chat", "code", "math", "logic", "novel", "role"]
GOOD = ["首先", "其次", "综上所述", "具体来说", "例如", "因此", "需要注意的是", "总结一下", "第一步", "可以看出"]
BAD = ["不知道", "随便吧", "大概", "呃", "反正", "懒得解释", "自己查", "可能吧", "无所谓"]
CJK = np.random.default_rng(99).permutation(np.arange(0x4E00, 0x4E00 + 3500)).astype(np.uint32)


def generate(rng, n_prompts, per_prompt):
    """Responses (texts, prompt lengths, domains, qualities), `per_prompt` of each prompt, in prompt order."""
    domains = rng.choice(6, size=n_prompts, p=DOMAIN_SHARE / DOMAIN_SHARE.sum())
    quality = rng.random(n_prompts * per_prompt)
    response_domains = np.repeat(domains, per_prompt)
    texts = write_texts(rng, quality, response_domains)
    prompt_lengths = np.repeat(rng.integers(10, 200, n_prompts), per_prompt).astype(np.float64)
    return texts, prompt_lengths, [DOMAIN_NAMES[d] for d in response_domains], quality, domains


def write_texts(rng, quality, response_domains):
    """A text per response, its good or bad phrases drawn by its hidden quality."""
    lengths = np.maximum(rng.lognormal(np.log(330) + 0.4 * (quality - 0.5), 0.6), 5).astype(np.int64)
    picks = np.minimum((rng.random(lengths.sum()) ** 2.5 * CJK.size).astype(np.int64), CJK.size - 1)
    codes = CJK[picks]
    noise = rng.random(codes.size)
    codes[noise < 0.05] = ord("，")
    codes[(noise >= 0.05) & (noise < 0.07)] = ord("。")
    codes[(noise >= 0.07) & (noise < 0.08)] = 10
    body = codes.tobytes().decode("utf-32-le")
    texts, at = [], 0
    for i, n in enumerate(lengths.tolist()):
        piece = body[at:at + n]
        at += n
        k = 1 + n // 90
        phrases = [GOOD[j % len(GOOD)] if r < quality[i] else BAD[j % len(BAD)]
                   for j, r in zip(rng.integers(0, 90, k).tolist(), rng.random(k).tolist())]
        step = max(n // k, 1)
        text = "".join(piece[s * step:(s + 1) * step] + p for s, p in enumerate(phrases)) + piece[k * step:]
        d = response_domains[i]
        if d == 1:
            text += "\n```python\ndef f(x):\n    return x\n```\n"
        elif d == 2:
            text += "\n$x^2 + \\frac{1}{2}$\n"
        if quality[i] > 0.6:
            text = "1. " + text.replace("。", "。\n2. ", 1)
        texts.append(text)
    return texts


# Responses whose texts the training's stream writes together, each block from its own seed: the texts do
# not depend on how many the training reads at a time.
TEXT_BLOCK = 1000


class TextStream:
    """`read_responses` of the training's PairData: the texts are written as the training reads them, so
    the benchmark holds no more of them than the training does (the database source reads them the same way)."""

    def __init__(self, seed, quality, response_domains, prompt_lengths):
        self.seed, self.quality, self.domains, self.prompt_lengths = seed, quality, response_domains, prompt_lengths
        self.chars = 0
        self.seconds = 0.0

    def __call__(self, chunk):
        texts, at, n = [], 0, self.quality.size
        for block in range(0, n, TEXT_BLOCK):
            t0 = time.perf_counter()
            part = slice(block, block + TEXT_BLOCK)
            texts += write_texts(np.random.default_rng([self.seed, block]), self.quality[part], self.domains[part])
            self.seconds += time.perf_counter() - t0
            while len(texts) >= chunk or (texts and block + TEXT_BLOCK >= n):
                out, texts = texts[:chunk], texts[chunk:]
                self.chars += sum(len(t) for t in out)
                rows = slice(at, at + len(out))
                yield out, self.prompt_lengths[rows], [DOMAIN_NAMES[d] for d in self.domains[rows]]
                at += len(out)


def make_pairs(rng, n_prompts, per_prompt, n_pairs, quality, domains):
    prompt = np.arange(n_pairs) % n_prompts
    a = rng.integers(0, per_prompt, n_pairs)
    b = (a + rng.integers(1, per_prompt, n_pairs)) % per_prompt
    a, b = prompt * per_prompt + a, prompt * per_prompt + b
    better = quality[a] >= quality[b]
    flip = rng.random(n_pairs) < 0.1
    chosen = np.where(better ^ flip, a, b)
    rejected = np.where(better ^ flip, b, a)
    return prompt, domains[prompt], chosen, rejected


def bench_training(n_pairs, seed):
    rng = np.random.default_rng(seed)
    per_prompt = 8
    n_prompts = max(n_pairs // 11, 1)
    load_before, cpu_before = os.getloadavg(), _cpu_seconds()
    domains = rng.choice(6, size=n_prompts, p=DOMAIN_SHARE / DOMAIN_SHARE.sum())
    quality = rng.random(n_prompts * per_prompt)
    prompt_lengths = np.repeat(rng.integers(10, 200, n_prompts), per_prompt).astype(np.float64)
    prompt, domain, chosen, rejected = make_pairs(rng, n_prompts, per_prompt, n_pairs, quality, domains)
    texts = TextStream(seed, quality, np.repeat(domains, per_prompt), prompt_lengths)
    data = T.PairData(prompt=prompt, domain=np.array([T.F.DOMAINS.index(DOMAIN_NAMES[d]) for d in domain]),
                      chosen=chosen, rejected=rejected, n_responses=quality.size, read_responses=texts)
    params = T.train_params("bench")
    # The job's progress steps: one per FEATURE_CHUNK responses featurised, then one per mini-batch.
    epochs, batches = T._epochs(int((~T.split_by_prompt(prompt, 0.5, 0)).sum()), params)
    featurise_steps = -(-quality.size // T.FEATURE_CHUNK)
    steps, marks = [0], {}

    def progress(n):
        steps[0] += n
        for name, at in (("featurised", featurise_steps), ("fitted", featurise_steps + epochs * batches)):
            if name not in marks and steps[0] >= at:
                marks[name] = time.perf_counter()

    t0 = time.perf_counter()
    model, metrics = T.train(data, params, progress)
    end = time.perf_counter()
    took = end - t0
    overall = metrics["held_out"]["overall"]
    featurise = marks["featurised"] - t0 - texts.seconds
    fit = marks["fitted"] - marks["featurised"]
    print(f"train: {n_pairs:,} pairs ({quality.size:,} responses, {texts.chars / quality.size:.0f} chars each); "
          f"writing the texts took {texts.seconds:.1f} s (not counted below)")
    print(f"train: {took - texts.seconds:.1f} s end to end (featurise {featurise:.1f} s; {epochs} epochs of "
          f"{batches} batches over {metrics['train']['n']:,} train pairs {fit:.1f} s = {fit / epochs:.1f} s an epoch; "
          f"scoring every response {end - marks['fitted']:.1f} s) = {n_pairs / (took - texts.seconds):,.0f} pairs/s")
    print(f"train: held-out accuracy {overall['accuracy']:.4f} on {overall['n']:,} pairs; longer wins "
          f"{overall['longer_wins']:.4f}; random 0.5; ceiling ~0.9 (10% flipped labels)")
    print(f"train: CPU {_cpu_seconds() - cpu_before:.1f} s (user+sys, texts included); peak RSS so far "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB; load average "
          f"{load_before[0]:.2f} -> {os.getloadavg()[0]:.2f}")
    return model


def _cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bench_scoring(model, n_pairs, seed, chunk=5000):
    rng = np.random.default_rng(seed + 1)
    n_prompts, per_prompt = 92_784, 8
    n_prompts = max(min(n_prompts, n_pairs // 11), 1)
    scored, gen_time, score_time, rewards = 0, 0.0, 0.0, []
    quality_all, domains_all = [], []
    for start in range(0, n_prompts, chunk // per_prompt):
        k = min(chunk // per_prompt, n_prompts - start)
        t0 = time.perf_counter()
        texts, plen, rdom, quality, domains = generate(rng, k, per_prompt)
        t1 = time.perf_counter()
        rewards.append(model.score(texts, plen, rdom))
        t2 = time.perf_counter()
        gen_time += t1 - t0
        score_time += t2 - t1
        scored += len(texts)
        quality_all.append(quality)
        domains_all.append(domains)
    rewards = np.concatenate(rewards)
    t0 = time.perf_counter()
    prompt, _d, chosen, rejected = make_pairs(rng, n_prompts, per_prompt, n_pairs, np.concatenate(quality_all),
                                              np.concatenate(domains_all))
    margin = rewards[chosen] - rewards[rejected]
    score_time += time.perf_counter() - t0
    print(f"score: {n_pairs:,} pairs over {n_prompts:,} prompts = {scored:,} unique responses; "
          f"featurise + score + margins {score_time:.1f} s = {n_pairs / score_time:,.0f} pairs/s "
          f"({scored / score_time:,.0f} responses/s); generating the texts took another {gen_time:.1f} s; "
          f"{(margin <= 0).mean():.1%} of pairs at or below margin 0")


def bench_database(model, n_pairs, seed):
    from django.db import connection, transaction

    from annotation import jobs
    from annotation.ingest.formats import PairRecord
    from annotation.ingest.writer import write_batch
    from annotation.models import Dataset, RewardModel
    from annotation.reward.builtin import model_path
    from annotation.reward.filtering import filter_params, what_if

    rng = np.random.default_rng(seed + 2)
    per_prompt = 8
    n_prompts = max(n_pairs // 11, 1)
    texts, plen, rdom, quality, domains = generate(rng, n_prompts, per_prompt)
    prompt, _d, chosen, rejected = make_pairs(rng, n_prompts, per_prompt, n_pairs, quality, domains)
    Dataset.objects.filter(name="bench-reward").delete()
    dataset = Dataset.objects.create(name="bench-reward")
    t0 = time.perf_counter()
    for start in range(0, n_pairs, 5000):
        records = [PairRecord(messages=[{"role": "user", "content": f"问题{p}：" + "问" * int(plen[p * per_prompt])}],
                              chosen=texts[c], rejected=texts[r], domain=DOMAIN_NAMES[domains[p]], domain_label="")
                   for p, c, r in zip(prompt[start:start + 5000].tolist(), chosen[start:start + 5000].tolist(),
                                      rejected[start:start + 5000].tolist())]
        with transaction.atomic():
            write_batch(dataset, records)
    # Pairs drawn twice for a prompt are one pair in the database.
    n_pairs = dataset.pairs.count()
    print(f"db: wrote {n_pairs:,} distinct pairs in {time.perf_counter() - t0:.1f} s (set-up, not timed below)")
    name = "bench-reward-model"
    RewardModel.objects.filter(name=name).delete()
    path = model_path(name, 1)
    model.save(path)
    rm = RewardModel.objects.create(name=name, version=1, backend="builtin",
                                    config={"path": f"reward_models/{path.name}"})
    try:
        for mode in ("score", "what-if", "apply"):
            if mode == "what-if":
                t0 = time.perf_counter()
                result = what_if(dataset, rm, 0.0)
                print(f"db: what-if over {result['scored']:,} scored pairs (histogram + survivors at "
                      f"{len(result['thresholds'])} thresholds): {time.perf_counter() - t0:.2f} s")
                continue
            job = jobs.create_job("reward_filter", dataset=dataset, params=filter_params(rm, mode=mode),
                                  enqueue_it=False)
            t0 = time.perf_counter()
            jobs.execute(job.pk)
            took = time.perf_counter() - t0
            job.refresh_from_db()
            print(f"db: reward_filter {mode}: {took:.1f} s = {n_pairs / took:,.0f} pairs/s; status {job.status}; "
                  f"{job.counts.get('responses_scored', 0):,} responses scored, "
                  f"{job.counts.get('pairs_filtered', 0):,} pairs filtered")
    finally:
        with connection.cursor() as cursor:  # faster than the ORM's cascade over 100k rows
            cursor.execute("DELETE FROM annotation_pair WHERE dataset_id = %s", [dataset.pk])
        dataset.delete()
        rm.delete()
        path.unlink(missing_ok=True)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE annotation_pair")


def bench_hf(n_pairs, seed, batch_sizes=(1, 8, 32), threads=(1, None)):
    """The Hugging Face backend's path (chat template, tokenising, padding, forward pass) on the CPU with
    the tests' tiny random 2-layer Llama: the overhead of the path, not the speed of a real 8B model."""
    import tempfile

    import torch

    from annotation.reward.hf import HFRewardModel
    from tests import hf_tiny

    rng = np.random.default_rng(seed + 3)
    per_prompt = 2
    n_prompts = max(n_pairs, 1)
    texts, plen, _rdom, _q, _d = generate(rng, n_prompts, per_prompt)
    conversations = [[{"role": "user", "content": "请回答：" + "问" * int(plen[i])}, {"role": "assistant", "content": t}]
                     for i, t in enumerate(texts)]
    default_threads = torch.get_num_threads()
    print(f"hf: torch {torch.__version__}; tiny Llama (2 layers, hidden 32), "
          f"{n_pairs:,} pairs = {len(texts):,} responses of {np.mean([len(t) for t in texts]):.0f} characters")
    with tempfile.TemporaryDirectory() as folder:
        hf_tiny.build(folder)
        for n_threads, batch_size in [(t or default_threads, b) for t in threads for b in batch_sizes]:
            # On a machine whose cores are busy with other work, torch's threads wait on each other
            # (a [500 x 32] matmul measured 66 µs on one thread, 1.2 ms on two): both are reported.
            torch.set_num_threads(n_threads)
            model = HFRewardModel.load(folder, batch_size=batch_size, cuda_available=False)
            t0 = time.perf_counter()
            ids = model.encode(conversations)
            t1 = time.perf_counter()
            model.score(conversations)
            took = time.perf_counter() - t1
            tokens = sum(len(i) for i in ids)
            print(f"hf: {n_threads} thread(s), batch {batch_size:>3}: {n_pairs / took:,.0f} pairs/s "
                  f"({len(texts) / took:,.0f} responses/s, {tokens / took:,.0f} tokens/s; template + tokenising alone {len(texts) / (t1 - t0):,.0f} "
                  f"responses/s)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-pairs", type=int, default=500_000)
    parser.add_argument("--score-pairs", type=int, default=1_006_946)
    parser.add_argument("--db-pairs", type=int, default=0)
    parser.add_argument("--hf-pairs", type=int, default=0,
                        help="also time the Hugging Face backend on the CPU with a tiny model over N pairs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} cores")
    model = bench_training(args.train_pairs, args.seed) if args.train_pairs else LinearRewardModel.empty()
    if args.score_pairs:
        bench_scoring(model, args.score_pairs, args.seed)
    if args.db_pairs:
        bench_database(model, args.db_pairs, args.seed)
    if args.hf_pairs:
        bench_hf(args.hf_pairs, args.seed)
    print(f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
