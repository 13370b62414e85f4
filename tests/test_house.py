"""The house rules, checked: imports run one way, one module speaks SQL, one opens FAISS,
and the packages type-check. The contracts themselves are in pyproject.toml."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("searchcore", "indexer", "finetune", "searchd", "searchctl")


def _tool(name: str) -> str:
    found = Path(sys.executable).with_name(name)
    if found.exists():
        return str(found)
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; `pip install -e '.[test]'` installs it")
    return path


def _sources(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py"))


def test_import_contracts_hold():
    done = subprocess.run([_tool("lint-imports")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "broken" in done.stdout and " 0 broken" in done.stdout


@pytest.mark.slow  # a cold mypy run takes 15-20 s here; the contracts above take one
def test_the_packages_type_check():
    done = subprocess.run([_tool("mypy")], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_sql_runs_only_in_the_store_package():
    store = ROOT / "searchcore" / "store"
    outside = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in _sources(*PACKAGES, "bench")
        if store not in path.parents
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\.(execute|executemany|executescript)\(|\.db\.query\(", line)
    ]
    assert outside == []


def test_faiss_is_imported_in_one_module():
    importing = {
        str(path.relative_to(ROOT))
        for path in _sources(*PACKAGES)
        if re.search(r"^\s*(import faiss|from faiss)", path.read_text(), re.M)
    }
    assert importing == {"searchcore/vectors.py"}


def test_no_module_is_over_four_hundred_lines_without_saying_why():
    long = []
    for path in _sources(*PACKAGES):
        text = path.read_text()
        if text.count("\n") > 410 and "Why this module is long" not in text[:3000]:
            long.append(f"{path.relative_to(ROOT)} ({text.count(chr(10))} lines)")
    assert long == []
