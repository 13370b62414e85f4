import re

import numpy as np
import pytest

from indexer.chunker import chunk_text

_WORD = re.compile(r"\w+|[^\w\s]")


def spans(text):
    return np.asarray([(m.start(), m.end()) for m in _WORD.finditer(text)], dtype=np.int64).reshape(-1, 2)


def ntok(text):
    return len(_WORD.findall(text))


def check_invariants(text, chunks, size):
    for c in chunks:
        assert text[c.char_start : c.char_end] == c.text
        assert c.text == c.text.strip() and c.text
        assert ntok(c.text) <= size
        assert c.line_start == text.count("\n", 0, c.char_start) + 1
        assert c.line_end == text.count("\n", 0, c.char_end - 1) + 1
        assert c.line_start <= c.line_end
    # Every token of the text lands in some chunk: nothing is dropped.
    covered = np.zeros(len(text), dtype=bool)
    for c in chunks:
        covered[c.char_start : c.char_end] = True
    for m in _WORD.finditer(text):
        assert covered[m.start() : m.end()].all(), f"token {m.group()!r} at {m.start()} lost"


@pytest.mark.parametrize("text", ["", " ", "\n\n\t \n"])
def test_empty_and_blank_text_give_no_chunks(text):
    assert chunk_text(text, spans(text), size=10) == []


def test_one_character():
    [c] = chunk_text("x", spans("x"), size=10)
    assert (c.text, c.char_start, c.char_end, c.line_start, c.line_end) == ("x", 0, 1, 1, 1)


def test_exact_boundary_fits_one_chunk_and_one_more_token_splits():
    words = " ".join(f"w{i}" for i in range(10))
    assert len(chunk_text(words, spans(words), size=10)) == 1
    eleven = words + " w10"
    chunks = chunk_text(eleven, spans(eleven), size=10)
    assert len(chunks) == 2
    check_invariants(eleven, chunks, 10)


@pytest.mark.parametrize("overlap", [10, 11, 50])
def test_overlap_not_smaller_than_size_is_refused(overlap):
    with pytest.raises(ValueError, match="overlap"):
        chunk_text("a b c", spans("a b c"), size=10, overlap=overlap)


def test_overlap_repeats_whole_sentences():
    text = " ".join(f"Sentence number {i} is here." for i in range(20))
    chunks = chunk_text(text, spans(text), size=30, overlap=8)
    check_invariants(text, chunks, 30)
    assert len(chunks) > 2
    for a, b in zip(chunks, chunks[1:]):
        assert b.char_start < a.char_end, "consecutive chunks should share a sentence"
        assert b.char_end > a.char_end, "each chunk must move forward"


def test_token_windows_for_one_huge_sentence_overlap_by_tokens():
    text = " ".join(f"t{i}" for i in range(100))
    chunks = chunk_text(text, spans(text), size=20, overlap=5)
    check_invariants(text, chunks, 20)
    first, second = chunks[0], chunks[1]
    shared = text[second.char_start : first.char_end]
    assert ntok(shared) == 5


def test_markdown_headings_are_hard_boundaries():
    text = "# One\n\nalpha beta\n\n## Two\n\ngamma delta\n\n```\n# not a heading\n```\n"
    chunks = chunk_text(text, spans(text), size=100, markdown=True)
    assert [c.text.splitlines()[0] for c in chunks] == ["# One", "## Two"]
    assert "# not a heading" in chunks[1].text
    assert chunks[1].line_start == 5
    # Without the Markdown flag the same text is one chunk.
    assert len(chunk_text(text, spans(text), size=100)) == 1


def test_paragraphs_pack_until_the_size_is_reached():
    paragraphs = [" ".join(f"p{n}w{i}" for i in range(6)) for n in range(10)]
    text = "\n\n".join(paragraphs)
    chunks = chunk_text(text, spans(text), size=13)
    check_invariants(text, chunks, 13)
    # Two six-token paragraphs fit in 13 tokens; paragraphs are never cut in the middle.
    assert all(c.text.count("\n\n") == 1 for c in chunks[:-1])


def test_unicode_spans_are_character_offsets():
    text = "Café naïve 😀 — 東京は大きい。\n\nZoë's résumé: ½ ∑ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 " * 20
    chunks = chunk_text(text, spans(text), size=16, overlap=4)
    check_invariants(text, chunks, 16)


def test_two_megabyte_file_is_chunked_completely():
    para = "The quick brown fox jumps over the lazy dog. " * 8
    text = "\n\n".join(f"{para} paragraph {i}" for i in range(2_000_000 // len(para) + 1))
    assert len(text) >= 2_000_000
    chunks = chunk_text(text, spans(text), size=200, overlap=20)
    assert chunks[-1].char_end == len(text.rstrip())
    check_invariants(text, chunks, 200)
    assert chunks[-1].line_end == text.count("\n") + 1


def test_real_tokenizer_never_exceeds_the_model_limit(real_embedder):
    """Re-tokenised on its own, with special tokens, no chunk is longer than the model takes."""
    nasty = (
        "supercalifragilisticexpialidocious" * 40
        + " https://example.org/a/very/long/path?with=query&and=more " * 30
        + "東京都の人口は約千四百万人です。" * 60
        + " ".join("unbelievably-hyphenated-compound-words" for _ in range(200))
    )
    text = nasty + "\n\n" + "Ordinary sentences follow here. " * 200
    budget = real_embedder.max_tokens - real_embedder.special_tokens - 4
    chunks = chunk_text(text, real_embedder.token_spans(text), size=budget, overlap=32)
    counts = real_embedder.count_tokens([c.text for c in chunks])
    assert max(counts) <= real_embedder.max_tokens
    assert len(chunks) > 5
