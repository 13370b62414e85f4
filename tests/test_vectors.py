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
