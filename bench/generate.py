"""Write COIG-P-shaped preference data for the ingest benchmark.

    python bench/generate.py --pairs 1000000 --seed 1 [--zst] [--out FILE]

The shape follows the paper's statistics (PRODUCT.md): pairs and queries per domain in the
published proportions (1,006,946 pairs over 92,784 queries), each prompt with up to 15
responses that its pairs share, and Chinese text from a small vocabulary written for this file,
about 1 KB per JSONL line on average with a long tail to 20 KB. About 1 % of prompts are planted
near-duplicates of another prompt (punctuation changed, or one phrase replaced). The same seed
always gives the same file. Output goes to bench/out/ (git-ignored) in the sharegpt ranking format.
"""

import argparse
import math
import random
from itertools import combinations
from pathlib import Path

import orjson

OUT_DIR = Path(__file__).resolve().parent / "out"

# (domain label, pairs, queries) as published for COIG-P.
DOMAINS = [
    ("对话", 702_398, 37_323),
    ("数学", 155_872, 27_259),
    ("逻辑推理", 54_617, 8_816),
    ("代码", 40_213, 7_774),
    ("小说续写", 34_483, 6_682),
    ("角色扮演", 19_363, 4_930),
]
TOTAL_PAIRS = sum(p for _d, p, _q in DOMAINS)
MAX_RESPONSES = 15
NEAR_DUPLICATE_SHARE = 0.01

SUBJECTS = ["人工智能", "城市交通", "传统文化", "气候变化", "家庭教育", "健康饮食", "职业规划", "数据隐私", "乡村振兴",
            "新能源汽车", "古典诗词", "量子计算", "心理健康", "志愿服务", "短视频平台", "在线教育", "宇宙探索", "理财规划",
            "垃圾分类", "老年人照护", "中医药", "围棋", "高铁建设", "网络安全", "茶文化", "航天工程", "书法艺术", "校园生活"]
ASKS = ["请简要介绍一下{s}的基本概念", "你如何看待{s}对日常生活的影响", "能否从三个方面分析{s}的利与弊",
        "如果要向小学生解释{s}，应该怎么说", "请列举与{s}有关的五个常见误区", "{s}在未来十年可能会有哪些变化",
        "请写一段关于{s}的演讲开场白", "为什么越来越多的人开始关注{s}", "关于{s}，有哪些值得推荐的入门书籍"]
MATH = ["已知一个长方形的周长是{a}厘米，长比宽多{b}厘米，求它的面积", "解方程 {a}x + {b} = {c}，并写出检验过程",
        "一个数的{a}倍比它的一半多{b}，这个数是多少", "计算从1加到{a}的和，并说明使用的方法",
        "甲乙两人相距{a}千米，同时相向而行，速度分别为每小时{b}千米和{c}千米，几小时后相遇"]
LOGIC = ["有{a}个人参加比赛，每两人之间都要比赛一场，一共要比赛多少场", "如果所有的A都是B，有些B是C，能否推出有些A是C",
         "三个盒子分别贴着错误的标签，只能打开一个盒子看一眼，如何确定全部标签", "甲说乙在说谎，乙说丙在说谎，丙说甲和乙都在说谎，谁说了真话"]
CODE = ["用Python写一个函数，判断一个字符串是否是回文", "请实现一个快速排序算法，并分析它的时间复杂度",
        "如何用SQL查询每个部门工资最高的员工", "写一个JavaScript函数，对数组去重并保持原有顺序", "解释一下Python中的装饰器，并给出例子"]
NOVEL = ["请续写下面的故事：那天夜里，{s}的消息突然传遍了整个小镇", "以“雨停之后”为开头，续写一段三百字左右的故事",
         "续写：老人把那封信放回抽屉，望向窗外的{s}"]
ROLE = ["请你扮演一位经验丰富的{s}顾问，回答我接下来的问题", "假设你是一名古代的书生，请用文言文介绍一下{s}",
        "现在你是一家咖啡店的店员，请热情地向顾客推荐今天的新品"]
TEMPLATES = {"对话": ASKS, "数学": MATH, "逻辑推理": LOGIC, "代码": CODE, "小说续写": NOVEL, "角色扮演": ROLE}
OPENERS = ["首先", "其次", "另外", "总的来说", "从另一个角度看", "需要注意的是", "举个例子", "换句话说", "综上所述", "值得一提的是"]
CLAUSES = ["这个问题涉及多个方面的因素", "我们需要结合具体情况来分析", "相关研究表明这种做法是有效的", "这一点常常被人们忽视",
           "在实际操作中要循序渐进", "不同的人可能会有不同的看法", "可以参考权威机构发布的资料", "这样做能够提高整体效率",
           "它的历史可以追溯到很多年以前", "只有坚持下去才能看到效果", "这需要社会各界的共同努力", "答案并不是唯一的",
           "我们可以把它分成几个步骤来完成", "最关键的是理解背后的原理", "这种方法在很多场景中都适用", "结果往往出乎意料",
           "建议先从简单的情况入手", "具体数据还需要进一步核实", "这种现象在年轻人中尤为明显", "细节决定了最终的质量"]
PUNCT = ["，", "，", "，", "；", "。", "。", "！"]
SYSTEM = "你是一个乐于助人的中文助手，请认真、准确地回答用户的问题。"


def sentence(rng, subject):
    parts = [rng.choice(OPENERS)]
    for _ in range(rng.randint(2, 4)):
        clause = rng.choice(CLAUSES)
        parts.append(clause if rng.random() > 0.2 else f"{subject}{clause}")
        parts.append(rng.choice(PUNCT))
    parts[-1] = "。"
    return "".join(parts)


