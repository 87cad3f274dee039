"""One-way layers: review builds on annotation, never the other way (README, "How it is built"). Annotation
reaches what review adds (its job kinds, the search indexing after an import, the reviewed gold set) only
through registries that review fills in its ready()."""

import ast
import re
from pathlib import Path

from django.apps import apps

ROOT = Path(__file__).resolve().parent.parent
ANNOTATION = ROOT / "annotation"


def _modules():
    return sorted(ANNOTATION.rglob("*.py"))


def _imported_names(tree):
    """(line, module) of every absolute import, and of import_module("…") / __import__("…") calls."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.lineno, node.module
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")):
            yield node.lineno, str(node.args[0].value)


def test_no_module_of_annotation_imports_review():
    found = [f"{path.relative_to(ROOT)}:{line}: {name}"
             for path in _modules() for line, name in _imported_names(ast.parse(path.read_text(encoding="utf-8")))
             if name == "review" or name.startswith("review.")]
    assert found == []


def test_no_module_of_annotation_names_a_table_of_review():
    tables = {model._meta.db_table for model in apps.get_app_config("review").get_models(include_auto_created=True)}
    assert "review_review" in tables
    named = re.compile(r"\b(" + "|".join(sorted(tables)) + r")\b")
    found = [f"{path.relative_to(ROOT)}:{node.lineno}: {match.group(1)}"
             for path in _modules() for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(node, ast.Constant) and isinstance(node.value, str)
             for match in named.finditer(node.value)]
    assert found == []
