"""The text rules (cut off, empty, refusal, language): what review/text_checks.py reads in a response, and the
low-quality lists built on the stored readings. The texts are written for these tests: each pins one
defect, or one hard negative that a rule must leave alone."""

import re

import pytest
from django.utils import timezone

from annotation import jobs
from annotation.jobs import create_job
from annotation.models import Job, Pair
from review import quality_rules, text_checks
from review.models import ResponseTextCheck
from review.selections import REGISTRY
from review.text_checks import PromptReading, cut_off, read, refusal_score

from .pair_data import make_pair

EXPLAIN = "请介绍一下量子计算的基本原理。"
LONG_ANSWER = ("量子计算利用量子比特的叠加和纠缠来并行处理信息。与经典比特只能处于零或一不同，量子比特可以同时处于两者的叠加态，"
               "多个量子比特纠缠在一起后，一次操作就能作用于大量状态。")


def reading(text, query=EXPLAIN, system=""):
    return read(text, PromptReading.of(query, system))


def is_empty(r):
    return r.content == 0 or (r.content < REGISTRY["empty-or-truncated"].settings["min_content"] and not r.short_ok)


# ------------------------------------------------------------------------------------------------ cut off

@pytest.mark.parametrize("text,why", [
    # stopped in a running sentence: a long last line with clauses, no full stop
    (LONG_ANSWER + "\n\n不过目前的硬件仍然受制于退相干、噪声和纠错开销，距离在化学模拟和优化问题上全面超越经典计算机还需要", "sentence"),
    # cut in the middle of a Latin word, in a text whose lines end with full stops
    ("先安装依赖。\n再运行测试。\n最后执行 npm inst", "sentence"),
    # a list item cut short where the other items end theirs
    ("1. 把水烧开；\n2. 放入面条煮三分钟；\n3. 捞出后拌上", "sentence"),
    # the start of a Latin word the text wrote in full before
    ("可以用 Photoshop 或 GIMP 处理。\n\n推荐 Photosho", "word"),
    ("主要的编程范式包括面向对象（例如 Java 和", "bracket"),
    ("他回头说：“明天见，别忘了带", "bracket"),
    ("企(（事)业单位（包括", "bracket"),  # the doubled opener is closed; the last one is not
    ("设兔子有 $x$ 只，则鸡有 $35-x$ 只。\n\n根据脚数列方程：\n\n$$2x=22$$\n\n所", "sentence"),  # no sign-off after a colon
    ("1. 交易金额是多少？（槽：amount）\n2. 客户的等级是多少？（槽：tier）\n3. 是否退还了任何先前产生的费", "sentence"),
    ("示例如下：\n```python\nfor i in range(3):\n    print(i)", "fence"),
    ("方程的解为\n$$\nx = \\frac{-b \\pm \\sqrt{b^2", "formula"),
    ("由此得到 $x = \\frac{1}{2", "formula"),
    ("| 名称 | 价格 |\n|---|---|\n| 苹果 | 5", "table"),
    ("首先，", "punct"),
    ("原因有三：", "punct"),
    ("The algorithm first sorts the input by start time, then scans it once to merge the intervals that "
     "overlap, and finally returns the merged list, which", "sentence"),
])
def test_a_cut_off_text_is_read_as_cut(text, why):
    assert cut_off(text) == why


@pytest.mark.parametrize("text", [
    "下面是代码：\n```python\nprint('hi')\n```",  # ends with a closed code block
    "答案：C",  # a label and a short value
    "分析如上。\n\n置信度：85%",
    "北京",  # a one-line answer
    "岩里祐穂",
    "Dear Anna,\n\nThanks for the update. I will send the file tomorrow.\n\nBest regards,\nTom",  # a signature
    "您好：\n\n附件是本周的报告，请查收。\n\n此致\n敬礼",
    "1. Git\n2. Docker\n3. Kubernetes",  # a list whose items have no full stops
    "祝你考试顺利🎉",
    "int x = 1;",  # code ends its statements with a semicolon
    "先求和。\n所以答案是 42",  # a result
    "第一段说明了背景。\n\n---",  # a rule line
    "C.2023年上半年广东企(（事)业单位中长期贷款增加量",  # one bracket typed in both widths (AlignBench), closed
])
def test_a_complete_text_is_not_read_as_cut(text):
    assert cut_off(text) == ""


# ------------------------------------------------------------------------------------------------ empty

@pytest.mark.parametrize("text", ["嗯嗯", "N/A", "n/a  ", "（空）", "好的。", "……", "  ？？ ", "嗯，好的", "OK", "null"])
def test_placeholders_and_acknowledgements_have_no_content(text):
    assert reading(text).content == 0 and is_empty(reading(text))


