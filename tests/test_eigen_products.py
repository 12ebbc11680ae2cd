"""Eigen's matrix products (``gdcore.numerics.eigen_products``): blocking, engines, live TensorFlow.

Three layers, as in ``test_numerics_tensorflow.py``:

* the blocking arithmetic, checked against Eigen's formulas evaluated by hand
  (no TensorFlow), and small products worked by hand whose result depends on
  the summation order;
* every routine's NumPy function against its Numba ``*_loop`` twin, bit for bit;
* live TensorFlow (``-m tensorflow``), one table line per rule: float64 in
  this process with this machine's cache sizes, float32 in a subprocess
  (also marked ``slow``) started with ``TF_ENABLE_ONEDNN_OPTS=0``
  (TensorFlow reads it once, at import), so that its float32 ``MatMul`` runs
  on Eigen as on a CPU without AVX512_VNNI / AVX512_BF16 / AVX_VNNI / AMX.
  Eigen's float32 contraction then calls oneDNN's ``dnnl_sgemm`` (TensorFlow's
  custom contraction kernel), whose kernels depend on the instruction set:
  one subprocess per path, ``ONEDNN_MAX_CPU_ISA=AVX512_CORE`` (Skylake-SP),
  ``ONEDNN_MAX_CPU_ISA=AVX2`` (AMD Zen 2/3, Intel Haswell) and
  ``TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL=0`` (Eigen's own GEBP).

The cache sizes are read from ``/sys/devices/system/cpu/cpu0/cache`` for now
(Eigen reads them with CPUID; the two agree on the machines measured).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gdcore.numerics import eigen_products as ep
from gdcore.numerics import onednn

KIB = 1024
F32, F64 = np.float32, np.float64


def _sysfs_cache_sizes(cpu: int = 0) -> tuple[int, int, int]:
    """(L1 data, L2, L3) in bytes from Linux's sysfs; Eigen's defaults for a level that is missing."""
    sizes = {1: ep.DEFAULT_L1_CACHE_BYTES, 2: ep.DEFAULT_L2_CACHE_BYTES, 3: ep.DEFAULT_L3_CACHE_BYTES}
    root = Path(f"/sys/devices/system/cpu/cpu{cpu}/cache")
    for index in sorted(root.glob("index*")):
        try:
            level = int((index / "level").read_text())
            kind = (index / "type").read_text().strip()
            text = (index / "size").read_text().strip()
        except OSError:
            continue
        if kind not in ("Data", "Unified"):
            continue
        scale = {"K": KIB, "M": KIB * KIB, "G": KIB**3}.get(text[-1], 1)
        sizes[level] = int(text.rstrip("KMG")) * scale
    return sizes[1], sizes[2], sizes[3]


CACHES = _sysfs_cache_sizes()


def _assert_same_bits(mine, theirs, what):
    mine = np.asarray(mine)
    theirs = np.asarray(theirs, dtype=mine.dtype)
    assert mine.shape == theirs.shape, f"{what}: shape {mine.shape} vs {theirs.shape}"
    int_type = np.int32 if mine.dtype == np.float32 else np.int64
    a, b = mine.reshape(-1).view(int_type), theirs.reshape(-1).view(int_type)
    bad = np.flatnonzero(a != b)
    if bad.size:
        magnitude = np.iinfo(int_type).max
        ordered_a = np.where(a < 0, -(a & magnitude), a).astype(np.int64)
        ordered_b = np.where(b < 0, -(b & magnitude), b).astype(np.int64)
        worst = int(np.abs(ordered_a - ordered_b).max())
        i = bad[0]
        pytest.fail(f"{what}: {bad.size}/{mine.size} values differ (up to {worst} ulp); first at flat index {i}: "
                    f"mine {mine.ravel()[i]!r} vs theirs {theirs.ravel()[i]!r}")


def _spread(rng, shape, dtype):
    return (rng.standard_normal(shape) * 2.0 ** rng.integers(-8, 8, shape)).astype(dtype)


def _wide(rng, shape, dtype):
    """Magnitudes 2^-20..2^21 and both signs: products that cancel and absorb, so that nearly every order differs."""
    values = rng.choice([-1.0, 1.0], shape) * 2.0 ** rng.integers(-20, 20, shape) * (1 + rng.integers(0, 8, shape) / 8)
    return values.astype(dtype)


# --- blocking arithmetic --------------------------------------------------------------

# (depth, rows, cols, l1, dtype, kc, Eigen's formula evaluated by hand)
DEPTH_BLOCKS = [
    (40, 3, 8, 32 * KIB, F64, 40, "max(d, m, n) = 40 < 48: no blocking"),
    (385, 8, 3, 32 * KIB, F64, 200,
     "max_kc = (32512 // 96) & ~7 = 336; 385 % 336 = 49; 336 - 8 * ((335 - 49) // 16) = 200"),
    (385, 8, 3, 48 * KIB, F64, 385, "max_kc = (48896 // 96) & ~7 = 504 >= 385"),
    (672, 8, 3, 32 * KIB, F64, 336, "336 divides 672"),
    (1000, 8, 3, 32 * KIB, F64, 336, "1000 % 336 = 328; 336 - 8 * ((335 - 328) // 24) = 336"),
    (1000, 8, 3, 48 * KIB, F64, 504, "1000 % 504 = 496; 504 - 8 * ((503 - 496) // 16) = 504"),
    (1100, 8, 3, 48 * KIB, F64, 368, "1100 % 504 = 92; 504 - 8 * ((503 - 92) // 24) = 368"),
    (40, 3, 8, 48 * KIB, F32, 40, "max(d, m, n) = 40 < 48: no blocking"),
    (500, 8, 3, 32 * KIB, F32, 256,
     "max_kc = (32512 // 80) & ~7 = 400; 500 % 400 = 100; 400 - 8 * ((399 - 100) // 16) = 256"),
    (500, 8, 3, 48 * KIB, F32, 500, "max_kc = (48896 // 80) & ~7 = 608 >= 500"),
    (1000, 8, 3, 32 * KIB, F32, 336, "1000 % 400 = 200; 400 - 8 * ((399 - 200) // 24) = 336"),
    (1000, 8, 3, 48 * KIB, F32, 504, "1000 % 608 = 392; 608 - 8 * ((607 - 392) // 16) = 504"),
    (1216, 8, 3, 48 * KIB, F32, 608, "608 divides 1216"),
]


@pytest.mark.parametrize("depth, rows, cols, l1, dtype, expected, how", DEPTH_BLOCKS,
                         ids=[f"d{c[0]}-{c[3] // KIB}KiB-{np.dtype(c[4]).name}" for c in DEPTH_BLOCKS])
def test_depth_block_size_follows_eigen_formula(depth, rows, cols, l1, dtype, expected, how):
    assert ep.depth_block_size(depth, rows, cols, l1, dtype) == expected, how


# TensorFlow's custom float32 kernel: S = ceil(d / kc) slices of 8 * ceil((d // S) / 8) terms (48 KiB L1).
CUSTOM_DEPTH_BLOCKS = [(40, 40), (608, 608), (609, 304), (700, 352), (1000, 504), (1217, 408), (10000, 592)]


@pytest.mark.parametrize("depth, expected", CUSTOM_DEPTH_BLOCKS)
def test_custom_kernel_depth_slices(depth, expected):
    kc, _, _ = ep.blocking_sizes(depth, 8, 3, 48 * KIB, 2 * KIB * KIB, 300 * KIB * KIB, F32, custom_kernel=True)
    assert kc == expected


def test_custom_kernel_leaves_a_block_of_one_batch_row():
    """B = 49, K = 128, N = 64 (48 KiB L1): Eigen's nc = 28, rounded up to 48 by the custom kernel: 48 + 1 rows."""
    _, mc, nc = ep.blocking_sizes(128, 64, 49, 48 * KIB, 2 * KIB * KIB, 300 * KIB * KIB, F32, custom_kernel=True)
    assert (mc, nc) == (64, 48)


