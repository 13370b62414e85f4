"""An 8-bit first pass over an exact index's vectors: approximate inner products with a
bound on their error that holds for every vector, so an exact second pass over the best
of them can prove it found the exact top k (``searchcore.vectors._Shortlist``).

Each dimension j of the vectors is scaled by s_j = max |x_j| / 127 and rounded to int8
(a quarter of float32's bytes: xhat_j = x_j / s_j rounded). A query q is multiplied by the
same scales (q'_j = q_j s_j) and written in whole steps t, held as uint8 codes around a
zero point. ONNX Runtime's ``MatMulInteger`` computes the integer products with every
vector exactly (int32 accumulation), the graph scales them back and keeps the best with
``TopK``: one call, one thread.

Where the CPU's kernel multiplies 8-bit codes exactly (VNNI, AMX, ARM's dot products:
asked of the kernel once, ``_wide_codes_exact``), the query is one row of codes in
[1, 255] around 128 (t = max |q'| / 127). The AVX2 kernels without VNNI add products of
pairs in 16 bits, which codes above 127 would saturate; there the query is two rows of
7-bit codes around 64: c1 = q' / t1 rounded (t1 = max |q'| / 63) and c2 the remainder
q' - t1 c1 over t2 = its largest / 63, and a(x) = t1 (c1 . xhat) + t2 (c2 . xhat).

a(x) differs from q . x by at most sum_j |q'_j| / 2 (each xhat_j is rounded by at most
a half, plus 2^-12 for float32's rounding in coding it) plus t / 2 * max_x sum_j |xhat_j|
(t the last row's step: what its rounding leaves of q'), which ``Int8Scan.top`` returns
with each query's scores. For a normalised SciFact query that is 0.0235 with one row of
8-bit codes and 0.0120 with two rows of 7-bit ones (a single 7-bit row: 0.035). A
shortlist of ``2k + 64`` (k = 108, hybrid's depth) was proved enough by one 8-bit row for
99.6 % of SciFact's 1,109 queries and every query of NPL, Cranfield and MED, by two 7-bit
rows for every query of the four (a single 7-bit row: 84 % of SciFact's).
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["Int8Scan"]

# The graphs, serialised once with onnx.helper (tests/test_int8_scan.py rebuilds them and
# compares), by rows of query codes. One row: scores = MatMulInteger(a [m, d] uint8, B [d, n]
# int8, za uint8), int32; (values, rows) = TopK(scores, k) along the last axis, largest
# first. Two rows: products = MatMulInteger(a [m, 2, d], B, za); scores = ReduceSum(
# Cast(products, float) * steps [m, 2, 1], axis 1); then TopK. B is a 1 x 1 placeholder
# that each session replaces with the index's codes (``add_initializer``), so a graph
# holds no data and onnx is not needed to run it.
GRAPHS = {
    1: bytes.fromhex(
        "08073ab4010a210a01610a01420a027a61120673636f726573220d4d61744d756c496e74656765720a170a06"
        "73636f7265730a016b1201761201692204546f704b12047363616e2a0c0801080110034201424a01005a150a"
        "016112100a0e0802120a0a0312016d0a031201645a0c0a027a6112060a04080212005a0f0a016b120a0a0808"
        "0712040a02080162150a017612100a0e0806120a0a0312016d0a0312016b62150a016912100a0e0807120a0a"
        "0312016d0a0312016b42040a00100d"
    ),
    2: bytes.fromhex(
        "08073ae3020a230a01610a01420a027a61120870726f6475637473220d4d61744d756c496e74656765720a23"
        "0a0870726f64756374731206666c6f6174732204436173742a090a02746f1801a001020a1b0a06666c6f6174"
        "730a0573746570731205706172747322034d756c0a310a0570617274730a0461786573120673636f72657322"
        "0952656475636553756d2a0f0a086b65657064696d731800a001020a170a0673636f7265730a016b12017612"
        "01692204546f704b12047363616e2a0c0801080110034201424a01002a14080110074204617865734a080100"
        "0000000000005a190a016112140a120802120e0a0312016d0a0208020a031201645a1c0a0573746570731213"
        "0a110801120d0a0312016d0a0208020a0208015a0c0a027a6112060a04080212005a0f0a016b120a0a080807"
        "12040a02080162150a017612100a0e0801120a0a0312016d0a0312016b62150a016912100a0e0807120a0a03"
        "12016d0a0312016b42040a00100d"
    ),
}

# How far a vector's code can be from x_j / s_j, in steps: half of one, and a margin for
# float32's rounding in coding it (at most 127 * 2^-23).
_CODE_ERROR = 0.5 + 2.0**-12
# Vectors coded at a time.
_BLOCK = 8192


@functools.cache
def _wide_codes_exact() -> bool:
    """Whether ONNX Runtime's integer kernel on this CPU multiplies uint8 codes above 127
    exactly. Without VNNI its AVX2 kernels add the products of pairs in 16 bits, which
    saturate there (255 x 127 x 2 > 32767); asked of the kernel itself, with products that
    would, not read from CPU flags."""
    import onnxruntime

    width = 64
    signs = np.where(np.arange(4) % 2 == 0, 127, -127).astype(np.int8)
    weights = np.ascontiguousarray(np.tile(signs, (width, 1)))  # width x 4: columns of +-127
    value = onnxruntime.OrtValue.ortvalue_from_numpy(weights)
    session = _session(1, value)
    feed = {"a": np.full((1, width), 255, np.uint8), "za": np.array(0, np.uint8), "k": np.array([4], np.int64)}
    found, _ = session.run(None, feed)
    return sorted(found[0].tolist()) == [-255 * 127 * width] * 2 + [255 * 127 * width] * 2


def _session(rows: int, codes):
    """A one-thread session of the graph for ``rows`` rows of query codes whose B is
    ``codes`` (an OrtValue, kept alive by the caller: ONNX Runtime reads it and holds no
    reference)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_initializer("B", codes)
    return onnxruntime.InferenceSession(GRAPHS[rows], options, providers=["CPUExecutionProvider"])


