"""The README and docs/ are self-contained: every link they make stays in the repository."""

from __future__ import annotations

import re

from tests.conftest import REPO_ROOT

DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_docs_exist_for_the_language_operations_simulator_and_ledger() -> None:
    names = {p.name for p in DOCS}
    assert {"strategy-language.md", "operations.md", "simulator.md", "ledger.md"} <= names


def test_no_doc_points_outside_the_repository() -> None:
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        assert "../shared" not in text, doc.name
        for target in LINK.findall(text):
            if re.match(r"[a-z]+://", target):
                continue  # a web page, not a file
            path = (doc.parent / target).resolve()
            assert path.is_relative_to(REPO_ROOT), (doc.name, target)
            assert path.exists(), (doc.name, target)