MIB = KIB * KIB
CACHE_CONFIGURATIONS = [(32 * KIB, 256 * KIB, 2 * MIB), (32 * KIB, 512 * KIB, 32 * MIB), (48 * KIB, 2 * MIB, 300 * MIB),
                        (64 * KIB, 1 * MIB, 16 * MIB)]


@pytest.mark.parametrize("caches", CACHE_CONFIGURATIONS)
@pytest.mark.parametrize("dtype", [F32, F64])
def test_row_and_column_blocks_keep_the_gebp_order(caches, dtype):
    """Where Eigen blocks rows or columns, a row block is a multiple of mr, a column block of nr (module docstring).

    Eigen's contraction multiplies with GEBP only when its n (TensorFlow's batch rows, or K for the
    kernel gradient) is at least 2; with n = 1 it runs a GEMV (``evalGemv``), and there a 32 KiB L1
    would give mc = 15 for d = 171, m = 16 (float32).
    """
    mr = 2 * (32 // np.dtype(dtype).itemsize)
    batches = list(range(2, 200)) + list(range(200, 10001, 37)) + [10000]
    for depth in (1, 2, 3, 8, 16, 17, 64, 128, 256):
        for units in (1, 2, 3, 7, 8, 16, 17, 64, 128, 256):
            for batch in batches:
                # Eigen's (d, m, n) for the forward product and the two gradients.
                for d, m, n in ((depth, units, batch), (units, depth, batch), (batch, units, depth)):
                    if n < 2:
                        continue
                    _, mc, nc = ep.blocking_sizes(d, m, n, *caches, dtype)
                    assert mc == m or mc % mr == 0, (d, m, n, mc)
                    assert nc == n or nc % ep.GEBP_COLS == 0, (d, m, n, nc)


def test_cache_sizes_are_validated():
    with pytest.raises(ValueError, match="l1 must be a positive number of bytes"):
        ep.depth_block_size(100, 8, 3, 0)
    with pytest.raises(TypeError, match="float32 or float64"):
        ep.depth_block_size(100, 8, 3, 32 * KIB, np.int32)


# --- products worked by hand: the order decides the result -------------------------------
# With p = 2^24 (float32) or 2^53 (float64), p + 1 is a tie that rounds back to p, so a plain
# sequential sum of p, 1, 1 loses both ones while Eigen's lanes add the ones first.


@pytest.mark.parametrize("dtype, big, ones_at", [(F32, 2.0**24, (1, 5)), (F64, 2.0**53, (1, 3))])
def test_row_major_gemv_halving_by_hand(dtype, big, ones_at):
    # One row, d = P: lane l holds term l; halving adds lanes (1, P/2 + 1) before adding them to the big lane 0.
    lanes = 32 // np.dtype(dtype).itemsize
    row = np.zeros((1, lanes), dtype)
    row[0, 0] = big
    row[0, list(ones_at)] = 1
    out = ep.gemv_row_major(row, np.ones(lanes, dtype))
    one, p = dtype(1), dtype(big)
    assert out[0] == p + 2
    assert (p + one) + one == p  # what a sequential sum gives


@pytest.mark.parametrize("dtype, big, ones_at", [(F32, 2.0**24, (1, 3)), (F64, 2.0**53, (2, 3))])
def test_gebp_single_row_lanes_by_hand(dtype, big, ones_at):
    # One row (a single row of the swapped kernel), 4 columns, d = 8: float32 keeps k even / odd in
    # the two halves of a packet ((L0+L2)+(L4+L6)) + ((L1+L3)+(L5+L7)); float64 (c0+c1)+(c2+c3) over k mod 4.
    lhs = np.zeros((1, 8), dtype)
    lhs[0, 0] = big
    lhs[0, list(ones_at)] = 1
    out = ep.gebp(lhs, np.ones((8, 4), dtype), 32 * KIB)
    assert (out == dtype(big) + 2).all()
    assert (dtype(big) + dtype(1)) + dtype(1) == dtype(big)  # what a sequential sum gives


def test_onednn_gemv_tree_is_onednn_modules_tree():
    """The one-row block of the custom kernel is oneDNN's matrix-vector tree, plus the output as first addend."""
    rng = np.random.default_rng(0)
    for depth in (1, 7, 16, 31, 64, 385):
        x, w = _spread(rng, (5, depth), F32), _spread(rng, (depth,), F32)
        ours = ep._gemv_tree(x, w, np.zeros(5, F32))
        _assert_same_bits(ours, np.float32(0) + onednn.gemv_tree(x, w), f"tree depth {depth}")


# --- NumPy vs Numba -------------------------------------------------------------------

SHAPES = [(1, 1, 1), (1, 9, 1), (2, 8, 3), (3, 5, 7), (7, 19, 4), (13, 64, 9), (17, 33, 16), (33, 130, 5),
          (64, 385, 8), (9, 1000, 3), (1, 200, 17), (40, 1, 40)]
L1, L2, L3 = 48 * KIB, 2 * KIB * KIB, 300 * KIB * KIB


@pytest.mark.parametrize("dtype", [F32, F64])
def test_numba_twins_match_numpy(dtype):
    rng = np.random.default_rng(1)
    for m, d, n in SHAPES:
        a, b = _spread(rng, (m, d), dtype), _spread(rng, (d, n), dtype)
        out = np.empty((m, n), dtype)
        ep.gebp_loop(a, b, out, L1)
        _assert_same_bits(out, ep.gebp(a, b, L1), f"gebp {m, d, n}")
        if dtype == F32:
            ep.onednn_contraction_loop(a, b, out, L1, L2, L3)
            _assert_same_bits(out, ep.onednn_contraction(a, b, L1, L2, L3), f"onednn_contraction {m, d, n}")
        for vectorized in (True, False):
            ep.lazy_product_loop(a, b, vectorized, out)
            _assert_same_bits(out, ep.lazy_product(a, b, vectorized), f"lazy_product {m, d, n}")
            dot = ep.dot_product_loop(a[:1], b[:, :1], vectorized)
            _assert_same_bits(np.array([[dot]]), ep.dot_product(a[:1], b[:, :1], vectorized), f"dot {d}")
        vector = np.ascontiguousarray(b[:, 0])
        for gemv, loop in ((ep.gemv_row_major, ep.gemv_row_major_loop), (ep.gemv_col_major, ep.gemv_col_major_loop)):
            row_out = np.empty(m, dtype)
            loop(a, vector, row_out)
            _assert_same_bits(row_out, gemv(a, vector), f"{gemv.__name__} {m, d}")
        for transposed in (False, True):
            rhs = np.asfortranarray(b) if transposed else b
            ep.launch_matmul_loop(a, rhs, True, not transposed, out, L1, L2, L3)
            expected = ep.launch_matmul(a, rhs, True, not transposed, L1, L2, L3)
            _assert_same_bits(out, expected, f"launch_matmul {m, d, n}")
        bias = _spread(rng, (n,), dtype)
        ep.fused_matmul_loop(a, b, bias, out, L1, L2, L3)
        _assert_same_bits(out, ep.fused_matmul(a, b, bias, L1, L2, L3), f"fused_matmul {m, d, n}")
        if dtype == F32:
            ep.launch_matmul_loop(a, b, True, True, out, L1, L2, L3, False)
            _assert_same_bits(out, ep.launch_matmul(a, b, True, True, L1, L2, L3, False), f"GEBP float32 {m, d, n}")


# --- live TensorFlow ---------------------------------------------------------------------

# The operations as Keras's compiled step runs them; built by the test process (float64) and by the
# float32 subprocess from this one source.
_TF_OPERATIONS = '''
def tf_operations(tf):
    dense = tf.function(lambda x, w, b: tf.nn.bias_add(tf.linalg.matmul(x, w), b))
    return {
        "matmul": lambda x, w, delta, b: tf.linalg.matmul(x, w),
        "matmul_grad_input": lambda x, w, delta, b: tf.linalg.matmul(delta, w, transpose_b=True),
        "matmul_grad_kernel": lambda x, w, delta, b: tf.linalg.matmul(x, delta, transpose_a=True),
        "dense": lambda x, w, delta, b: dense(x, w, b),
        "dense_one_unit": tf.function(lambda x, w, delta, b: tf.linalg.matmul(x, w) + b),
        "dense_sigmoid": tf.function(lambda x, w, delta, b: tf.math.sigmoid(tf.nn.bias_add(tf.linalg.matmul(x, w), b))),
        "dense_tanh": tf.function(lambda x, w, delta, b: tf.math.tanh(tf.nn.bias_add(tf.linalg.matmul(x, w), b))),
    }
'''


def _inputs(operation, dtype, batch_size, n_in, n_out, draw):
    seed = 100_000 * batch_size + 1000 * n_in + n_out + (7 if draw == "wide" else 0)
    rng = np.random.default_rng(seed)
    make = _wide if draw == "wide" else _spread
    return (make(rng, (batch_size, n_in), dtype), make(rng, (n_in, n_out), dtype),
            make(rng, (batch_size, n_out), dtype), make(rng, (n_out,), dtype))


def _mine(operation, x, w, delta, b, caches, custom_contraction_kernel=True, onednn_family="avx512"):
    """(NumPy result, Numba result) of one operation in TensorFlow's order."""
    from gdcore.numerics import eigen

    products = {
        "matmul": (x, w, True, True),
        "matmul_grad_input": (delta, w.T, True, False),
        "matmul_grad_kernel": (x.T, delta, False, True),
        "dense_one_unit": (x, w, True, True),
    }
    if operation in products:
        args = products[operation]
        out = np.empty((args[0].shape[0], args[1].shape[1]), x.dtype)
        ep.launch_matmul_loop(*args, out, *caches, custom_contraction_kernel, onednn_family)
        numpy_result = ep.launch_matmul(*args, *caches, custom_contraction_kernel, onednn_family)
        if operation == "dense_one_unit":  # AddV2, one rounding per element
            return numpy_result + b, out + b
        return numpy_result, out
    # MatMul + BiasAdd in a tf.function: fused into _FusedMatMul in float32, two ops in float64.
    out = np.empty((x.shape[0], w.shape[1]), x.dtype)
    if x.dtype == np.float32:
        ep.fused_matmul_loop(x, w, b, out, *caches, custom_contraction_kernel, onednn_family)
        pre = ep.fused_matmul(x, w, b, *caches, custom_contraction_kernel, onednn_family)
    else:
        ep.launch_matmul_loop(x, w, True, True, out, *caches)
        out += b
        pre = ep.launch_matmul(x, w, True, True, *caches) + b
    if operation == "dense":
        return pre, out
    # The activation is not fused: Eigen's Sigmoid / Tanh on the flattened tensor.
    activation = {"dense_sigmoid": eigen.logistic_tensorflow, "dense_tanh": eigen.tanh_tensorflow}[operation]
    return activation(pre), activation(out)


# (rule, operation, batch sizes, n_in K, n_out N, draw). "spread": magnitudes 2^-8..2^8 as
# verify.py draws them; "wide": the designed inputs of _wide.
RULES = [
    ("contraction: rows by 2P, P, P/2, single rows", "matmul", (2, 3, 7, 16, 100), 8, (2, 3, 7, 8, 16, 17, 64),
     "spread"),
    ("contraction: rows by 2P, P, P/2, single rows", "matmul_grad_input", (2, 11, 33), (3, 16, 17), 8, "wide"),
    ("contraction: depth blocks kc (L1)", "matmul_grad_kernel", (257, 385, 609, 1000, 2000), 3, 8, "spread"),
    ("contraction: depth blocks kc (L1)", "matmul_grad_kernel", (769, 1217, 10000), 2, 2, "wide"),
    ("row-major GEMV: lanes, halving, half packet", "matmul", (2, 3, 7, 10, 11, 20, 100, 1000), (3, 8, 16, 17, 64), 1,
     "spread"),
    ("row-major GEMV: lanes, halving, half packet", "matmul_grad_input", (1,), (2, 17, 64), (9, 16, 17, 64), "wide"),
    ("column-major GEMV: blocks of 16 from d = 128", "matmul", (1,), (3, 17, 64), (2, 8, 17, 64), "spread"),
    ("column-major GEMV: blocks of 16 from d = 128", "matmul_grad_kernel", (20, 127, 128, 200, 2000), (1, 8), (1, 8),
     "spread"),
    ("lazy product and its vectorised redux", "matmul_grad_input", (1, 2, 3, 7), (1, 3), (3, 8, 15), "wide"),
    ("lazy product and its vectorised redux", "matmul", (1, 2, 3, 10), (3, 7), 1, "wide"),
    ("dot product (1 x 1 output)", "matmul", (1,), (18, 33, 64), 1, "wide"),
    ("dot product (1 x 1 output)", "matmul_grad_input", (1,), 1, (18, 33, 64), "wide"),
    ("outer product (depth 1)", "matmul", (11, 20, 1000), 1, (8, 17), "spread"),
    ("MatMul + BiasAdd in a tf.function", "dense", (1, 2, 3, 7, 16, 17, 100), (1, 3, 17), (1, 2, 8, 17), "spread"),
    ("MatMul + BiasAdd in a tf.function", "dense", (2, 20, 1000), 64, 1, "wide"),
    ("one unit: MatMul + AddV2", "dense_one_unit", (1, 2, 20, 100), (3, 17), 1, "spread"),
    ("activation after the product", "dense_sigmoid", (1, 20), (3,), (1, 8), "spread"),
    ("activation after the product", "dense_tanh", (2, 33), (3,), (8,), "spread"),
]
# Float32 only (what the custom kernel's blocks of one row / column add).
RULES_F32 = [
    ("custom kernel: a last block of one batch row", "matmul", (49,), 128, 64, "spread"),
    ("custom kernel: a last block of one batch row", "matmul", (289,), 128, (2, 8, 17), "spread"),
    ("custom kernel: a last block of one batch row", "matmul", (25,), 700, (7, 16), "spread"),
    ("custom kernel: one row and one column (1 x 1 block)", "dense", (49, 97), 256, 1, "spread"),
]

# Not reproduced: the thread pool splits these contractions (worst ulp measured on these inputs, 2 threads).
UNSOLVED = [
    (F64, "matmul_grad_kernel", 385, 64, 64, "Eigen's thread pool splits the contraction (20944 ulp)"),
    (F64, "matmul_grad_kernel", 1000, 64, 8, "Eigen's thread pool splits the contraction (640 ulp)"),
    (F32, "matmul_grad_kernel", 768, 64, 64, "Eigen's thread pool splits the contraction (7168 ulp)"),
    (F32, "matmul_grad_kernel", 2000, 64, 8, "Eigen's thread pool splits the contraction (768 ulp)"),
]


def _iter(value):
    return value if isinstance(value, tuple) else (value,)


def _cases(rules, dtype):
    """One case per (operation, B, K, N, draw); a shape listed under two rules runs once, under the first."""
    cases = {}
    for rule, operation, batches, ks, ns, draw in rules:
        for b in _iter(batches):
            for k in _iter(ks):
                for n in _iter(ns):
                    if not (operation == "dense_one_unit" and n != 1):
                        cases.setdefault((operation, b, k, n, draw), (rule, operation, b, k, n, draw))
    return list(cases.values())


CASES_F64 = _cases(RULES, F64)
CASES_F32 = _cases(RULES + RULES_F32, F32)


def _case_id(dtype, rule, operation, b, k, n, draw):
    return f"{np.dtype(dtype).name}-{operation}-B{b}-K{k}-N{n}-{draw}"


def _intra_op_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


_CHILD = '''
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np
import tensorflow as tf
if os.environ.get("GDCORE_TEST_INTRA_OP_THREADS"):
    tf.config.threading.set_intra_op_parallelism_threads(int(os.environ["GDCORE_TEST_INTRA_OP_THREADS"]))
exec({operations!r})
operations = tf_operations(tf)
data = np.load(sys.argv[1])
names = json.loads(sys.argv[3])
out = {{}}
for key, operation in names.items():
    out[key] = operations[operation](*(data[key + "/" + arg] for arg in ("x", "w", "delta", "b"))).numpy()
np.savez(sys.argv[2], **out)
'''


def _run_float32_subprocess(cases, tmp_path, extra_env):
    """TensorFlow's outputs for ``cases`` (list of (key, operation, arrays)) in a process without oneDNN.

    (float64 cases may be included: float64 never runs on oneDNN.)
    """
    inputs = {f"{key}/{name}": array
              for key, _, arrays in cases for name, array in zip(("x", "w", "delta", "b"), arrays)}
    names = {key: operation for key, operation, _ in cases}
    in_file, out_file = tmp_path / "inputs.npz", tmp_path / "outputs.npz"
    np.savez(in_file, **inputs)
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="0", TF_CPP_MIN_LOG_LEVEL="2", **extra_env)
    script = _CHILD.format(operations=_TF_OPERATIONS)
    result = subprocess.run([sys.executable, "-c", script, str(in_file), str(out_file), json.dumps(names)],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(out_file) as outputs:
        return {key: outputs[key] for key in outputs.files}


UNSOLVED_F32 = [case for case in UNSOLVED if case[0] == F32]
CONTRACTION_RULES = ("contraction", "MatMul", "custom")

# The float32 paths a CPU without oneDNN ops can take, each simulated in its own process:
# name -> (environment, CPU features it needs, custom_contraction_kernel, onednn_family, cases).
# ONEDNN_MAX_CPU_ISA limits the kernels oneDNN generates for the custom contraction kernel's dnnl_sgemm.
FLOAT32_PATHS = {
    "avx512": ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}, ("avx512f", "avx512bw", "avx512vl", "avx512dq"), True, "avx512",
               CASES_F32 + [("unsolved", op, b, k, n, "spread") for _, op, b, k, n, _ in UNSOLVED_F32]),
    "avx2": ({"ONEDNN_MAX_CPU_ISA": "AVX2"}, ("avx2", "fma"), True, "avx2", CASES_F32),
    "eigen-gebp": ({"TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL": "0"}, (), False, "avx512",
                   [case for case in CASES_F32 if case[0].startswith(CONTRACTION_RULES)]),
}


