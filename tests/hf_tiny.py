"""A tiny randomly initialised Hugging Face reward model and tokenizer, built and saved by the test
itself (nothing is downloaded): a 2-layer Llama with hidden size 32 and one label, a character-level
tokenizer over a small vocabulary, and a chat template of our own. Used by tests/test_reward_hf.py and
bench/reward.py."""

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
CHARS = ("天地玄黄宇宙洪荒日月盈昃辰宿列张寒来暑往秋收冬藏闰余成岁律吕调阳云腾致雨露结为霜金生丽水玉出昆冈"
         "综上所述可知我真的不知道第题请回答这个问题好差的是一二三四五六七八九十"
         "0123456789abcdefghijklmnopqrstuvwxyz ，。：；！？、（）\n.,:;!?()-*#`$")
# The conversation rendered the way chat models are: BOS, then each turn as <|role|>content<|end|>, then EOS.
CHAT_TEMPLATE = ("<s>{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}</s>")


def vocabulary():
    tokens = SPECIALS + sorted(set(CHARS) - set(SPECIALS))
    return {t: i for i, t in enumerate(tokens)}


def build(path, seed=0, layers=2, hidden=32):
    """Save a tiny LlamaForSequenceClassification (num_labels=1) and its tokenizer to `path`."""
    import torch
    from tokenizers import AddedToken, Regex, Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForSequenceClassification, PreTrainedTokenizerFast

    vocab = vocabulary()
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                        pad_token="<pad>")
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(path)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=4096, num_labels=1, pad_token_id=vocab["<pad>"],
                         bos_token_id=vocab["<s>"], eos_token_id=vocab["</s>"])
    model = LlamaForSequenceClassification(config)
    with torch.no_grad():
        # The default init of the score head (std 0.02) gives rewards too close together to order.
        model.score.weight.normal_(0, 1.0)
    model.save_pretrained(path)
    return path


def expected_ids(messages):
    """The token ids the chat template must produce, computed here without the tokenizer."""
    vocab = vocabulary()
    ids = [vocab["<s>"]]
    for m in messages:
        ids.append(vocab[f"<|{m['role']}|>"])
        ids += [vocab.get(c, vocab["<unk>"]) for c in m["content"]]
        ids.append(vocab["<|end|>"])
    return ids + [vocab["</s>"]]


def direct_rewards(path, conversations):
    """The model's logit for each conversation by a plain forward pass, one at a time, no padding."""
    import torch
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32).eval()
    with torch.inference_mode():
        return [float(model(input_ids=torch.tensor([expected_ids(m)])).logits[0, 0]) for m in conversations]
