"""The Simplified Chinese (zh-Hans) UI: the catalogue is complete and compiled, translations keep
their placeholders, and the pages speak Chinese when the user picks it (and English again after).

The catalogue checks read locale/zh_Hans/LC_MESSAGES/django.po with the small parser below (no
polib dependency). A string that the code marks for translation but nobody translated yet fails
`test_every_entry_is_translated_and_not_fuzzy` once `make messages` has added it to the .po, and
`test_the_catalogue_holds_every_string_the_code_marks_for_translation` finds it without that step
(where GNU gettext is installed)."""

import ast
import gettext
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.core.management import call_command

from annotation.models import Job

from .helpers import Team, sharegpt_line, write_jsonl

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES"
PO = MESSAGES / "django.po"
MO = MESSAGES / "django.mo"
# The folders `make messages` reads (its --ignore list leaves out the rest of the checkout).
SOURCE_DIRS = ("annotation", "review", "api", "coigp_web", "templates", "static")


# --- a small .po reader ---------------------------------------------------------------------------

@dataclass
class Entry:
    line: int
    msgid: str = ""
    msgctxt: str | None = None
    msgid_plural: str | None = None
    msgstr: dict = field(default_factory=dict)  # form index (0 for a singular entry) → text
    flags: set = field(default_factory=set)

    def __str__(self):
        ctx = f"[{self.msgctxt}] " if self.msgctxt is not None else ""
        return f"line {self.line}: {ctx}{self.msgid!r}"


def read_po(path):
    """Entries of a .po file, the header (msgid "") first; obsolete (#~) entries are left out."""
    entries, entry, current = [], None, None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#~"):
            current = None
            continue
        if entry is None or (current is None and not line.startswith('"')) and entry.msgstr:
            entry = Entry(line=number)
            entries.append(entry)
        if line.startswith("#,"):
            entry.flags.update(flag.strip() for flag in line[2:].split(","))
            continue
        if line.startswith("#"):
            continue
        match = re.fullmatch(r'(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+(".*")', line)
        if match:
            keyword, index, text = match.groups()
            current = ("msgstr", int(index or 0)) if keyword.startswith("msgstr") else (keyword, None)
            _append(entry, current, "", fresh=True)
            line = text
        if not line.startswith('"') or current is None:
            raise AssertionError(f"{path}:{number}: cannot read {raw!r}")
        _append(entry, current, ast.literal_eval(line))
    return entries


def _append(entry, current, text, fresh=False):
    keyword, index = current
    if keyword == "msgstr":
        entry.msgstr[index] = ("" if fresh else entry.msgstr.get(index, "")) + text
    else:
        setattr(entry, keyword, ("" if fresh else getattr(entry, keyword) or "") + text)


def po_entries(path=PO):
    entries = read_po(path)
    assert entries and entries[0].msgid == "", f"{path} starts without its header entry"
    return entries[0], entries[1:]


def header_fields(header):
    return dict(line.split(": ", 1) for line in header.msgstr[0].splitlines() if ": " in line)


# --- the catalogue ------------------------------------------------------------------------------

def untranslated(entries):
    return [str(e) for e in entries if "fuzzy" in e.flags or not e.msgstr or not all(e.msgstr.values())]


def test_every_entry_is_translated_and_not_fuzzy():
    header, entries = po_entries()
    assert len(entries) > 300, "the catalogue lost its entries"
    missing = untranslated(entries)
    assert not missing, (
        f"{len(missing)} entries of {PO.relative_to(ROOT)} are untranslated or fuzzy (translate them, with the "
        "terms of the glossary, then `make messages`):\n" + "\n".join(missing)
    )
    assert "fuzzy" not in header.flags


def test_the_catalogue_is_chinese_with_a_single_plural_form():
    header, entries = po_entries()
    fields = header_fields(header)
    assert fields["Language"] == "zh_Hans"
    assert fields["Content-Type"] == "text/plain; charset=UTF-8"
    assert fields["Plural-Forms"].replace(" ", "") == "nplurals=1;plural=0;"
    plurals = [e for e in entries if e.msgid_plural is not None]
    assert plurals, "the templates use blocktranslate count; their entries should be here"
    assert [str(e) for e in plurals if set(e.msgstr) != {0}] == []
    assert [str(e) for e in entries if e.msgid_plural is None and set(e.msgstr) != {0}] == []