def _cpu_features() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return set(line.split(":", 1)[-1].split())


@pytest.fixture(scope="module")
def float32_reference(tmp_path_factory):
    """TensorFlow's float32 outputs on each simulated path, computed on first use (one subprocess per path)."""
    pytest.importorskip("tensorflow")
    outputs = {}

    def reference(path):
        environ, needs, _, _, cases = FLOAT32_PATHS[path]
        missing = [feature for feature in needs if feature not in _cpu_features()]
        if missing:
            pytest.skip(f"this CPU cannot run the {path} path: no {', '.join(missing)}")
        if path not in outputs:
            keyed = [(_case_id(F32, *case), case[1], _inputs(case[1], F32, *case[2:])) for case in cases]
            outputs[path] = _run_float32_subprocess(keyed, tmp_path_factory.mktemp(f"tf32-{path}"), environ)
        return outputs[path]

    return reference


def _check(case, dtype, theirs, custom_contraction_kernel=True, onednn_family="avx512"):
    rule, operation, b, k, n, draw = case
    x, w, delta, bias = _inputs(operation, dtype, b, k, n, draw)
    numpy_result, numba_result = _mine(operation, x, w, delta, bias, CACHES, custom_contraction_kernel, onednn_family)
    _assert_same_bits(numpy_result, numba_result, f"[{rule}] {operation} numpy vs numba")
    _assert_same_bits(numpy_result, theirs, f"[{rule}] {operation} mine vs tensorflow")


