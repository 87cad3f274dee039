"""Training the built-in reward model: one workflow for the web button and `manage.py train_reward_model`.

The dataset's pairs are split by prompt (a seeded hash of the prompt id, so no prompt is on both
sides), the model is fitted on the train half with mini-batch Adam on the Bradley-Terry loss
log(1 + exp(−(r(chosen) − r(rejected)))), and its held-out accuracy per domain is stored next to two
baselines: a coin (0.5 expected) and "the longer response wins" (ties count as misses).

Memory does not grow with the texts: they are read and featurised FEATURE_CHUNK at a time into a
temporary file (FeatureFile), and each mini-batch reads its rows back from it.

A worker that dies mid-training leaves nothing half-saved; the job that takes over starts again.
"""

import itertools
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction
from django.db.models import Case, Q, When
from django.db.models import F as Column
from django.utils.translation import gettext_lazy, pgettext_lazy

from ..jobs import JobContext, JobFailed, job_kind
from ..models import Dataset, Pair, RewardModel
from . import features as F
from .builtin import LinearRewardModel, model_path

# 5,000 responses a chunk: read from PostgreSQL (~2M characters), featurised (~100 MB of temporaries at
# 400 characters a text) and appended to the feature file; nothing of a chunk is kept in memory after it.
FEATURE_CHUNK = 5000
# Responses scored together for the held-out metrics, and rows read together for the dense features' mean
# and spread: 4,096 rows of ~1,250 n-gram hits are ~20 MB of the feature file.
READ_ROWS = 4096
# Pairs read from PostgreSQL at a time (4 integers each).
PAIR_CHUNK = 20_000
# min_steps: a small dataset gets more epochs, so that Adam takes enough steps to fit it at all.
DEFAULTS = {"test_fraction": 0.5, "seed": 0, "epochs": 4, "min_steps": 100, "batch_size": 2048,
            "learning_rate": 0.02, "weight_decay": 1e-4, "dense_l2": 1e-2, "bits": F.DEFAULT_BITS,
            "max_chars": F.DEFAULT_MAX_CHARS}


def train_params(name, *, test_fraction=0.5, seed=0, statuses=None, **overrides):
    name = (name or "").strip()
    if not name:
        raise ValueError("a reward model needs a name")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test fraction must be between 0 and 1 (exclusive), not {test_fraction}")
    bad = set(statuses or ()) - set(Pair.Status.values)
    if bad:
        raise ValueError(f"unknown pair status {', '.join(sorted(bad))}; expected {', '.join(Pair.Status.values)}")
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown training setting {', '.join(sorted(unknown))}")
    return {**DEFAULTS, **overrides, "name": name, "test_fraction": test_fraction, "seed": seed,
            "statuses": list(statuses) if statuses else None}


@dataclass
class PairData:
    """Pairs as arrays of row numbers into a table of unique responses, whose texts are read in chunks:
    `read_responses(chunk)` yields (texts, prompt lengths, domain values) for rows 0, 1, … in order, at
    most `chunk` rows at a time."""

    prompt: np.ndarray
    domain: np.ndarray  # index into F.DOMAINS
    chosen: np.ndarray
    rejected: np.ndarray
    n_responses: int
    read_responses: Callable[[int], Iterator[tuple]]


def split_by_prompt(prompt_ids, test_fraction, seed):
    """True for pairs in the test half: a seeded hash of the prompt id, so a prompt's pairs stay together."""
    x = np.asarray(prompt_ids, dtype=np.uint64) + np.uint64(seed * 0x9E3779B97F4A7C15 % 2**64)
    # splitmix64's finaliser: neighbouring ids land far apart.
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53) < test_fraction