def test_source_strings_have_no_line_breaks_or_surrounding_spaces():
    # A multi-line {% blocktranslate %} without `trimmed` puts the template's indentation into the
    # msgid, and translators then have to copy it exactly.
    _, entries = po_entries()
    ragged = [str(e) for e in entries for text in (e.msgid, e.msgid_plural or "")
              if text and ("\n" in text or text != text.strip())]
    assert not ragged, "use {% blocktranslate trimmed %} for these:\n" + "\n".join(ragged)


def test_the_compiled_catalogue_matches_the_po():
    # The .mo is committed so that a machine without GNU gettext serves Chinese; an edit of the .po
    # without `make messages` (compilemessages) leaves the .mo behind and fails here.
    header, entries = po_entries()
    with open(MO, "rb") as f:
        compiled = gettext.GNUTranslations(f)
    # msgfmt keeps the header but for its POT-Creation-Date.
    expected = {k.lower(): v for k, v in header_fields(header).items() if k != "POT-Creation-Date"}
    assert compiled.info() == expected
    stale = []
    for e in entries:
        if e.msgid_plural is not None:
            for n in (1, 2, 5):
                got = compiled.npgettext(e.msgctxt, e.msgid, e.msgid_plural, n) if e.msgctxt else \
                    compiled.ngettext(e.msgid, e.msgid_plural, n)
                if got != e.msgstr[0]:
                    stale.append(f"{e} (n={n}): .mo has {got!r}")
        else:
            got = compiled.pgettext(e.msgctxt, e.msgid) if e.msgctxt is not None else compiled.gettext(e.msgid)
            if got != e.msgstr[0]:
                stale.append(f"{e}: .mo has {got!r}, .po has {e.msgstr[0]!r}")
    assert not stale, "django.mo is older than django.po; run `make messages`:\n" + "\n".join(stale)


PRINTF_NAMED = re.compile(r"%\((\w+)\)[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]")
PRINTF_POSITIONAL = re.compile(r"%(?!\()[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa%]")
BRACES = re.compile(r"\{\{|\}\}|\{[^{}]*\}")
ENTITY = re.compile(r"&(?:#\d+|#x[0-9a-fA-F]+|\w+);")
TAG = re.compile(r"</?[a-zA-Z][^>]*>")


def placeholders(text):
    """What must survive translation: named printf fields (a set), positional printf and str.format
    fields in order, HTML entities and tags."""
    return {
        "named": set(PRINTF_NAMED.findall(text)),
        "positional": PRINTF_POSITIONAL.findall(PRINTF_NAMED.sub("", text)),
        "braces": BRACES.findall(text),
        "entities": Counter(ENTITY.findall(text)),
        "tags": Counter(TAG.findall(text)),
    }


def test_the_placeholder_reader_sees_every_kind():
    found = placeholders('%(n)d of %(total)s, %s and %d%% {} {0} &gt; <a href="x">')
    assert found["named"] == {"n", "total"}
    assert found["positional"] == ["%s", "%d", "%%"]
    assert found["braces"] == ["{}", "{0}"]
    assert found["entities"] == Counter({"&gt;": 1}) and found["tags"] == Counter({'<a href="x">': 1})


def test_translations_keep_the_placeholders_tags_and_entities_of_their_source():
    _, entries = po_entries()
    wrong = []
    for e in entries:
        source = placeholders(e.msgid)
        if e.msgid_plural is not None:
            # Chinese has one form, used for every count: it follows the plural source, which names
            # the count even where the singular one leaves it out.
            plural = placeholders(e.msgid_plural)
            source = {key: plural[key] if key != "named" else source[key] | plural[key] for key in plural}
        for index, text in e.msgstr.items():
            if text and placeholders(text) != source:
                wrong.append(f"{e} msgstr[{index}] {text!r}")
    assert not wrong, "translations whose placeholders differ from the source:\n" + "\n".join(wrong)