class Int8Scan:
    """The int8 codes of ``matrix`` (n x d float32, n >= 1) in an ONNX Runtime session."""

    def __init__(self, matrix: np.ndarray, wide: bool | None = None):
        """``wide``: a query as one row of 8-bit codes (True) or two of 7-bit ones (False);
        by default the first wherever this CPU's kernel multiplies them exactly."""
        import onnxruntime

        matrix = np.asarray(matrix, dtype=np.float32)
        self.n, self.d = matrix.shape
        largest = np.abs(matrix).max(axis=0).astype(np.float64)
        self.scales = np.where(largest > 0, largest / 127.0, 1.0)
        # Coded in float32 a block at a time (float64 over a whole large index took seconds
        # and gigabytes); float32's rounding can move x_j / s_j by at most 127 * 2^-23, within
        # the margin ``_CODE_ERROR`` gives each code's half step.
        inverse = (1.0 / self.scales).astype(np.float32)
        self._codes = np.empty((self.d, self.n), np.int8)  # d x n: B of the graph
        self.longest = 0  # the largest sum of |code| over one vector (see ``top``'s bound)
        for start in range(0, self.n, _BLOCK):
            block = np.rint(matrix[start : start + _BLOCK] * inverse).clip(-127, 127).astype(np.int8)
            sums = np.abs(block.astype(np.int16)).sum(axis=1, dtype=np.int32)
            self.longest = max(self.longest, int(sums.max()))
            self._codes[:, start : start + len(block)] = block.T
        # A query's codes: one row of 8-bit steps where the kernel multiplies them exactly,
        # else two rows of 7-bit ones (the second codes the first's rounding).
        wide = _wide_codes_exact() if wide is None else wide
        self.rows, self.zero = (1, 128) if wide else (2, 64)
        self.levels = self.zero - 1
        self._value = onnxruntime.OrtValue.ortvalue_from_numpy(self._codes)
        self._session = _session(self.rows, self._value)

    def top(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(scores m x k, rows m x k, bound m): each query's k best approximate inner
        products, best first, the rows they belong to, and how far any vector's
        approximate score may be from its exact one. Queries must be finite."""
        scaled = np.asarray(queries, dtype=np.float64) * self.scales
        rest, codes, steps = scaled, [], []
        for _ in range(self.rows):
            row, step = _whole_steps(rest, self.levels)
            rest = rest - row * step[:, None]
            codes.append(row)
            steps.append(step)
        feed = {"za": np.array(self.zero, np.uint8), "k": np.array([min(k, self.n)], np.int64)}
        if self.rows == 1:  # integer scores, scaled here: only k of them
            feed["a"] = (codes[0] + self.zero).astype(np.uint8)
            values, rows = self._session.run(None, feed)
            values = values * steps[0][:, None]
        else:
            feed["a"] = (np.stack(codes, axis=1) + self.zero).astype(np.uint8)
            feed["steps"] = np.stack(steps, axis=1)[:, :, None].astype(np.float32)
            values, rows = self._session.run(None, feed)
        bound = _CODE_ERROR * np.abs(scaled).sum(axis=1) + 0.5 * steps[-1] * self.longest
        # ONNX Runtime's int64 comes as C long long; the platform's int64 is what FAISS takes.
        return values.astype(np.float64), rows.view(np.int64), bound


def _whole_steps(rows: np.ndarray, levels: int) -> tuple[np.ndarray, np.ndarray]:
    """(codes, step) of each row: its numbers as whole steps in [-levels, levels], each off
    by at most half a step; the step is a float32 (what the graph multiplies by), 0 for a
    row of zeros (every code 0)."""
    step = (np.abs(rows).max(axis=1) / levels).astype(np.float32).astype(np.float64)
    codes = np.rint(rows / np.where(step > 0, step, 1.0)[:, None]).clip(-levels, levels)
    return codes, step