class FeatureFile:
    """Every response's features, written once to a temporary file and read back a mini-batch at a time.

    Per response, one after the other: a record of float64 (its n-grams' scale, the dense features, its
    domain), then its hashed n-gram buckets (int32, ~1,250 for 420 characters: the bulk). Reads are plain
    `pread`s of the rows asked for, one per run of consecutive rows: the kernel keeps what it can of the
    file in its page cache, which it may reclaim, and this process holds only what a read returned.
    (Memory-mapping the file instead put all of it in the process's resident set within one batch: the
    kernel maps the cached pages around each one touched.) A second, small file holds the dense features
    alone, for their mean and spread. In memory stay, per response, where its n-grams start and its
    characters (for the "longer wins" baseline): 16 bytes. The files have no name: the kernel frees them
    on close, and when the worker is killed.
    """

    _RECORD = 2 * (2 + len(F.DENSE_FEATURES))  # int32 words of a record: scale, dense features, domain

    def __init__(self, directory=None):
        self._file = tempfile.TemporaryFile(prefix="reward-features-", dir=directory)
        self._dense = tempfile.TemporaryFile(prefix="reward-dense-", dir=directory)
        self._starts, self._lengths = [np.zeros(1, dtype=np.int64)], []
        self.n = self.hits = 0

    def append(self, batch):
        indptr, buckets = _csr(batch)
        records = np.column_stack([batch.scale, batch.dense, batch.domains]).astype(np.float64).view(np.int32)
        rows = np.arange(batch.n)
        words = np.empty(self._RECORD * batch.n + buckets.size, dtype=np.int32)
        words[(self._RECORD * rows + indptr[:-1])[:, None] + np.arange(self._RECORD)] = records
        words[self._RECORD * (np.repeat(rows, np.diff(indptr)) + 1) + np.arange(buckets.size)] = buckets
        self._file.write(words.tobytes())
        self._dense.write(np.ascontiguousarray(batch.dense, dtype=np.float64).tobytes())
        self._starts.append(indptr[1:] + self.hits)
        self._lengths.append(batch.lengths)
        self.hits += buckets.size
        self.n += batch.n

    def finish(self):
        """Make the rows written so far readable."""
        self._file.flush()
        self._dense.flush()
        self.starts = np.concatenate(self._starts)
        self.lengths = np.concatenate(self._lengths) if self._lengths else np.zeros(0, dtype=np.int64)
        self._starts = self._lengths = None
        return self

    def close(self):
        self._file.close()
        self._dense.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def read(self, rows):
        """The features of `rows`: their n-gram buckets and, for each, its position in `rows`; the n-gram
        scale, the dense features (not standardised) and the domain index of each row."""
        first, stop = _runs(rows)
        words = _pread(self._file, np.int32, self._RECORD * first + self.starts[first],
                       self._RECORD * (stop - first) + self.starts[stop] - self.starts[first])
        lens = self.starts[rows + 1] - self.starts[rows]
        at = np.cumsum(lens + self._RECORD) - (lens + self._RECORD)  # where each row begins in `words`
        table = words[at[:, None] + np.arange(self._RECORD)].view(np.float64)
        seg = np.repeat(np.arange(rows.size), lens)
        positions = np.arange(seg.size)
        positions += np.repeat(at + self._RECORD - (np.cumsum(lens) - lens), lens)
        return words[positions], seg, table[:, 0].copy(), np.ascontiguousarray(table[:, 1:-1]), \
            table[:, -1].astype(np.int64)


    def dense(self, rows):
        """The dense features (not standardised) of `rows`, without their n-grams."""
        first, stop = _runs(rows)
        width = len(F.DENSE_FEATURES)
        return _pread(self._dense, np.float64, first * width, (stop - first) * width).reshape(rows.size, width)


def _runs(rows):
    """`rows` as runs of consecutive row numbers: (first row, row after the last) of each run, in order."""
    begins = np.flatnonzero(np.diff(rows, prepend=-2) != 1)
    ends = np.append(begins[1:], rows.size)[:begins.size] - 1
    return rows[begins], rows[ends] + 1


def _pread(file, dtype, starts, counts):
    """Items starts[k] … starts[k] + counts[k] − 1 of a file of `dtype` items, one range after the other."""
    size = np.dtype(dtype).itemsize
    out = np.empty(int(counts.sum()), dtype=dtype)
    view, at = memoryview(out).cast("B"), 0
    for offset, length in zip((starts * size).tolist(), (counts * size).tolist()):
        while length:
            got = os.preadv(file.fileno(), [view[at:at + length]], offset)
            if not got:
                raise OSError(f"the reward training's feature file ended at byte {offset}")
            at, offset, length = at + got, offset + got, length - got
    return out