@pytest.mark.tensorflow
@pytest.mark.parametrize("case", CASES_F64, ids=[_case_id(F64, *c) for c in CASES_F64])
def test_float64_matches_tensorflow(case):
    tf = pytest.importorskip("tensorflow")
    namespace = {}
    exec(_TF_OPERATIONS, namespace)
    rule, operation, b, k, n, draw = case
    theirs = namespace["tf_operations"](tf)[operation](*_inputs(operation, F64, b, k, n, draw)).numpy()
    _check(case, F64, theirs)


FLOAT32_CASES = [pytest.param(path, case, id=f"{path}-{_case_id(F32, *case)}")
                 for path, (_, _, _, _, cases) in FLOAT32_PATHS.items() for case in cases if case[0] != "unsolved"]


@pytest.mark.tensorflow
@pytest.mark.slow
@pytest.mark.parametrize("path, case", FLOAT32_CASES)
def test_float32_without_onednn_matches_tensorflow(path, case, float32_reference):
    """Float32 with ``TF_ENABLE_ONEDNN_OPTS=0`` on each path: dnnl_sgemm for avx512 / avx2, or Eigen's GEBP."""
    _, _, custom_contraction_kernel, onednn_family, _ = FLOAT32_PATHS[path]
    _check(case, F32, float32_reference(path)[_case_id(F32, *case)], custom_contraction_kernel, onednn_family)


