import numpy as np
import pytest

from searchcore.embedder import l2_normalise
from searchcore.vectors import VectorIndex, vectors_path


def brute_force(matrix, ids, query, k):
    scores = matrix @ query
    order = np.argsort(-scores, kind="stable")[:k]
    return scores[order], ids[order]


@pytest.mark.parametrize("n,k", [(1, 1), (50, 10), (1000, 25), (300, 500)])
def test_faiss_matches_numpy_brute_force(n, k):
    rng = np.random.default_rng(n)
    matrix = l2_normalise(rng.standard_normal((n, 32)))
    ids = rng.choice(10**9, size=n, replace=False).astype(np.int64)
    index = VectorIndex.build(ids, matrix)
    queries = l2_normalise(rng.standard_normal((5, 32)))
    scores, found = index.search(queries, k)
    assert scores.shape == (5, min(k, n))
    for q, row_scores, row_ids in zip(queries, scores, found):
        want_scores, want_ids = brute_force(matrix, ids, q, k)
        np.testing.assert_allclose(row_scores, want_scores, rtol=1e-5, atol=1e-5)
        assert set(row_ids.tolist()) == set(want_ids.tolist())


def test_remove_and_add_by_chunk_id():
    rng = np.random.default_rng(1)
    matrix = l2_normalise(rng.standard_normal((20, 8)))
    index = VectorIndex.build(np.arange(100, 120), matrix)
    assert index.remove(np.array([100, 105, 999])) == 2
    index.add(np.array([500]), matrix[:1])
    _, ids = index.search(matrix[0], 1)
    assert ids[0][0] == 500
    assert index.ntotal == 19


def test_save_is_atomic_and_round_trips(tmp_path):
    rng = np.random.default_rng(2)
    matrix = l2_normalise(rng.standard_normal((10, 16)))
    index = VectorIndex.build(np.arange(10), matrix)
    path = vectors_path(tmp_path, 3)
    index.save(path)
    assert path.name == "vectors-3.faiss"
    assert [p.name for p in tmp_path.iterdir()] == ["vectors-3.faiss"]  # no temporary left behind
    loaded = VectorIndex.load(path)
    assert loaded.ntotal == 10 and loaded.dim == 16
    np.testing.assert_array_equal(loaded.search(matrix, 3)[1], index.search(matrix, 3)[1])


def test_empty_index_searches_to_nothing():
    index = VectorIndex.empty(8)
    scores, ids = index.search(np.ones(8, np.float32), 10)
    assert scores.shape == (1, 0) and ids.shape == (1, 0)


def _faiss_one_pass(index, queries, k):
    """FAISS's own exact scan of the index, bypassing the shortlist."""
    return index.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)


@pytest.mark.parametrize("mapped", [False, True])
def test_the_int8_shortlist_gives_faiss_exact_answer_bitwise(tmp_path, mapped):
    rng = np.random.default_rng(7)
    centres = l2_normalise(rng.standard_normal((40, 64)))
    matrix = l2_normalise(centres[rng.integers(0, 40, 6000)] + 0.3 * rng.standard_normal((6000, 64)))
    ids = rng.choice(10**9, size=6000, replace=False).astype(np.int64)
    index = VectorIndex.build(ids, matrix)
    if mapped:
        index.save(tmp_path / "v.faiss")
        index = VectorIndex.load(tmp_path / "v.faiss", mapped=True)
    queries = l2_normalise(centres[:19] + 0.2 * rng.standard_normal((19, 64)))
    for k in (1, 10, 108):
        scores, found = index.search(queries, k)
        want_scores, want_ids = _faiss_one_pass(index, queries, k)
        assert np.array_equal(scores, want_scores) and np.array_equal(found, want_ids)
    assert index._exact_shortlist() is not None  # the two-pass scan answered


