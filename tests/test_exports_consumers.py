"""Exports read by their real consumers: Hugging Face `datasets` past its type-inference block (the
chunk size made small so that a few hundred pairs span many blocks), two export files in one
`data_files` list, the metadata columns through the card's `dataset_info.features`, CSV read as text,
and TRL's DPOTrainer and RewardTrainer on a tiny model built here. LLaMA-Factory 0.9.5 and OpenRLHF
0.11 do not install here (their pinned transformers, deepspeed and GPU wheels), so their entries and
flags are checked against the field names their documentation and loaders use."""

import json

import pytest
from django.core.management import call_command

from annotation.models import Dataset, Judge, Judgement, Pair, RewardModel, RewardScore
from review.exports import FORMATS
from review.exports.records import TRL_SEPARATOR
from review.exports.writers import JsonlWriter
from review.models import Export, Review

from . import hf_tiny
from .helpers import Team, write_jsonl

datasets = pytest.importorskip("datasets")
datasets.disable_progress_bars()

# The loader reads 10 MB blocks by default; 8 KiB blocks make the test's export span dozens of them.
BLOCK = 8 << 10
JSONL_FORMATS = [name for name, fmt in FORMATS.items() if fmt.writer is JsonlWriter]
EXTENSION = {"csv": ".csv", "parquet": ".parquet"}


def _pair(i, system=None, history=None, prompt=None, chosen=None):
    turns = []
    if system is not None:
        turns.append({"from": "system", "value": system})
    for query, answer in history or []:
        turns += [{"from": "human", "value": query}, {"from": "gpt", "value": answer}]
    turns.append({"from": "human", "value": prompt or f"第{i}个问题：天地玄黄，宇宙洪荒。" * 3})
    return {"domain": "对话", "conversations": turns,
            "chosen": {"from": "gpt", "value": chosen or f"好的回答{i}：日月盈昃，辰宿列张。" * 4},
            "rejected": {"from": "gpt", "value": f"差的回答{i}"}}


@pytest.fixture
def late_values(db, tmp_path):
    """300 plain single-turn pairs (no system prompt, no scores, no reviews), then pairs with a system
    prompt, earlier turns, judge scores, a reward margin, reviews and the texts "None" and "NA": every
    optional value first appears far past the first block."""
    rows = [_pair(i) for i in range(300)]
    rows += [_pair(300 + i, system="你是一位耐心的老师。") for i in range(5)]
    rows += [_pair(305, prompt="None", chosen="NA"), _pair(306, prompt="NA")]
    rows += [_pair(307 + i, history=[["一加一？", "二。"]]) for i in range(5)]
    call_command("import_pairs", str(write_jsonl(tmp_path / "late.jsonl", rows)), dataset="late", no_progress=True)
    dataset = Dataset.objects.get(name="late")
    late = list(Pair.objects.filter(dataset=dataset).order_by("-pk")[:8])
    judge = Judge.objects.create(name="glm-4")
    crm = RewardModel.objects.create(name="crm", version=1, backend="hf")
    team = Team.create("late-reviewers")
    for pair in late:
        Judgement.objects.create(response=pair.chosen, judge=judge, score=8, status="ok")
        Judgement.objects.create(response=pair.rejected, judge=judge, score=3, status="ok")
        RewardScore.objects.create(response=pair.chosen, reward_model=crm, reward=1.5)
        RewardScore.objects.create(response=pair.rejected, reward_model=crm, reward=-0.5)
        Pair.objects.filter(pk=pair.pk).update(chosen_score=8, rejected_score=3)
        Review.objects.create(pair=pair, reviewer=team.reviewer, verdict="chosen_better", note="对")
    return dataset


def export(tmp_path, fmt, *args, name=None):
    directory = tmp_path / (name or fmt)
    directory.mkdir()
    out = directory / f"pairs{EXTENSION.get(fmt, '.jsonl')}"
    call_command("export_pairs", "--dataset", "late", "--format", fmt, "--out", str(out), "--no-progress",
                 "--split", "0.8", *args)
    exp = Export.objects.latest("pk")
    files = [str(directory / f["name"]) for f in exp.files if f["kind"] == "data"]
    assert len(files) == 2
    if fmt not in EXTENSION:
        assert (directory / "pairs_train.jsonl").stat().st_size > 4 * BLOCK
    return directory, exp, files


def card_features(directory):
    """The features the card declares, read back the way `datasets` reads a dataset card."""
    from huggingface_hub import DatasetCard

    return datasets.Features._from_yaml_list(DatasetCard.load(directory / "README.md").data["dataset_info"]["features"])


