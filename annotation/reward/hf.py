"""Hugging Face sequence-classification reward models (COIG-P's CRM, Skywork-Reward, …).

The model is loaded with transformers from a local folder or a Hub id (`config["path"]`); each
response is scored as the model's single logit for the conversation [prompt turns…, assistant:
response] rendered with the tokenizer's own chat template, as CRBench's evaluator does. Responses
go through the model `batch_size` at a time, padded, in bfloat16 on CUDA when there is a GPU and
float32 on the CPU otherwise.

torch and transformers are an optional install (`requirements-hf.txt`): nothing here imports them
until a model of this backend is loaded, and a missing install is a clear error on the job.
"""

from dataclasses import dataclass

import numpy as np

DEFAULT_BATCH_SIZE = 8
DEFAULT_MAX_LENGTH = 4096


class HFUnavailable(RuntimeError):
    pass


def device_and_dtype(cuda_available):
    """Where to run and in which precision: bfloat16 on a GPU (what reward models of 8B are
    released and evaluated in, at half the memory), float32 on a CPU (bfloat16 matmuls are slow
    or missing on most CPUs and lose precision for nothing)."""
    return ("cuda", "bfloat16") if cuda_available else ("cpu", "float32")


def _import():
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise HFUnavailable(
            f"the Hugging Face backend needs torch and transformers ({exc.name} is not installed): "
            "pip install -r requirements-hf.txt -c constraints.txt"
        ) from None
    return torch, transformers


@dataclass
class HFRewardModel:
    model: object
    tokenizer: object
    device: str
    batch_size: int = DEFAULT_BATCH_SIZE
    max_length: int = DEFAULT_MAX_LENGTH

    @classmethod
    def load(cls, path, *, batch_size=DEFAULT_BATCH_SIZE, max_length=DEFAULT_MAX_LENGTH, cuda_available=None):
        torch, transformers = _import()
        if cuda_available is None:
            cuda_available = torch.cuda.is_available()
        device, dtype = device_and_dtype(cuda_available)
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(path)
            model = transformers.AutoModelForSequenceClassification.from_pretrained(
                path, dtype=getattr(torch, dtype))
        except (OSError, ValueError) as exc:
            raise HFUnavailable(f"could not load the reward model {path!r}: {exc}") from None
        if model.config.num_labels != 1:
            raise HFUnavailable(f"{path!r} has {model.config.num_labels} labels; a reward model has exactly one")
        if not tokenizer.chat_template:
            raise HFUnavailable(f"{path!r}: the tokenizer has no chat template to render the conversation with")
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        if model.config.pad_token_id is None:
            # The classifier reads the logit at the last token that is not padding.
            model.config.pad_token_id = tokenizer.pad_token_id
        model.to(device).eval()
        return cls(model, tokenizer, device, batch_size, max_length)

    def encode(self, conversations):
        """Token ids of each conversation, chat template applied (a list of lists of int)."""
        texts = [self.tokenizer.apply_chat_template(c, tokenize=False) for c in conversations]
        # The template writes the special tokens itself (BOS included): adding them again would double them.
        encoded = self.tokenizer(texts, add_special_tokens=False, truncation=True, max_length=self.max_length)
        return encoded["input_ids"]

    def score(self, conversations, on_batch=None):
        """The reward of each conversation (its last turn is the assistant's response), as float64.
        `on_batch()` is called before each batch (the job renews its lease there)."""
        import torch

        ids = self.encode(conversations)
        rewards = np.empty(len(ids))
        # Batches of similar length waste less compute on padding.
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        pad = self.tokenizer.pad_token_id
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                if on_batch is not None:
                    on_batch()
                rows = order[start:start + self.batch_size]
                width = max(len(ids[i]) for i in rows)
                batch = torch.full((len(rows), width), pad, dtype=torch.long)
                mask = torch.zeros((len(rows), width), dtype=torch.long)
                for k, i in enumerate(rows):
                    batch[k, :len(ids[i])] = torch.tensor(ids[i], dtype=torch.long)
                    mask[k, :len(ids[i])] = 1
                logits = self.model(input_ids=batch.to(self.device), attention_mask=mask.to(self.device)).logits
                rewards[rows] = logits[:, 0].float().cpu().numpy()
        return rewards


_CACHE = {}


def load_for(reward_model):
    """The loaded model of a RewardModel row of the hf backend (one per process: models are large)."""
    config = reward_model.config
    key = (reward_model.pk, config.get("path"), config.get("batch_size"), config.get("max_length"))
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = HFRewardModel.load(
            config["path"], batch_size=int(config.get("batch_size") or DEFAULT_BATCH_SIZE),
            max_length=int(config.get("max_length") or DEFAULT_MAX_LENGTH))
    return _CACHE[key]