def test_the_shortlist_orders_equal_scores_as_faiss_does():
    # Documents indexed twice or more: equal vectors, equal scores; the shortlist gives them
    # in FAISS's own order (the later vector first), not in the order its first pass met them.
    rng = np.random.default_rng(11)
    distinct = l2_normalise(rng.standard_normal((1500, 24)))
    matrix = distinct[rng.integers(0, 1500, 6000)]
    index = VectorIndex.build(rng.choice(10**6, size=6000, replace=False).astype(np.int64), matrix)
    queries = l2_normalise(distinct[:12] + 0.3 * rng.standard_normal((12, 24)))
    for q in range(len(queries)):
        scores, found = index.search(queries[q : q + 1], 50)
        want_scores, want_ids = _faiss_one_pass(index, queries[q : q + 1], 50)
        assert len(set(scores[0].tolist())) < 50  # ties are there to order
        assert np.array_equal(scores, want_scores) and np.array_equal(found, want_ids)


def test_the_shortlist_falls_back_where_int8_cannot_tell_the_best_apart():
    # Every vector within 1e-4 of one another: the int8 pass's bound (~0.02) says nothing of
    # their order, so the shortlist cannot prove itself and the exact scan answers.
    rng = np.random.default_rng(3)
    base = l2_normalise(rng.standard_normal((1, 32)))
    matrix = l2_normalise(base + 1e-4 * rng.standard_normal((5000, 32)))
    index = VectorIndex.build(np.arange(5000), matrix)
    queries = l2_normalise(base + 0.01 * rng.standard_normal((3, 32)))
    scores, found = index.search(queries, 10)
    want_scores, want_ids = _faiss_one_pass(index, queries, 10)
    assert np.array_equal(scores, want_scores) and np.array_equal(found, want_ids)
    plain = []
    index._exact_shortlist().search(queries, 10, lambda q: plain.append(q) or _faiss_one_pass(index, q, 10))
    assert len(plain) == 3  # each query went to the plain scan


def test_the_shortlist_follows_what_is_added_and_removed():
    rng = np.random.default_rng(5)
    matrix = l2_normalise(rng.standard_normal((5000, 16)))
    index = VectorIndex.build(np.arange(5000), matrix)
    query = l2_normalise(rng.standard_normal((1, 16)))
    first = int(index.search(query, 1)[1][0][0])
    index.remove(np.array([first]))
    assert first not in index.search(query, 5)[1][0]
    index.add(np.array([777_777]), query)
    assert int(index.search(query, 1)[1][0][0]) == 777_777


def test_a_query_of_nan_finds_nothing_as_the_plain_scan():
    # The shortlist hands a query of NaN to the plain scan, which finds nothing (id -1).
    rng = np.random.default_rng(9)
    index = VectorIndex.build(np.arange(5000), l2_normalise(rng.standard_normal((5000, 16))))
    query = np.full((1, 16), np.nan, np.float32)
    scores, found = index.search(query, 5)
    want_scores, want_ids = _faiss_one_pass(index, query, 5)
    assert np.array_equal(found, want_ids) and (found == -1).all()


def test_the_shortlist_of_two_7_bit_query_rows_is_exact_too():
    # The codes a CPU without VNNI gets (searchcore.int8_scan): the same answer, bitwise.
    from searchcore.int8_scan import Int8Scan

    rng = np.random.default_rng(13)
    centres = l2_normalise(rng.standard_normal((30, 48)))
    matrix = l2_normalise(centres[rng.integers(0, 30, 5000)] + 0.3 * rng.standard_normal((5000, 48)))
    index = VectorIndex.build(np.arange(5000), matrix)
    shortlist = index._exact_shortlist()
    shortlist.scan = Int8Scan(shortlist.matrix, wide=False)
    queries = l2_normalise(centres[:10] + 0.2 * rng.standard_normal((10, 48)))
    plain = []
    scores, found = shortlist.search(queries, 50, lambda q: plain.append(q) or _faiss_one_pass(index, q, 50))
    want_scores, want_ids = _faiss_one_pass(index, queries, 50)
    assert np.array_equal(scores, want_scores) and np.array_equal(found, want_ids)
    assert not plain  # proved without the plain scan
