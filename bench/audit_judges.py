"""The loopback judge panel of the audit benchmark: four simulated LLM judges behind one OpenAI-compatible
server on 127.0.0.1 (tests/llm_server.py's LLMServer with a responder), answering from the benchmark's
truth (bench/audit_data.py, JUDGES):

- scoring requests (the scoring job's rubric prompt, "【待评估的回答】"): the response's perceived quality,
  plus the judge's offset, plus its self-preference on responses of its own model family, plus noise,
  rounded to a whole score 1-10, in one of the answer shapes the score parser reads; a fluent wrong answer
  is scored at its real quality by a judge that catches the error; one judge sometimes answers with no
  score at all (a parse error for the app);
- pairwise requests (the reward benchmark's "【回答A】 / 【回答B】" prompt): the answer the judge finds better
  on real quality (catching a fluent wrong answer more often side by side), or "A" for a judge with a
  position bias.

The judge is told apart by the request's `model`; every draw is seeded by (seed, judge, prompt, response),
so an answer does not depend on the order requests arrive in, and a cached answer is the answer.
A request for a response the truth does not know gets a 400 (the job fails saying so): a benchmark that
scored made-up numbers would measure nothing.
"""

import hashlib
import random
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from audit_data import JUDGES  # noqa: E402
from tests.llm_server import LLMServer, Reply  # noqa: E402

SCORE_MARK = "\n\n【待评估的回答】\n"
PAIR_A, PAIR_B = "\n\n【回答A】\n", "\n\n【回答B】\n"
SCORE_SHAPES = ["分析：{analysis}\n总体评分：[{score}]", "{analysis}\n\n[[{score}]]", "【分析】{analysis}\n总体评分：【{score}】",
                "分析：{analysis}\n\n综合来看，总体评分：{score}"]
ANALYSES = [(8, "回答准确、完整，条理清晰，很好地满足了用户的需求。"), (5, "回答基本切题，但不够全面，部分细节有待改进。"),
            (1, "回答存在明显问题，未能满足用户的需求。")]
NO_SCORE = ["分析：回答内容基本切题，但有若干不足之处，整体表现一般。", "这个回答还可以，不过有些地方可以写得更清楚。",
            "回答的结构比较清楚，内容也大体正确。"]


def text_key(text):
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def response_key(prompt_part, text):
    """How the panel finds a response: its prompt as the judge reads it (annotation.rubrics
    .conversation_parts, joined by blank lines) and its text."""
    return text_key(prompt_part), text_key(text)


class Panel:
    """`truth`: {response_key: response dict of truth.json (perceived, real, model, fluent_wrong, id)}."""

    def __init__(self, truth, seed):
        self.truth = truth
        self.seed = seed
        self.judges = {j.model: j for j in JUDGES}
        self.answered = {"score": 0, "no_score": 0, "pairwise": 0}

    def _rng(self, judge, *parts):
        material = b"|".join([str(self.seed).encode(), judge.name.encode(), *parts])
        return random.Random(hashlib.blake2b(material, digest_size=8).digest())

    def responder(self, path, body):
        request = orjson.loads(body)
        judge = self.judges.get(request.get("model"))
        if judge is None:
            return Reply(status=404, error=f"The model `{request.get('model')}` does not exist.")
        content = request["messages"][-1]["content"]
        if PAIR_A in content:
            return self._pairwise(judge, content)
        prompt_part, mark, text = content.partition(SCORE_MARK)
        if not mark:
            return Reply(status=400, error="neither a scoring nor a pairwise request")
        key = response_key(prompt_part, text)
        truth = self.truth.get(key)
        if truth is None:
            return Reply(status=400, error="the benchmark's truth has no such response")
        return self._score(judge, key, truth)

    def seen_quality(self, judge, rng, truth, catch):
        """What this judge sees: the real quality of a fluent wrong answer it catches, else the perceived."""
        if truth["fluent_wrong"] and rng.random() < catch:
            return truth["real"]
        return truth["perceived"]

    def _score(self, judge, key, truth):
        rng = self._rng(judge, *key)
        if rng.random() < judge.no_score:
            self.answered["no_score"] += 1
            return Reply(content=rng.choice(NO_SCORE))
        quality = self.seen_quality(judge, rng, truth, judge.catch)
        own = judge.self_bias if judge.family and judge.family in truth["model"].lower() else 0.0
        score = min(10, max(1, round(quality + judge.offset + own + rng.gauss(0, judge.noise))))
        analysis = next(text for floor, text in ANALYSES if score >= floor)
        self.answered["score"] += 1
        return Reply(content=rng.choice(SCORE_SHAPES).format(analysis=analysis, score=score))

    def _pairwise(self, judge, content):
        prompt_part, _, rest = content.partition(PAIR_A)
        first, _, second = rest.partition(PAIR_B)
        keys = [response_key(prompt_part, first), response_key(prompt_part, second)]
        truths = [self.truth.get(k) for k in keys]
        if None in truths:
            return Reply(status=400, error="the benchmark's truth has no such response")
        rng = self._rng(judge, b"pairwise", *keys[0], *keys[1])
        self.answered["pairwise"] += 1
        if rng.random() < judge.position_bias:
            verdict = "A"
        else:
            seen = [self.seen_quality(judge, rng, t, judge.pairwise_catch) + rng.gauss(0, judge.noise / 2)
                    for t in truths]
            verdict = "A" if seen[0] >= seen[1] else "B"
        return Reply(content=f"比较分析：两个回答各有侧重，综合正确性与完整性判断。\n[[{verdict}]]")


def start_panel(truth, seed, api_key):
    """The panel's server, started (stop it with .stop())."""
    panel = Panel(truth, seed)
    server = LLMServer(api_key=api_key, responder=panel.responder, record=False).start()
    server.panel = panel
    return server
