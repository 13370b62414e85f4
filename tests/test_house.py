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


def test_no_module_is_over_four_hundred_lines():
    long = [
        f"{path.relative_to(ROOT)} ({path.read_text().count(chr(10))} lines)"
        for path in _sources(*PACKAGES)
        if path.read_text().count("\n") > 400
    ]
    assert long == []


def test_index_settings_are_read_and_written_as_index_meta():
    """No module but the store (and the IndexMeta type itself) spells a meta key: the rest
    read ``meta.dim`` and write ``store.update_meta(dim=...)``."""
    from dataclasses import fields

    from searchcore.meta import IndexMeta

    names = [f.name for f in fields(IndexMeta)]
    # keys that are also Config fields or a Milvus description's (milvus_uri, ...) are left to the next rule
    distinct = [n for n in names if "_" in n and n not in ("milvus_uri", "milvus_collection")]
    key = "|".join(names)
    patterns = [
        re.compile(r"\b(get_meta|set_meta)\("),
        re.compile(rf"meta(\(\))?(\.get\(|\[)\s*[\"']({key})[\"']"),
        re.compile(rf"[\"']({'|'.join(distinct)})[\"']"),
    ]
    allowed = (ROOT / "searchcore" / "store", ROOT / "searchcore" / "meta.py")
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in _sources(*PACKAGES, "bench")
        if not any(a == path or a in path.parents for a in allowed)
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if any(p.search(line) for p in patterns)
    ]
    assert found == []
    assert "dim" in names and "milvus_published" in distinct  # the rule reads the type it guards


def test_the_error_tree_in_the_errors_docstring_names_every_error():
    import importlib
    import pkgutil

    from searchcore import errors

    for package in PACKAGES:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, package + "."):
            if not info.name.endswith("__main__"):
                importlib.import_module(info.name)

    def subclasses(cls: type) -> set[str]:
        found: set[str] = set()
        for sub in cls.__subclasses__():
            found |= {sub.__name__} | subclasses(sub)
        return found

    drawn = set(re.findall(r"(?:├──|└──)\s+(\w+)", errors.__doc__ or ""))
    assert subclasses(errors.SearchctlError) == drawn