@pytest.mark.tensorflow
@pytest.mark.parametrize(
    "dtype, operation, b, k, n",
    [pytest.param(*case[:5], id=f"{np.dtype(case[0]).name}-{case[1]}-B{case[2]}-K{case[3]}-N{case[4]}",
                  marks=[pytest.mark.xfail(_intra_op_threads() >= 2, reason=case[5], strict=True)]
                  + ([pytest.mark.slow] if case[0] == F32 else []))
     for case in UNSOLVED],
)
def test_unsolved_shapes_are_reported(dtype, operation, b, k, n, request):
    case = ("unsolved", operation, b, k, n, "spread")
    if dtype == F32:
        theirs = request.getfixturevalue("float32_reference")("avx512")[_case_id(F32, *case)]
    else:
        tf = pytest.importorskip("tensorflow")
        namespace = {}
        exec(_TF_OPERATIONS, namespace)
        theirs = namespace["tf_operations"](tf)[operation](*_inputs(operation, F64, b, k, n, "spread")).numpy()
    _check(case, dtype, theirs)


@pytest.mark.tensorflow
@pytest.mark.slow
def test_unsolved_shapes_match_single_threaded(tmp_path):
    """With one intra-op thread (set before TensorFlow runs an op: a subprocess) the unsolved shapes match."""
    pytest.importorskip("tensorflow")
    cases = [(dtype, ("unsolved", op, b, k, n, "spread")) for dtype, op, b, k, n, _ in UNSOLVED]
    keyed = [(_case_id(dtype, *case), case[1], _inputs(case[1], dtype, *case[2:])) for dtype, case in cases]
    theirs = _run_float32_subprocess(keyed, tmp_path, {"GDCORE_TEST_INTRA_OP_THREADS": "1"})
    for dtype, case in cases:
        _check(case, dtype, theirs[_case_id(dtype, *case)])