@pytest.mark.parametrize("fmt", JSONL_FORMATS)
def test_a_jsonl_export_loads_by_type_inference_past_the_first_block_from_two_files(late_values, tmp_path, fmt):
    directory, exp, files = export(tmp_path, fmt)
    ds = datasets.load_dataset("json", data_files=files, split="train", chunksize=BLOCK,
                               cache_dir=str(tmp_path / "cache"))
    skipped = sum(exp.manifest["counts"]["skipped"].values())
    assert len(ds) == exp.manifest["counts"]["rows"] == 312 - skipped
    assert skipped == (5 if fmt in ("trl", "alpaca") else 0)
    assert ds.features == card_features(directory), "the inferred types are the ones the card declares"
    if fmt in ("sharegpt", "trl", "alpaca"):
        assert sum(1 for s in ds["system"] if s) == 5
    if fmt == "alpaca":
        assert "NA" in ds["chosen"] and "None" in ds["instruction"]


@pytest.mark.parametrize("fmt", JSONL_FORMATS)
def test_metadata_columns_load_with_the_features_of_the_card(late_values, tmp_path, fmt):
    directory, exp, files = export(tmp_path, fmt, "--with-meta")
    # Loading the folder reads README.md: its configs name the files, its features type the columns.
    ds = datasets.load_dataset(str(directory), chunksize=BLOCK, cache_dir=str(tmp_path / "cache"))
    assert sum(len(split) for split in ds.values()) == exp.manifest["counts"]["rows"]
    rows = list(ds["train"]) + list(ds["test"])
    scored = [r for r in rows if r["chosen_scores"]]
    assert scored and all(r["chosen_scores"] == [{"judge": "glm-4", "score": 8.0}] for r in scored)
    assert {r["reward_margin"] for r in scored} == {2.0} and all(r["review_notes"] == ["对"] for r in scored)
    assert any(r["reward_margin"] is None and r["review_verdicts"] == [] for r in rows)
    again = datasets.load_dataset("json", data_files=files, split="train", features=card_features(directory),
                                  chunksize=BLOCK, cache_dir=str(tmp_path / "cache2"))
    assert len(again) == len(rows)


def test_csv_read_as_text_keeps_empty_system_prompts_and_none_and_na_texts(late_values, tmp_path):
    directory, exp, files = export(tmp_path, "csv", "--with-meta", "--raw-csv")
    ds = datasets.load_dataset("csv", data_files=files, split="train", keep_default_na=False,
                               features=card_features(directory), cache_dir=str(tmp_path / "cache"))
    assert len(ds) == exp.manifest["counts"]["rows"] == 312
    assert None not in ds["system"] and None not in ds["history"] and "" in ds["system"]
    assert "None" in ds["prompt"] and "NA" in ds["chosen"]
    assert any(json.loads(h) == [{"role": "user", "content": "一加一？"}, {"role": "assistant", "content": "二。"}]
               for h in ds["history"] if h)
    card = (directory / "README.md").read_text(encoding="utf-8")
    assert "keep_default_na=False" in card


def test_parquet_loads_with_the_types_the_card_declares(late_values, tmp_path):
    directory, exp, files = export(tmp_path, "parquet", "--with-meta")
    ds = datasets.load_dataset("parquet", data_files=files, split="train", cache_dir=str(tmp_path / "cache"))
    assert len(ds) == exp.manifest["counts"]["rows"] == 312
    assert ds.features == card_features(directory)


def test_the_card_is_hub_ready_with_a_license_and_says_which_format_to_pick(late_values, tmp_path):
    from huggingface_hub import DatasetCard

    directory, exp, _ = export(tmp_path, "trl", "--license", "CC-BY-NC-4.0")
    card = DatasetCard.load(directory / "README.md")
    assert card.data.license == "cc-by-nc-4.0" and "license_name" not in card.data.to_dict()
    text = card.text
    assert "Which format for which trainer" in text and "trl-chat" in text
    assert "5 pairs have a system prompt" in text and exp.manifest["counts"]["unread_system_prompts"] == 5
    assert exp.manifest["consumers"]["loses"].startswith("5 pairs have a system prompt")
    with pytest.raises(Exception, match="license 'other'"):
        export(tmp_path, "trl", "--license", "other", name="other")