def text_of_length(rng, subject, chars):
    out, n = [], 0
    while n < chars:
        s = sentence(rng, subject)
        out.append(s)
        n += len(s)
    return "".join(out)


def response_length(rng):
    # Log-normal, median ~65 characters (~120 mean with the sentence overshoot), tail to 6,400 (≈ 19 KB).
    return int(min(6400, max(20, rng.lognormvariate(math.log(65), 1.0))))


def prompt_text(rng, domain, i):
    subject = rng.choice(SUBJECTS)
    template = rng.choice(TEMPLATES[domain])
    head = template.format(s=subject, a=rng.randint(2, 99), b=rng.randint(1, 50), c=rng.randint(10, 500))
    # A context sentence and a serial number keep 92k prompts distinct, as real queries are.
    tail = text_of_length(rng, subject, rng.randint(10, 60)) if rng.random() < 0.7 else ""
    return f"{head}？{tail}（编号{i}）", subject


def near_duplicate(rng, text):
    if rng.random() < 0.5:
        return text.replace("，", ",").replace("。", ".").replace("？", "?")
    clause = rng.choice(CLAUSES)
    for old in CLAUSES:
        if old in text and old != clause:
            return text.replace(old, clause, 1)
    return text + "谢谢"


def pairs_per_prompt(rng, n_prompts, n_pairs):
    """Split n_pairs over n_prompts, each between 1 and the most pairs 15 responses allow."""
    mean = n_pairs / n_prompts
    counts = [max(1, min(105, round(rng.expovariate(1 / mean)))) for _ in range(n_prompts)]
    diff = n_pairs - sum(counts)
    i = 0
    while diff:
        j = i % n_prompts
        step = 1 if diff > 0 else -1
        if 1 <= counts[j] + step <= 105:
            counts[j] += step
            diff -= step
        i += 1
    return counts


def records(n_pairs, seed):
    rng = random.Random(seed)
    scale = n_pairs / TOTAL_PAIRS
    domain_pairs = [max(1, round(p * scale)) for _d, p, _q in DOMAINS]
    domain_pairs[0] += n_pairs - sum(domain_pairs)
    serial = 0
    previous = []
    for (label, _p, queries), n in zip(DOMAINS, domain_pairs):
        n_prompts = max(1, min(n, round(queries * scale)))
        for count in pairs_per_prompt(rng, n_prompts, n):
            serial += 1
            if previous and rng.random() < NEAR_DUPLICATE_SHARE:
                query, subject = near_duplicate(rng, rng.choice(previous)[0]), rng.choice(SUBJECTS)
            else:
                query, subject = prompt_text(rng, label, serial)
            if len(previous) < 5000:
                previous.append((query, subject))
            k = min(MAX_RESPONSES, max(2, math.ceil((1 + math.sqrt(1 + 8 * count)) / 2) + rng.randint(0, 3)))
            responses = [text_of_length(rng, subject, response_length(rng)) for _ in range(k)]
            chosen_rejected = list(combinations(range(k), 2))
            rng.shuffle(chosen_rejected)
            conversations = [{"from": "human", "value": query}]
            if rng.random() < 0.1:
                conversations.insert(0, {"from": "system", "value": SYSTEM})
            for a, b in chosen_rejected[:count]:
                yield {
                    "domain": label,
                    "conversations": conversations,
                    "chosen": {"from": "gpt", "value": responses[a]},
                    "rejected": {"from": "gpt", "value": responses[b]},
                }


def default_path(n_pairs, seed, zst=False):
    return OUT_DIR / f"coigp_{n_pairs}_seed{seed}.jsonl{'.zst' if zst else ''}"


def generated_file(n_pairs, seed):
    """The generated file for (n_pairs, seed), written first if it is not on disk yet (in a process of
    its own, so that a benchmark's peak RSS is its own work's)."""
    import subprocess
    import sys

    path = default_path(n_pairs, seed)
    if not path.exists():
        subprocess.run([sys.executable, str(Path(__file__)), "--pairs", str(n_pairs), "--seed", str(seed),
                        "--out", str(path)], check=True)
    return path


def import_generated(dataset, n_pairs, seed):
    """Import the generated file into `dataset` with the import job, in this process, without the
    near-duplicate check and with the search-index job left for the caller; exits when it fails.
    Returns the import job and its seconds. Needs Django set up."""
    import sys
    import time

    from annotation import jobs
    from annotation.ingest.importer import import_params
    from annotation.models import Job

    params = import_params(str(generated_file(n_pairs, seed)))
    params["near_duplicates"] = False
    params["search_index"] = "caller"
    job = jobs.create_job("import", dataset=dataset, params=params, enqueue_it=False)
    started = time.perf_counter()
    if jobs.execute(job.pk) not in Job.COMPLETED:
        job.refresh_from_db()
        sys.exit(f"import failed: {job.error or jobs.failure_summary(job)}")
    return job, time.perf_counter() - started


def generate(n_pairs, seed, path, zst=False):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as raw:
        if zst:
            import zstandard

            out = zstandard.ZstdCompressor(level=3).stream_writer(raw)
        else:
            out = raw
        for record in records(n_pairs, seed):
            out.write(orjson.dumps(record) + b"\n")
        if zst:
            out.flush(zstandard.FLUSH_FRAME)
    tmp.rename(path)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--zst", action="store_true", help="compress with zstandard")
    parser.add_argument("--out", help="output file (default bench/out/coigp_<pairs>_seed<seed>.jsonl[.zst])")
    args = parser.parse_args()
    path = generate(args.pairs, args.seed, args.out or default_path(args.pairs, args.seed, args.zst), args.zst)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
