"""Small builders for tests: a team (admin, reviewer, viewer, outsider) and pair data."""

import json
import random
from dataclasses import dataclass

from django.contrib.auth import get_user_model

from annotation.models import Dataset, Membership, Role

PASSWORD = "correct horse battery staple"


@dataclass
class Team:
    dataset: Dataset
    admin: object
    reviewer: object
    viewer: object
    outsider: object

    @classmethod
    def create(cls, name="team dataset"):
        User = get_user_model()
        users = {r: User.objects.create_user(username=f"{r}-{name}".replace(" ", "-"), password=PASSWORD)
                 for r in ("admin", "reviewer", "viewer", "outsider")}
        dataset = Dataset.objects.create(name=name)
        for role in (Role.ADMIN, Role.REVIEWER, Role.VIEWER):
            Membership.objects.create(dataset=dataset, user=users[role.value], role=role)
        return cls(dataset, users["admin"], users["reviewer"], users["viewer"], users["outsider"])


DOMAINS_ZH = ["对话", "代码", "数学", "逻辑推理", "小说续写", "角色扮演"]


def sharegpt_line(i, domain="对话", system=None):
    conversations = [{"from": "system", "value": system}] if system else []
    conversations.append({"from": "human", "value": f"第{i}个问题：请解释一下这个概念。"})
    return {
        "domain": domain,
        "conversations": conversations,
        "chosen": {"from": "gpt", "value": f"第{i}个回答：这是一个详细、准确的解释。"},
        "rejected": {"from": "gpt", "value": f"第{i}个回答：不知道。"},
    }


def write_jsonl(path, records):
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n")
    return path


def generated_pairs(n, seed=0, pairs_per_prompt=4):
    """n sharegpt lines over n // pairs_per_prompt prompts, domains cycling, deterministic."""
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        p = i // pairs_per_prompt
        domain = DOMAINS_ZH[p % len(DOMAINS_ZH)]
        lines.append({
            "domain": domain,
            "conversations": [{"from": "human", "value": f"问题{p}：{random.Random(p * 7919 + seed).random():.6f}"}],
            "chosen": {"from": "gpt", "value": f"好的回答 {i} {rng.random():.6f}"},
            "rejected": {"from": "gpt", "value": f"差的回答 {i} {rng.random():.6f}"},
        })
    return lines


def log_in(page, live_server, user):
    """Sign `user` (whose password is PASSWORD) in through the login page of a live server, in a browser page."""
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