def featurise(model, data, progress):
    """Featurise every response of `data`, FEATURE_CHUNK texts at a time, into a FeatureFile; one step of
    progress per FEATURE_CHUNK responses."""
    feats = FeatureFile()
    try:
        done = steps = 0
        for texts, prompt_lengths, domains in data.read_responses(FEATURE_CHUNK):
            feats.append(model.featurize(texts, prompt_lengths, domains))
            done += len(texts)
            now = -(-done // FEATURE_CHUNK) if done >= data.n_responses else done // FEATURE_CHUNK
            progress(now - steps)
            steps = now
        if done != data.n_responses:
            raise ValueError(f"{data.n_responses - done} of the {data.n_responses} responses to train on were "
                             "not found: were pairs deleted while the model trained? Train again")
        return feats.finish()
    except BaseException:
        feats.close()
        raise


def _csr(batch):
    """One batch's hits ordered by text, then by order: (indptr, buckets)."""
    counts = [np.bincount(d, minlength=batch.n) for d in batch.ngram_docs]
    indptr = np.zeros(batch.n + 1, dtype=np.int64)
    np.cumsum(sum(counts), out=indptr[1:])
    out = np.empty(indptr[-1], dtype=np.int32)
    before = np.zeros(batch.n, dtype=np.int64)
    for docs, buckets, count in zip(batch.ngram_docs, batch.ngram_buckets, counts):
        first = np.cumsum(count) - count  # where each text's hits of this order begin
        out[indptr[:-1][docs] + before[docs] + np.arange(docs.size) - first[docs]] = buckets
        before += count
    return indptr, out


def train(data, params, progress=None):
    """Fit a LinearRewardModel on the train half of `data`; returns (model, metrics).
    `progress(steps)` is called as work is done; total_steps(data, params) says how many there are.
    The features go to temporary files in the system's temporary folder (TMPDIR), about 5 KB per
    response of 420 characters, freed when the training ends."""
    progress = progress or (lambda steps: None)
    model = LinearRewardModel.empty(params["bits"], params["max_chars"])
    test = split_by_prompt(data.prompt, params["test_fraction"], params["seed"])
    train_idx, test_idx = np.flatnonzero(~test), np.flatnonzero(test)
    if train_idx.size == 0 or test_idx.size == 0:
        raise ValueError(
            f"{data.prompt.size} pairs over {np.unique(data.prompt).size} prompts cannot be split "
            f"{1 - params['test_fraction']:.0%}/{params['test_fraction']:.0%} by prompt into two non-empty halves"
        )
    with featurise(model, data, progress) as feats:
        used = np.unique(np.concatenate([data.chosen[train_idx], data.rejected[train_idx]]))
        model.mean, model.std = _dense_stats(feats, used)
        model.std = np.maximum(model.std, 1e-6)
        _fit(model, feats, data.chosen[train_idx], data.rejected[train_idx], params, progress)
        rewards = _score_rows(model, feats, progress)
        metrics = evaluate(data, rewards, feats.lengths, train_idx, test_idx)
    return model, metrics


def _dense_stats(feats, used):
    """Mean and standard deviation of the dense features of the rows `used` (ascending), read READ_ROWS
    rows at a time. The sums run row after row as numpy's mean and std over one array do, so the figures
    are the same to the last bit whatever the chunk."""
    def total(transform):
        acc = None
        for start in range(0, used.size, READ_ROWS):
            block = transform(feats.dense(used[start:start + READ_ROWS]))
            acc = np.add.reduce(block if acc is None else np.vstack([acc, block]), axis=0)
        return acc

    mean = total(lambda block: block) / used.size

    def squared(block):
        block -= mean
        return np.multiply(block, block, out=block)

    return mean, np.sqrt(total(squared) / used.size)


def _epochs(n_train_pairs, params):
    batches = -(-n_train_pairs // params["batch_size"])
    return max(params["epochs"], -(-params["min_steps"] // max(batches, 1))), batches


def total_steps(n_responses, n_train_pairs, params):
    epochs, batches = _epochs(n_train_pairs, params)
    return -(-n_responses // FEATURE_CHUNK) + epochs * batches


def _fit(model, feats, chosen, rejected, params, progress):
    rng = np.random.default_rng(params["seed"])
    lr, decay, size = params["learning_rate"], params["weight_decay"], params["batch_size"]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    weights = [model.ngram, model.dense]
    m = [np.zeros_like(w) for w in weights]
    v = [np.zeros_like(w) for w in weights]
    step = 0
    for _epoch in range(_epochs(chosen.size, params)[0]):
        order = rng.permutation(chosen.size)
        for start in range(0, order.size, size):
            pick = order[start:start + size]
            b = pick.size
            rows = np.concatenate([chosen[pick], rejected[pick]])
            buckets, seg, scale, dense, dom = feats.read(rows)
            xr = model.standardise(dense)
            s = (np.bincount(seg, weights=model.ngram[buckets], minlength=rows.size) * scale
                 + xr @ model.dense[0] + np.einsum("ij,ij->i", xr, model.dense[1 + dom]))
            margin = s[:b] - s[b:]
            # d/dm log(1 + e^(−m)) = −σ(−m)
            g = -np.exp(-np.logaddexp(0.0, margin)) / b
            per_row = np.concatenate([g, -g])
            grad_ngram = np.bincount(buckets, weights=(per_row * scale)[seg], minlength=model.ngram.size)
            grad_dense = np.zeros_like(model.dense)
            grad_dense[0] = per_row @ xr
            np.add.at(grad_dense, 1 + dom, per_row[:, None] * xr)
            # The length and format weights are few and dense: a plain L2 penalty keeps a small
            # domain's weights from fitting its noise (decay alone barely acts in a few hundred steps).
            grad_dense += params["dense_l2"] * model.dense
            step += 1
            for w, grad, mi, vi in zip(weights, (grad_ngram, grad_dense), m, v):
                mi *= beta1
                mi += (1 - beta1) * grad
                vi *= beta2
                vi += (1 - beta2) * grad * grad
                w *= 1 - lr * decay
                w -= lr * (mi / (1 - beta1**step)) / (np.sqrt(vi / (1 - beta2**step)) + eps)
            progress(1)


def _score_rows(model, feats, progress):
    rewards = np.empty(feats.n)
    for start in range(0, feats.n, READ_ROWS):
        progress(0)  # no step of its own, but the job's lease is renewed
        rows = np.arange(start, min(start + READ_ROWS, feats.n))
        buckets, seg, scale, dense, dom = feats.read(rows)
        xr = model.standardise(dense)
        rewards[rows] = (np.bincount(seg, weights=model.ngram[buckets], minlength=rows.size) * scale
                         + xr @ model.dense[0] + np.einsum("ij,ij->i", xr, model.dense[1 + dom]))
    return rewards


def evaluate(data, rewards, lengths, train_idx, test_idx):
    """Held-out accuracy per domain and overall, with n, beside the two baselines. A tie is a miss."""
    margin = rewards[data.chosen] - rewards[data.rejected]
    longer = lengths[data.chosen] > lengths[data.rejected]

    def row(idx):
        n = int(idx.size)
        return {"n": n, "accuracy": _mean(margin[idx] > 0), "longer_wins": _mean(longer[idx]), "random": 0.5}

    by_domain = {}
    for d, name in enumerate(F.DOMAINS):
        idx = test_idx[data.domain[test_idx] == d]
        if idx.size:
            by_domain[name] = row(idx)
    return {
        "held_out": {"overall": row(test_idx), "by_domain": by_domain},
        "train": {"n": int(train_idx.size), "accuracy": _mean(margin[train_idx] > 0)},
        "test_prompts": int(np.unique(data.prompt[test_idx]).size),
        "train_prompts": int(np.unique(data.prompt[train_idx]).size),
    }


def _mean(mask):
    return round(float(np.mean(mask)), 4) if mask.size else None


def load_pairs(dataset, statuses):
    """The dataset's pairs with one of `statuses`, as arrays; the texts of the responses they use are read
    FEATURE_CHUNK at a time, in order of id, when the training featurises them."""
    # A swapped pair (a person found the rejected response better) trains the other way round.
    swapped = Q(status=Pair.Status.SWAPPED)
    rows = (Pair.objects.filter(dataset=dataset, status__in=statuses).order_by("pk")
            .annotate(better=Case(When(swapped, then=Column("rejected_id")), default=Column("chosen_id")),
                      worse=Case(When(swapped, then=Column("chosen_id")), default=Column("rejected_id")))
            .values_list("prompt_id", "domain", "better", "worse").iterator(chunk_size=PAIR_CHUNK))
    index = {d: i for i, d in enumerate(F.DOMAINS)}
    columns = [[], [], [], []]
    while chunk := list(itertools.islice(rows, PAIR_CHUNK)):
        prompt, domain, chosen, rejected = zip(*chunk)
        for column, values in zip(columns, (prompt, [index.get(d, index["other"]) for d in domain], chosen, rejected)):
            column.append(np.array(values, dtype=np.int64))
    if not columns[0]:
        return None
    prompt, domain, chosen, rejected = (np.concatenate(c) for c in columns)
    ids = np.unique(np.concatenate([chosen, rejected]))
    return PairData(prompt=prompt, domain=domain, chosen=np.searchsorted(ids, chosen),
                    rejected=np.searchsorted(ids, rejected), n_responses=int(ids.size),
                    read_responses=lambda chunk: _read_responses(ids, chunk))


def _read_responses(ids, chunk):
    """(texts, prompt lengths, domains) of the responses `ids` (ascending), `chunk` at a time; a response
    deleted meanwhile is missing from its chunk, which the featurising counts."""
    with connection.cursor() as cursor:
        for start in range(0, ids.size, chunk):
            cursor.execute(
                """SELECT r.text, length(p.query), p.domain FROM annotation_response r
                   JOIN annotation_prompt p ON p.id = r.prompt_id WHERE r.id = ANY(%s) ORDER BY r.id""",
                [ids[start:start + chunk].tolist()],
            )
            rows = cursor.fetchall()
            if len(rows) < min(chunk, ids.size - start):
                raise ValueError(f"{min(chunk, ids.size - start) - len(rows)} of the responses to train on were "
                                 "deleted while the model trained; train again")
            texts, prompt_lengths, domains = zip(*rows)
            yield list(texts), np.array(prompt_lengths, dtype=np.float64), list(domains)


def choose_statuses(dataset, requested):
    """The statuses to train on and a notice when the default had to fall back."""
    if requested:
        return list(requested), ""
    decided = [Pair.Status.KEPT, Pair.Status.SWAPPED]
    if Pair.objects.filter(dataset=dataset, status__in=decided).exists():
        return decided, ""
    return [Pair.Status.PENDING, *decided], "no kept pairs: trained on pending pairs instead"


@job_kind("train_reward_model", label=pgettext_lazy("job kind", "reward model training"), unit="steps", counts={
    "train_pairs": gettext_lazy("Training pairs"),
    "test_pairs": gettext_lazy("Held-out pairs"),
    "held_out_accuracy": gettext_lazy("Held-out accuracy"),
    "longer_wins": gettext_lazy("Held-out accuracy of “the longer wins”"),
})
def run_training(ctx: JobContext):
    params = ctx.params
    dataset = Dataset.objects.get(pk=ctx.job.dataset_id)
    statuses, notice = choose_statuses(dataset, params.get("statuses"))
    data = load_pairs(dataset, statuses)
    if data is None:
        raise JobFailed(f"dataset {dataset.name!r} has no pairs with status {' or '.join(statuses)} to train on")
    n_train = int((~split_by_prompt(data.prompt, params["test_fraction"], params["seed"])).sum())
    ctx.set_total(total_steps(data.n_responses, n_train, params) + 1)
    ctx.job.done = 0
    state = {"pending": 0, "at": time.monotonic()}

    def progress(steps):
        state["pending"] += steps
        if time.monotonic() - state["at"] >= 1.0:
            with transaction.atomic():
                ctx.commit(done=state["pending"])
            state.update(pending=0, at=time.monotonic())

    try:
        model, metrics = train(data, params, progress)
    except ValueError as exc:
        raise JobFailed(str(exc)) from None
    metrics.update(statuses=statuses, notice=notice, dataset=dataset.name,
                   test_fraction=params["test_fraction"], seed=params["seed"])
    with transaction.atomic():
        reward_model = _save(model, metrics, params, dataset, ctx.job.created_by)
        try:
            overall = metrics["held_out"]["overall"]
            ctx.commit(done=state["pending"] + 1, cursor={"reward_model": reward_model.pk},
                       counts={"train_pairs": metrics["train"]["n"], "test_pairs": overall["n"],
                               "held_out_accuracy": overall["accuracy"], "longer_wins": overall["longer_wins"]})
        except Exception:
            model_path(reward_model.name, reward_model.version).unlink(missing_ok=True)
            raise


def _save(model, metrics, params, dataset, user):
    name = params["name"]
    with connection.cursor() as cursor:
        # Two trainings of one name must not take the same version number.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"reward_model:{name}"])
    version = (RewardModel.objects.filter(name=name).order_by("-version").values_list("version", flat=True)
               .first() or 0) + 1
    path = model_path(name, version)
    model.save(path)
    return RewardModel.objects.create(
        name=name, version=version, backend=RewardModel.Backend.BUILTIN, metrics=metrics,
        trained_on=dataset, created_by=user,
        config={"path": str(path.relative_to(path.parent.parent)), "bits": model.bits, "max_chars": model.max_chars,
                "featurizer": F.FEATURIZER_VERSION, "features": F.DENSE_FEATURES,
                "training": {k: params[k] for k in DEFAULTS}},
    )
