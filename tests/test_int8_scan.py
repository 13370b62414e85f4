import numpy as np
import pytest

from searchcore.embedder import l2_normalise
from searchcore.int8_scan import GRAPHS, Int8Scan


def _graph(rows: int):
    from onnx import TensorProto, helper, numpy_helper

    placeholder = numpy_helper.from_array(np.zeros((1, 1), np.int8), "B")
    if rows == 1:
        nodes = [
            helper.make_node("MatMulInteger", ["a", "B", "za"], ["scores"]),
            helper.make_node("TopK", ["scores", "k"], ["v", "i"]),
        ]
        inputs = [helper.make_tensor_value_info("a", TensorProto.UINT8, ["m", "d"])]
        kind, inits = TensorProto.INT32, [placeholder]
    else:
        nodes = [
            helper.make_node("MatMulInteger", ["a", "B", "za"], ["products"]),
            helper.make_node("Cast", ["products"], ["floats"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["floats", "steps"], ["parts"]),
            helper.make_node("ReduceSum", ["parts", "axes"], ["scores"], keepdims=0),
            helper.make_node("TopK", ["scores", "k"], ["v", "i"]),
        ]
        inputs = [
            helper.make_tensor_value_info("a", TensorProto.UINT8, ["m", rows, "d"]),
            helper.make_tensor_value_info("steps", TensorProto.FLOAT, ["m", rows, 1]),
        ]
        kind = TensorProto.FLOAT
        inits = [placeholder, numpy_helper.from_array(np.array([1], np.int64), "axes")]
    inputs += [
        helper.make_tensor_value_info("za", TensorProto.UINT8, []),
        helper.make_tensor_value_info("k", TensorProto.INT64, [1]),
    ]
    graph = helper.make_graph(
        nodes,
        "scan",
        inputs,
        [
            helper.make_tensor_value_info("v", kind, ["m", "k"]),
            helper.make_tensor_value_info("i", TensorProto.INT64, ["m", "k"]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    return model


@pytest.mark.parametrize("rows", [1, 2])
def test_the_stored_graphs_are_the_ones_described(rows):
    onnx = pytest.importorskip("onnx")

    model = _graph(rows)
    onnx.checker.check_model(model)
    assert model.SerializeToString() == GRAPHS[rows]


def _vectors(seed: int, n: int = 3000, d: int = 48) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Dimensions of very different ranges (one of them always zero), as embeddings have.
    spread = np.exp(rng.normal(0, 1, d))
    spread[5] = 0
    return l2_normalise(rng.standard_normal((n, d)) * spread).astype(np.float32)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("wide", [True, False], ids=["one-8-bit-row", "two-7-bit-rows"])
def test_every_approximate_score_is_within_the_bound_of_the_exact_one(seed, wide):
    matrix = _vectors(seed)
    scan = Int8Scan(matrix, wide=wide)
    rng = np.random.default_rng(100 + seed)
    queries = np.vstack(
        [
            l2_normalise(matrix[:4] + 0.1 * rng.standard_normal((4, matrix.shape[1]))),
            l2_normalise(rng.standard_normal((3, matrix.shape[1]))),
            np.zeros((1, matrix.shape[1])),  # nothing to scale: every score 0
            matrix[7:8],
            3.0 * matrix[7:8],  # not normalised: the bound grows with the query
        ]
    ).astype(np.float32)
    approx, rows, bound = scan.top(queries, len(matrix))
    exact = queries.astype(np.float64) @ matrix.T.astype(np.float64)
    for i in range(len(queries)):
        assert sorted(rows[i].tolist()) == list(range(len(matrix)))  # every vector, once
        assert np.all(np.diff(approx[i]) <= 0)  # best first
        error = np.abs(approx[i] - exact[i, rows[i]])
        assert error.max() <= bound[i]
    assert bound[7] == 0 and np.all(approx[7] == 0)
    assert bound[9] == pytest.approx(3 * bound[8])


@pytest.mark.parametrize("wide", [True, False], ids=["one-8-bit-row", "two-7-bit-rows"])
def test_the_best_come_first_with_their_rows(wide):
    matrix = _vectors(4)
    scan = Int8Scan(matrix, wide=wide)
    query = matrix[10:11]
    approx, rows, _ = scan.top(query, 25)
    full, _, _ = scan.top(query, len(matrix))
    assert approx.shape == rows.shape == (1, 25)
    np.testing.assert_array_equal(approx[0], full[0, :25])
    assert rows[0, 0] == 10  # the vector itself is its own best match
    assert rows.dtype == np.int64 and rows.dtype.char == np.dtype(np.int64).char


def test_two_rows_of_7_bit_codes_bound_tighter_than_one_of_8():
    matrix = _vectors(6)
    queries = matrix[:20]
    one, two = Int8Scan(matrix, wide=True).top(queries, 5)[2], Int8Scan(matrix, wide=False).top(queries, 5)[2]
    assert np.all(two < one)


def test_k_past_the_vectors_gives_every_vector():
    matrix = _vectors(5, n=30)
    approx, rows, _ = Int8Scan(matrix).top(matrix[:2], 100)
    assert approx.shape == (2, 30) and sorted(rows[1].tolist()) == list(range(30))