def test_the_catalogue_holds_every_string_the_code_marks_for_translation(tmp_path):
    """Extract the strings of a copy of the source (as `make messages` does) and merge them into a
    copy of the committed .po: nothing may come out new, untranslated or fuzzy."""
    tools = ("xgettext", "msguniq", "msgmerge", "msgattrib")
    if not all(shutil.which(tool) for tool in tools):
        if os.environ.get("REQUIRE_GETTEXT"):
            pytest.fail("REQUIRE_GETTEXT is set but GNU gettext is not installed (apt-get install gettext)")
        pytest.skip("GNU gettext is not installed (apt-get install gettext); the committed .mo still serves Chinese")
    copy = tmp_path / "src"
    copy.mkdir()
    shutil.copy2(ROOT / "manage.py", copy)
    for name in SOURCE_DIRS:
        if (ROOT / name).exists():
            shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "locale", copy / "locale")
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="coigp_web.settings", COIGP_VAR_DIR=str(tmp_path / "var"),
               DJANGO_SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "makemessages"))
    result = subprocess.run([sys.executable, "manage.py", "makemessages", "-l", "zh_Hans"], cwd=copy, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    _, fresh = po_entries(copy / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po")
    committed = {(e.msgctxt, e.msgid) for e in po_entries()[1]}
    new = [str(e) for e in fresh if (e.msgctxt, e.msgid) not in committed]
    assert not new, (
        f"{len(new)} strings marked for translation are not in {PO.relative_to(ROOT)}; run `make messages`, "
        "translate them (see the glossary), and run `make messages` again:\n" + "\n".join(new)
    )
    assert untranslated(fresh) == []


# --- the pages in Chinese -----------------------------------------------------------------------

@pytest.fixture
def imported(team, tmp_path):
    """The team's dataset with three pairs in three domains and one malformed row, imported by a real job."""
    team.admin.is_staff = True
    team.admin.save(update_fields=["is_staff"])
    rows = [sharegpt_line(i, domain) for i, domain in enumerate(["对话", "代码", "数学"])] + ["{broken json"]
    path = write_jsonl(tmp_path / "pairs.jsonl", rows)
    call_command("import_pairs", str(path), dataset=team.dataset.name, no_progress=True, no_near_duplicates=True)
    return Job.objects.get(kind="import", dataset=team.dataset)


def choose_language(client, code, next_url="/"):
    response = client.post("/i18n/setlang/", {"language": code, "next": next_url})
    assert response.status_code == 302 and response["Location"] == next_url
    assert client.cookies["django_language"].value == code
    return response


def page(client, url, status=200, **kwargs):
    response = client.get(url, **kwargs)
    assert response.status_code == status, url
    return response.content.decode()


def assert_speaks(html, chinese, english):
    for text in chinese:
        assert text in html, f"{text!r} missing"
    for text in english:
        assert text not in html, f"{text!r} still in English"


def test_after_choosing_chinese_the_dataset_list_is_in_chinese(client, team, imported):
    client.force_login(team.admin)
    choose_language(client, "zh-hans")
    html = page(client, "/")
    assert '<html lang="zh-hans">' in html
    assert_speaks(html, ["<h1>数据集</h1>", "新建数据集", ">名称</th>", ">偏好对</th>", "退出登录", "基准数据集"],
                  ["<h1>Datasets</h1>", "New dataset", ">Name</th>", "Log out", "Is benchmark"])
    assert '<option value="zh-hans" selected>简体中文</option>' in html


def test_the_dataset_page_is_in_chinese_with_the_domain_names_of_coig_p(client, team, imported):
    client.force_login(team.admin)
    choose_language(client, "zh-hans")
    html = page(client, f"/datasets/{team.dataset.pk}/")
    assert_speaks(
        html,
        ["你的角色：管理员", "<h2>按领域</h2>", "<td>对话</td>", "<td>代码</td>", "<td>数学</td>", ">提示词</th>",
         ">回答</th>", "按状态统计的偏好对", "待处理", "近似重复与基准污染", "导出偏好对", "奖励模型", "最近的任务",
         "导入 · pairs.jsonl", "已成功"],
        ["Your role", "By domain", "<td>Chat</td>", "<td>Math</td>", "Pairs by status", "Export pairs",
         "Recent jobs", "Succeeded"],
    )


def test_the_import_form_is_in_chinese_and_so_are_its_errors(client, team, imported):
    client.force_login(team.admin)
    choose_language(client, "zh-hans")
    html = page(client, f"/datasets/{team.dataset.pk}/")
    assert_speaks(html, ["<h2>导入偏好对</h2>", "列映射（CSV、Parquet）", "取自文件", "上传并导入", "自动检测"],
                  ["Import pairs", "Column mapping", "From the file", "Upload and import"])
    response = client.post(f"/datasets/{team.dataset.pk}/import/", {"format": "auto"})
    assert response.status_code == 400
    html = response.content.decode()
    assert_speaks(html, ["导入偏好对到", "请上传文件或填写 Hugging Face 数据集（二选一）。"],
                  ["Import pairs into", "Upload a file or name a Hugging Face dataset"])


def test_the_job_page_of_an_import_is_in_chinese(client, team, imported):
    client.force_login(team.viewer)
    choose_language(client, "zh-hans")
    html = page(client, f"/jobs/{imported.pk}/")
    assert_speaks(
        html,
        [f"<h1>导入任务 {imported.pk}</h1>", "<dt>已读取行数</dt>", "<dt>新建偏好对</dt>", "<dt>无效行</dt>",
         "全部下载为 CSV", ">行号</th>", ">原因</th>", "字节", "已用时"],
        [f"import job {imported.pk}", "<dt>Rows read</dt>", "<dt>Rejected rows</dt>", "Download all as CSV",
         " bytes"],
    )
    # The progress fragment that htmx polls (286 stops the polling of a finished job) is Chinese too.
    fragment = client.get(f"/jobs/{imported.pk}/", HTTP_HX_REQUEST="true")
    assert fragment.status_code == 286
    assert "<html" not in fragment.content.decode() and "<dt>已读取行数</dt>" in fragment.content.decode()


def test_switching_back_to_english_restores_the_english_pages(client, team, imported):
    client.force_login(team.admin)
    choose_language(client, "zh-hans")
    assert "按领域" in page(client, f"/datasets/{team.dataset.pk}/")
    choose_language(client, "en", next_url=f"/datasets/{team.dataset.pk}/")
    html = page(client, f"/datasets/{team.dataset.pk}/")
    assert '<html lang="en">' in html
    assert_speaks(html, ["Your role: Admin", "<h2>By domain</h2>", "<td>Chat</td>", "Import pairs"],
                  ["按领域", "你的角色", "<td>对话</td>", "导入偏好对"])
    assert_speaks(page(client, f"/jobs/{imported.pk}/"), [f"import job {imported.pk}", "<dt>Rows read</dt>"],
                  ["导入任务", "已读取行数"])


def test_a_chinese_browser_gets_chinese_without_choosing(client, team, imported):
    client.force_login(team.viewer)
    html = page(client, "/", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9,en;q=0.5")
    assert '<html lang="zh-hans">' in html and "<h1>数据集</h1>" in html
    html = page(client, "/", HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9")
    assert '<html lang="en">' in html and "<h1>Datasets</h1>" in html


def test_the_login_page_and_the_error_pages_are_in_chinese(client, team):
    client.cookies["django_language"] = "zh-hans"
    html = page(client, "/login/")
    assert_speaks(html, ["<h1>登录</h1>", "用户名", "密码"], ["Log in", "Username", "Password"])
    client.force_login(team.outsider)
    html = page(client, f"/datasets/{team.dataset.pk}/", status=404)
    assert_speaks(html, ["未找到"], ["Not found"])
    client.force_login(team.viewer)
    html = page(client, f"/datasets/{team.dataset.pk}/score/", status=403)
    assert_speaks(html, ["无权操作", f"此操作需要你在 {team.dataset.name} 中拥有管理员角色。"],
                  ["Not allowed", "This needs the"])