def test_openrlhf_flags_and_llama_factory_entries_name_the_exported_fields(late_values, tmp_path):
    # OpenRLHF >= 0.10.2 takes --data.prompt_key/--data.chosen_key/--data.rejected_key/--data.apply_chat_template.
    directory, exp, files = export(tmp_path, "openrlhf")
    rows = [json.loads(line) for line in open(files[0], encoding="utf-8")]
    code = "\n".join(s["code"] for s in exp.manifest["consumers"]["snippets"] if s["consumer"].startswith("OpenRLHF"))
    for flag, key in (("--data.prompt_key", "prompt"), ("--data.chosen_key", "chosen"), ("--data.rejected_key", "rejected")):
        assert f"{flag} {key}" in code and key in rows[0]
    assert "--data.apply_chat_template" in code and "--prompt_key" not in code.replace("--data.prompt_key", "")
    assert all(isinstance(r["prompt"], list) and r["chosen"][0]["role"] == "assistant" for r in rows)
    # LLaMA-Factory's dataset_info.json: columns map its names (messages/prompt/query/chosen/rejected/system) to ours.
    for fmt in ("sharegpt", "alpaca"):
        directory, exp, files = export(tmp_path, fmt, name=f"lf-{fmt}")
        info = json.loads((directory / "dataset_info.json").read_text())
        assert set(info) == {"late_train", "late_test"}
        row = json.loads(open(files[0], encoding="utf-8").readline())
        for entry in info.values():
            assert entry["ranking"] is True and entry["formatting"] == fmt
            assert set(entry["columns"]) <= {"messages", "prompt", "query", "chosen", "rejected", "system"}
            assert all(column in row for column in entry["columns"].values())
        assert json.dumps(info, indent=2, ensure_ascii=False) in (directory / "README.md").read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------- TRL

trl = pytest.importorskip("trl")


@pytest.fixture
def tiny(tmp_path):
    """hf_tiny's tokenizer (with its chat template) and reward model, and a causal LM of the same size."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    path = hf_tiny.build(tmp_path / "tiny")
    tokenizer = AutoTokenizer.from_pretrained(path)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    # Saved and loaded back: DPOTrainer builds its reference model from the model's path.
    LlamaForCausalLM(config).save_pretrained(tmp_path / "lm")
    return tokenizer, LlamaForCausalLM.from_pretrained(tmp_path / "lm"), path


def _args(cls, tmp_path):
    return cls(output_dir=str(tmp_path / "out"), max_steps=1, per_device_train_batch_size=4, report_to=[],
               use_cpu=True, save_strategy="no", max_length=256, logging_steps=1)


@pytest.mark.parametrize("fmt", ["trl-chat", "parquet"])
def test_trls_dpo_trainer_trains_on_a_conversational_export_with_its_system_prompts(late_values, tmp_path, tiny, fmt):
    from trl import DPOConfig, DPOTrainer

    tokenizer, model, _ = tiny
    _, _, files = export(tmp_path, fmt)
    ds = datasets.load_dataset("parquet" if fmt == "parquet" else "json", data_files=files, split="train",
                               cache_dir=str(tmp_path / "cache"))
    trainer = DPOTrainer(model=model, args=_args(DPOConfig, tmp_path), processing_class=tokenizer, train_dataset=ds)
    system = tokenizer.convert_tokens_to_ids("<|system|>")
    assert sum(1 for ids in trainer.train_dataset["prompt_ids"] if system in ids) == 5
    assert trainer.train().global_step == 1


def test_trls_dpo_trainer_reads_the_standard_export_with_the_separator_before_each_completion(late_values, tmp_path,
                                                                                              tiny):
    from trl import DPOConfig, DPOTrainer

    tokenizer, model, _ = tiny
    _, _, files = export(tmp_path, "trl")
    ds = datasets.load_dataset("json", data_files=files, split="train", cache_dir=str(tmp_path / "cache"))
    assert all(c.startswith(TRL_SEPARATOR) for c in ds["chosen"])
    trainer = DPOTrainer(model=model, args=_args(DPOConfig, tmp_path), processing_class=tokenizer, train_dataset=ds)
    newline = tokenizer.convert_tokens_to_ids(TRL_SEPARATOR)
    assert all(ids[0] == newline for ids in trainer.train_dataset["chosen_ids"])
    assert trainer.train().global_step == 1


def test_trls_reward_trainer_trains_on_the_openrlhf_export(late_values, tmp_path, tiny):
    from transformers import AutoModelForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    tokenizer, _, path = tiny
    _, _, files = export(tmp_path, "openrlhf")
    ds = datasets.load_dataset("json", data_files=files, split="train", cache_dir=str(tmp_path / "cache"))
    model = AutoModelForSequenceClassification.from_pretrained(path)
    trainer = RewardTrainer(model=model, args=_args(RewardConfig, tmp_path), processing_class=tokenizer,
                            train_dataset=ds)
    assert len(trainer.train_dataset) == len(ds) and trainer.train().global_step == 1


def test_the_export_form_says_what_each_format_is_for_and_refuses_license_other(team, client):
    from django.urls import reverse

    client.force_login(team.reviewer)
    page = client.get(reverse("dataset-detail", args=[team.dataset.pk])).content.decode()
    assert 'id="export-format-help"' in page and 'name="license"' in page
    assert "TRL and OpenRLHF do not read the system prompt" in page and "sharegpt keeps them" in page
    response = client.post(reverse("export-create", args=[team.dataset.pk]),
                           {"format": "trl-chat", "statuses": ["pending", "kept"], "license": "other"})
    assert response.status_code == 400 and "needs a license name and link" in response.content.decode()
    assert not Export.objects.exists()