@pytest.mark.parametrize("query,text", [
    ("23 - 16 = ?", "7"),
    ("下面哪一项是哺乳动物？A. 鲨鱼 B. 海豚 C. 金枪鱼 D. 章鱼", "B"),
    ("下列哪个字是形声字（）A：日B：河C：山D：木", "B"),
    ("地球是圆的吗？", "是"),
    ("用一个字形容你现在的心情。", "累"),
    ("请只回答数字：一周有几天？", "7"),
    ("判断这句话的情感，正面返回1，负面返回0：这家店的服务太差了。", "0"),
])
def test_a_short_answer_to_a_short_answer_question_is_not_empty(query, text):
    assert not is_empty(reading(text, query))


@pytest.mark.parametrize("text", ["是", "嗯", "7"])
def test_a_one_character_answer_to_an_open_request_is_empty(text):
    assert is_empty(reading(text, "写一篇关于秋天的短文，三百字左右。"))


def test_pictographs_are_content():
    assert not is_empty(reading("🍎🍌🍇", "用 emoji 表示三种水果"))


# ------------------------------------------------------------------------------------------------ refusal

@pytest.mark.parametrize("text", [
    "不好意思，这类问题我没办法回答。",
    "这个我真的帮不上忙，你可以问问专业律师。",
    "抱歉，该话题不便讨论，请谅解。",
    "恕我无法从命。",
    "作为一个AI语言模型，我不能对此发表个人看法。",
    "Sorry, I won't be able to write that for you.",
    "As an AI, I cannot share opinions on this topic.",
    "关于这件事，我选择不作评论，建议你查阅官方资料。",
])
def test_a_refusal_in_the_opening_sentences_scores_high(text):
    assert refusal_score(text) >= REGISTRY["refusal-chosen"].settings["min_score"]


@pytest.mark.parametrize("text", [
    "抱歉回复晚了！" + LONG_ANSWER,  # polite, then answers
    "对不起让你久等了，下面是完整的代码：\n```python\nprint(sum(range(10)))\n```",
    "很多人觉得“我不能失败”，其实失败是成长的一部分。",  # the words quoted
    "无可奉告这个说法常见于外交辞令，意思是不便透露。",  # the words mentioned
    "他摇摇头说自己无能为力，只能看着船远去。",  # someone else in a story
    "由于我们无法直接观测暗物质，科学家通过引力效应来推断它的存在。",  # a cause, not a refusal
    LONG_ANSWER + "\n\n抱歉，我无法提供更多细节。",  # far from the opening
    # a refusal that names the harm of a harmful request is the right answer, not a defect of the data
    "我不能帮你登录别人的账号，未经同意获取他人聊天记录属于侵犯隐私的违法行为。",
])
def test_an_answer_that_is_no_refusal_scores_low(text):
    assert refusal_score(text) < REGISTRY["refusal-chosen"].settings["min_score"]


# ------------------------------------------------------------------------------------------------ language

@pytest.mark.parametrize("text,language", [
    ("東京は日本の首都で、人口が最も多い都市です。多くの企業が本社を置いています。", "ja"),  # kanji and kana
    ("서울은 한국의 수도입니다. 인구가 가장 많은 도시이기도 합니다.", "ko"),
    ("Москва — столица России и крупнейший город страны по численности населения.", "ru"),
    ("The capital of France is Paris, which is also the largest city in the country.", "en"),
])
def test_an_answer_in_another_language_to_a_chinese_question_is_off(text, language):
    r = reading(text, "法国的首都是哪里？")
    assert r.language == language and r.off_language >= REGISTRY["non-chinese-answer"].settings["off_share"]


@pytest.mark.parametrize("query,text", [
    ("把这句话翻译成英文：我每天早上跑步。", "I go running every morning."),
    ("用英文写一封邮件，告诉同事会议改到周五。", "Hi Mark,\n\nThe meeting has been moved to Friday. See you there.\n\nBest,\nLi"),
    ("“谢谢”用日语怎么说？", "「ありがとうございます」と言います。"),
    ("推荐几个深度学习框架。", "推荐使用 PyTorch、TensorFlow 和 JAX 来训练模型，配合 CUDA 加速。"),  # Latin terms
    ("Python 怎么读文件？", "可以这样写：\n```python\n# open the file and read all of it\nwith open(path) as f:\n"
                          "    text = f.read()\n```\n这样就能读出全部内容。"),  # English inside code
    ("求 tan x 的导数。", "设 f(x) = sin(x)，g(x) = cos(x)，则 (tan x)' = 1/cos(x)^2。"),  # a formula
    ("What is the capital of France?", "The capital of France is Paris."),  # an English prompt
    ("请回复这封客户邮件：\n\nDear team, we have not received the invoice for last month. Could you send it "
     "again as soon as possible? Thank you for your help with this.", "Dear Sarah, thank you for your message. "
     "We will send the invoice again today."),  # the prompt quotes English to answer
    ("卡卡的第一个帽子戏法是哪一年？", "2006年4月9日，对切沃"),
])
def test_an_answer_in_a_language_the_prompt_allows_is_not_off(query, text):
    assert reading(text, query).off_language == 0


