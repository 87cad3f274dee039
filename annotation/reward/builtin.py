"""The built-in reward model: hashed character n-grams plus length and format features, a linear
score, trained with the Bradley-Terry objective P(chosen ≻ rejected) = σ(r(x, chosen) − r(x, rejected)).

Weights live in a compressed .npz under MEDIA_ROOT/reward_models/; the RewardModel row's `config`
names the file and the feature settings it was trained with.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings

from . import features as F


@dataclass
class LinearRewardModel:
    bits: int = F.DEFAULT_BITS
    max_chars: int = F.DEFAULT_MAX_CHARS
    ngram: np.ndarray = None  # (2**bits,) weights of hashed n-grams
    dense: np.ndarray = None  # (1 + len(DOMAINS), len(DENSE_FEATURES)): shared row, then one per domain
    mean: np.ndarray = None  # standardisation of the dense features, from the training responses
    std: np.ndarray = None
    meta: dict = field(default_factory=dict)

    @classmethod
    def empty(cls, bits=F.DEFAULT_BITS, max_chars=F.DEFAULT_MAX_CHARS):
        n_dense = len(F.DENSE_FEATURES)
        return cls(bits, max_chars, np.zeros(2**bits), np.zeros((1 + len(F.DOMAINS), n_dense)),
                   np.zeros(n_dense), np.ones(n_dense))

    def featurize(self, texts, prompt_lengths, domains):
        return F.featurize(texts, prompt_lengths, domains, bits=self.bits, max_chars=self.max_chars)

    def standardise(self, dense):
        return (dense - self.mean) / self.std

    def score_batch(self, batch):
        """Rewards of a featurised batch of texts."""
        ngram = np.zeros(batch.n)
        for docs, buckets in zip(batch.ngram_docs, batch.ngram_buckets):
            ngram += np.bincount(docs, weights=self.ngram[buckets], minlength=batch.n)
        x = self.standardise(batch.dense)
        return ngram * batch.scale + x @ self.dense[0] + np.einsum("ij,ij->i", x, self.dense[1 + batch.domains])

    def score(self, texts, prompt_lengths, domains):
        return self.score_batch(self.featurize(texts, prompt_lengths, domains))

    def save(self, path):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            path, ngram=self.ngram.astype(np.float32), dense=self.dense, mean=self.mean, std=self.std,
            bits=self.bits, max_chars=self.max_chars, featurizer=F.FEATURIZER_VERSION,
        )

    @classmethod
    def load(cls, path):
        with np.load(path) as data:
            if int(data["featurizer"]) != F.FEATURIZER_VERSION:
                raise ValueError(f"{path}: made with featurizer version {int(data['featurizer'])}, "
                                 f"this build has version {F.FEATURIZER_VERSION}; train the model again")
            return cls(int(data["bits"]), int(data["max_chars"]), data["ngram"].astype(np.float64), data["dense"],
                       data["mean"], data["std"])


def model_path(name, version):
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return Path(settings.MEDIA_ROOT) / "reward_models" / f"{safe}-v{version}.npz"


_CACHE = {}


def load_for(reward_model):
    """The weights of a RewardModel row (cached per process: a row's file never changes)."""
    key = (reward_model.pk, reward_model.config.get("path"))
    if key not in _CACHE:
        path = Path(reward_model.config["path"])
        if not path.is_absolute():
            path = Path(settings.MEDIA_ROOT) / path
        _CACHE.clear()
        _CACHE[key] = LinearRewardModel.load(path)
    return _CACHE[key]
