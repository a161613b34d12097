"""The front door and the docs point at files a fresh clone has: a path to a recipe, a doc or
a module that is gone sends a reader nowhere. docs/model-history.md records what was, and may
name files since removed."""

import re

import pytest

from tests.conftest import ROOT

DOCS = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").glob("*.md")
                                     if p.name != "model-history.md")]
PATH = re.compile(r"(?<![\w/.-])((?:training|docs|layer|function|tools|events|tests)"
                  r"/[\w./-]*\.(?:toml|md|py|jsonl|json|yaml))\b")
EXAMPLES = {"training/recipes/mine.toml"}  # a reader's own file, in a how-to


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_repository_path_a_doc_names_exists(doc):
    named = set(PATH.findall(doc.read_text()))
    missing = sorted(p for p in named - EXAMPLES if not (ROOT / p).exists())
    assert not missing, f"{doc.name} names {missing}"