@pytest.mark.parametrize("query", ["请把文中的人名一律用英文大写字母代替，写一篇短文。", "我的英语老师让我写一篇关于春天的作文。"])
def test_a_prompt_that_names_a_language_for_something_else_expects_chinese(query):
    text = "Spring is the season when everything comes back to life and the days grow longer."
    assert reading(text, query).off_language == 1.0


@pytest.mark.parametrize("query", [
    "请把这句话翻译成中文：Good morning, everyone.",  # a translation into Chinese expects Chinese
    "下面是一段故事：艾米是一只会手语的大猩猩，她的手语被翻译成声音。请问艾米的画暗示了什么？",  # a passage tells of one
])
def test_a_translation_into_chinese_or_told_of_in_a_passage_expects_chinese(query):
    assert reading("서울은 한국의 수도입니다. 인구가 가장 많은 도시이기도 합니다.", query).off_language == 1.0
    assert reading("大家早上好。", query).off_language == 0


def test_a_prompt_that_names_one_language_allows_that_one_only():
    assert reading("Thank you very much for all of your help with this.", "“谢谢”用日语怎么说？").off_language == 1.0


# ------------------------------------------------------------------------------------------------ prose

PROSE_TEXTS = [
    "纯中文的回答，没有代码也没有链接。",
    "联系我们：service@example.com 或访问 https://example.com/help 获取帮助。",
    "运行 `pip install x` 后：\n```python\nprint('hi')\n```\n再看 www.python.org。",
    "公式 $E=mc^2$ 和 $$\\int_0^1 x\\,dx$$，以及 \\(a+b\\) 与 \\[c\\]。",
    "~~~\ncode\n~~~\n之后是正文，价格 $5 与 $6 之间。",
    "写邮件给张三（zhangsan@公司.com），说明 a@b.c-d@e.f 的情况。",
    "没有闭合的代码块：\n```\nfor i in range(3):",
]


@pytest.mark.parametrize("text", PROSE_TEXTS)
def test_prose_takes_out_what_the_whole_pattern_takes_out(text):
    # prose() compiles only the parts whose piece occurs in the text; the result is the whole pattern's
    whole = re.compile("|".join(part for _, part in text_checks._NOT_PROSE_PARTS), re.M | re.S)
    assert text_checks.prose(text) == whole.sub(" ", text)


def test_prose_leaves_code_addresses_and_formulas_out():
    out = text_checks.prose(PROSE_TEXTS[1] + PROSE_TEXTS[2] + PROSE_TEXTS[3])
    assert "@" not in out and "http" not in out and "print" not in out and "mc^2" not in out and "联系我们" in out


def test_scripts_count_characters_and_words():
    scripts = text_checks.Scripts.of("東京は日本の首都です。서울 Москва и Питер, the city of Paris 北京")
    assert (scripts.han, scripts.kana, scripts.hangul, scripts.cyrillic) == (8, 4, 2, 3)
    assert (scripts.latin, scripts.latin_long, scripts.latin_grammar) == (4, 4, 2)


# ------------------------------------------------------------------------------------------------ the lists

@pytest.fixture
def text_pairs(team):
    ds = team.dataset
    p = {
        "clean": make_pair(ds, EXPLAIN, LONG_ANSWER, "量子计算就是很快的电脑。"),
        "cut": make_pair(ds, EXPLAIN, LONG_ANSWER + "\n\n目前的量子计算机仍然受制于退相干，以及", "量子计算就是很快的电脑。"),
        "empty_rejected": make_pair(ds, EXPLAIN, LONG_ANSWER, "嗯嗯好的"),
        "short_correct": make_pair(ds, "17 + 25 = ?", "42", "答案是四十一。", domain="math"),
        "choice": make_pair(ds, "哪个是质数？A. 9 B. 11 C. 15 D. 21", "B", "C", domain="logic"),
        "refusal": make_pair(ds, EXPLAIN, "不好意思，这类问题我没办法回答。", "量子计算就是很快的电脑。"),
        "refusal_rejected": make_pair(ds, EXPLAIN, LONG_ANSWER, "不好意思，这类问题我没办法回答。"),
        "polite": make_pair(ds, EXPLAIN, "抱歉回复晚了！" + LONG_ANSWER, "量子计算就是很快的电脑。"),
        "japanese": make_pair(ds, EXPLAIN, "量子コンピュータは重ね合わせともつれを使って計算します。", LONG_ANSWER),
        "translation": make_pair(ds, "把这句话翻译成英文：我每天早上跑步。", "I go running every morning before work.",
                                 "我每天跑步。"),
        "code": make_pair(ds, "写一个打印一到三的 Python 循环。", "```python\nfor i in range(1, 4):\n    print(i)\n```",
                          "用循环。", domain="code"),
    }
    return team, p


