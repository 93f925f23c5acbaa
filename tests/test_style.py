"""Style rules for the whole code base: ruff-clean (settings in pyproject.toml), papers cited, not source texts."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")  # the venv's, if any
    if ruff is None:
        pytest.skip("ruff is not installed (it comes with the test extras)")
    folders = [name for name in ("saliencelab", "tests", "benchmarks") if (ROOT / name).is_dir()]
    result = subprocess.run([ruff, "check", *folders], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# --- user-facing text cites the papers, never the project's source documents -------------------

SOURCE_DOCUMENT = re.compile(
    r"\bseeds? 00"  # "seed 001", "seeds 000, 003", "Seed 002's table"
    r"|\bseeds'"  # "the seeds' formula"
    r"|\b\d{3}_[0-9a-f]{16}(?:\.txt)?\b",  # a source document's file name, e.g. 002_7d5c35c1670a97af.txt
    re.IGNORECASE,
)
"""How user-facing text would name one of the source documents (the seed texts) instead of a paper."""

USER_FACING = ("saliencelab", "docs", "examples", "README.md")
"""Where user-facing text lives: docstrings, `source`/`description` strings, CLI and report text, docs."""

TEXT_SUFFIXES = {".py", ".md", ".rst", ".txt", ".j2", ".jinja", ".html", ".toml", ".json", ".yaml", ".yml"}


def _user_facing_files() -> list[Path]:
    files = []
    for name in USER_FACING:
        path = ROOT / name
        candidates = [path] if path.is_file() else sorted(path.rglob("*")) if path.is_dir() else []
        files += [p for p in candidates if p.is_file() and p.suffix in TEXT_SUFFIXES]
    return files


def test_user_facing_text_cites_papers_not_source_documents():
    found = []
    for path in _user_facing_files():
        relative = path.relative_to(ROOT).as_posix()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if SOURCE_DOCUMENT.search(line):
                found.append(f"{relative}:{number}: {line.strip()}")
    assert not found, "cite the paper, not the source document:\n" + "\n".join(found)