EXPECTED = {"empty-or-truncated": {"cut", "empty_rejected"}, "refusal-chosen": {"refusal"},
            "non-chinese-answer": {"japanese"}}


def _selected(dataset, name, pairs):
    rule = REGISTRY[name]
    selected = set(rule.narrow(Pair.objects.filter(dataset=dataset), dataset, dict(rule.settings))
                   .values_list("pk", flat=True))
    return {key for key, pair in pairs.items() if pair.pk in selected}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_text_rule_lists_its_defects_and_none_of_the_hard_negatives(text_pairs, name):
    team, pairs = text_pairs
    assert _selected(team.dataset, name, pairs) == EXPECTED[name]


def test_the_count_job_reads_every_response_once_and_stores_the_lists(text_pairs):
    from review.models import SelectionMember

    team, pairs = text_pairs
    ds = team.dataset
    assert not ResponseTextCheck.objects.exists()
    assert jobs.execute(create_job("quality_counts", dataset=ds).pk) == "succeeded"
    responses = {pk for pair in pairs.values() for pk in (pair.chosen_id, pair.rejected_id)}
    assert set(ResponseTextCheck.objects.values_list("response_id", flat=True)) == responses
    assert set(ResponseTextCheck.objects.values_list("version", flat=True)) == {text_checks.VERSION}
    for name, keys in EXPECTED.items():
        stored = set(SelectionMember.objects.filter(dataset=ds, view=name).values_list("pair_id", flat=True))
        assert stored == {pairs[key].pk for key in keys}


def test_readings_of_an_older_version_are_read_again(text_pairs):
    team, pairs = text_pairs
    ds = team.dataset
    text_checks.read_unread(pairs["refusal"].dataset.responses.all())
    ResponseTextCheck.objects.filter(response_id=pairs["refusal"].chosen_id).update(
        version=text_checks.VERSION - 1, refusal=0.0)
    assert jobs.execute(create_job("quality_counts", dataset=ds).pk) == "succeeded"
    check = ResponseTextCheck.objects.get(response_id=pairs["refusal"].chosen_id)
    assert check.version == text_checks.VERSION and check.refusal >= 0.5
    assert _selected(ds, "refusal-chosen", pairs) == {"refusal"}


def test_a_pair_added_after_the_count_is_read_when_its_flags_are_asked_for(text_pairs):
    team, pairs = text_pairs
    ds = team.dataset
    assert jobs.execute(create_job("quality_counts", dataset=ds).pk) == "succeeded"
    late = make_pair(ds, EXPLAIN, "Quantum computers use superposition and entanglement to compute.", LONG_ANSWER)
    # an import job added it: the stored lists are stale, the pair's flags are read live
    Job.objects.create(kind="import", dataset=ds, status="succeeded", finished_at=timezone.now())
    assert not ResponseTextCheck.objects.filter(response_id=late.chosen_id).exists()
    assert [r.name for r in quality_rules.flags_of(late)] == ["non-chinese-answer"]
    assert ResponseTextCheck.objects.get(response_id=late.chosen_id).language == "en"


def test_a_list_reads_no_more_unread_texts_than_its_bound(text_pairs, monkeypatch):
    team, pairs = text_pairs
    monkeypatch.setattr(quality_rules, "READ_ON_LIST", 3)
    _selected(team.dataset, "refusal-chosen", pairs)
    assert ResponseTextCheck.objects.count() == 3


def test_settings_move_the_thresholds(text_pairs):
    team, pairs = text_pairs
    ds = team.dataset
    everything = Pair.objects.filter(dataset=ds)
    rule = REGISTRY["empty-or-truncated"]
    wide = set(rule.narrow(everything, ds, {"min_content": 10}).values_list("pk", flat=True))
    assert pairs["code"].pk in wide  # "用循环。" is short for what was asked ...
    assert pairs["short_correct"].pk not in wide and pairs["choice"].pk not in wide  # ... "42" and "B" are not
    assert REGISTRY["refusal-chosen"].narrow(everything, ds, {"min_score": 1.1}).count() == 0
    assert set(REGISTRY["non-chinese-answer"].narrow(everything, ds, {"off_share": 0.0}).values_list(
        "pk", flat=True)) == {pair.pk for pair in pairs.values()}
