"""The ``"tensorflow"`` profile and its kernels against live TensorFlow, bit for bit.

Every rule of ``gdcore.numerics._tensorflow`` (and the oneDNN / Eigen kernels it
uses) is checked on the shapes where it was verified: the NumPy function, its
Numba ``*_loop`` twin and the TensorFlow op must give the same bytes. The cases
that are not reproduced (they depend on how TensorFlow splits work between
threads) are listed in ``test_unsolved_shapes_are_reported`` as strict expected
failures on a multi-threaded TensorFlow, so that a rule found later shows up as
an unexpected pass; ``test_rules_hold_single_threaded`` runs them again with one
intra-op thread, where they match.
"""

import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numba  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from gdcore.numerics import _tensorflow, eigen, machine, onednn  # noqa: E402

tf = pytest.importorskip("tensorflow")

pytestmark = pytest.mark.tensorflow

DTYPES = [np.float32, np.float64]
F32, F64 = [np.float32], [np.float64]


def _spread(rng, shape, dtype):
    return (rng.standard_normal(shape) * 2.0 ** rng.integers(-8, 8, shape)).astype(dtype)


def _assert_same_bits(mine, theirs, what):
    mine = np.asarray(mine)
    theirs = np.asarray(theirs, dtype=mine.dtype)
    assert mine.shape == theirs.shape, f"{what}: shape {mine.shape} vs {theirs.shape}"
    differ = mine.reshape(-1).view(np.uint8).reshape(mine.size, -1) != theirs.reshape(-1).view(np.uint8).reshape(
        theirs.size, -1
    )
    bad = np.flatnonzero(differ.any(axis=1))
    assert bad.size == 0, (
        f"{what}: {bad.size}/{mine.size} values differ; first at flat index {bad[0]}: "
        f"mine {mine.ravel()[bad[0]]!r} vs tensorflow {theirs.ravel()[bad[0]]!r}"
    )


def _intra_op_threads() -> int:
    """The size of TensorFlow's intra-op thread pool in this process (0 means one per schedulable CPU)."""
    configured = tf.config.threading.get_intra_op_parallelism_threads()
    return configured or len(os.sched_getaffinity(0))


_DENSE = {}


def _dense_in_graph(activation):
    """A Dense layer as Keras's compiled step runs it: ``activation(x @ w + b)`` in a ``tf.function``.

    Keras's Dense adds the bias with AddV2 (``ops.add``), not BiasAdd: without
    oneDNN, TensorFlow fuses MatMul + BiasAdd of one unit into a contraction,
    and MatMul + AddV2 of one unit stays a matrix-vector product plus a sum.
    """
    if activation not in _DENSE:
        _DENSE[activation] = tf.function(lambda x, w, b: activation(tf.linalg.matmul(x, w) + b))
    return _DENSE[activation]


def _run(operation, dtype, batch_size, n_in, n_out, seed=0):
    """(numpy result, numba result, tensorflow result) of one profile operation on random inputs."""
    rng = np.random.default_rng(seed + 1000 * batch_size + 10 * n_in + n_out)
    inputs = _spread(rng, (batch_size, n_in), dtype)
    kernel = _spread(rng, (n_in, n_out), dtype)
    delta = _spread(rng, (batch_size, n_out), dtype)
    p = _tensorflow
    if operation == "matmul":
        out = np.empty((batch_size, n_out), dtype)
        p.matmul_loop(inputs, kernel, out)
        return p.matmul(inputs, kernel), out, tf.linalg.matmul(inputs, kernel).numpy()
    if operation == "dense":  # the forward pass: product, then the bias (MatMul + BiasAdd, run eagerly)
        bias = _spread(rng, (n_out,), dtype)
        out = np.empty((batch_size, n_out), dtype)
        p.dense_loop(inputs, kernel, bias, out)
        return p.matmul(inputs, kernel) + bias, out, tf.nn.bias_add(tf.linalg.matmul(inputs, kernel), bias).numpy()
    if operation == "matmul_grad_input":
        out = np.empty((batch_size, n_in), dtype)
        p.matmul_grad_input_loop(delta, kernel, out)
        return p.matmul_grad_input(delta, kernel), out, tf.linalg.matmul(delta, kernel, transpose_b=True).numpy()
    if operation == "matmul_grad_kernel":
        out = np.empty((n_in, n_out), dtype)
        p.matmul_grad_kernel_loop(inputs, delta, out)
        return p.matmul_grad_kernel(inputs, delta), out, tf.linalg.matmul(inputs, delta, transpose_a=True).numpy()
    if operation == "sum_vector":
        column = np.ascontiguousarray(delta[:, 0])
        return p.sum_vector(column), p.sum_vector_loop(column), tf.reduce_sum(column).numpy()
    if operation == "sum_columns":  # the bias gradient of a Dense layer with n_out units
        out = np.empty(n_out, dtype)
        p.sum_columns_loop(delta, out)
        reference = tf.reduce_sum(delta, axis=0) if n_out == 1 else tf.raw_ops.BiasAddGrad(out_backprop=delta)
        return p.sum_columns(delta), out, reference.numpy()
    if operation == "reduce_sum_rows":
        out = np.empty(n_out, dtype)
        p.reduce_sum_rows_loop(delta, out)
        return p.reduce_sum_rows(delta), out, tf.reduce_sum(delta, axis=0).numpy()
    if operation in ("dense_sigmoid", "dense_tanh"):
        bias = _spread(rng, (n_out,), dtype)
        pre = np.ascontiguousarray(p.matmul(inputs, kernel) + bias)
        forward, loop, activation = {
            "dense_sigmoid": (p.sigmoid, p.sigmoid_loop, tf.math.sigmoid),
            "dense_tanh": (p.tanh, p.tanh_loop, tf.math.tanh),
        }[operation]
        out = pre.copy()
        loop(out)
        return forward(pre), out, _dense_in_graph(activation)(inputs, kernel, bias).numpy()
    raise ValueError(operation)


# TensorFlow's float32 products run on oneDNN or on Eigen, depending on the CPU and its environment
_EIGEN_FLOAT32 = machine.cpu_info().float32_products.startswith("eigen")

# (operation, batch sizes, n_in, n_out, dtypes) where the rule is verified (module docstring of _tensorflow).
SOLVED = [
    # forward: float32 FMA-sequential (N >= 2 or B == 1) / matrix-vector tree (N == 1); float64 Eigen dispatch
    ("matmul", (1, 2, 11, 20, 100, 1000), 8, 3, DTYPES),
    ("matmul", (1, 2, 11, 20, 100, 1000), 3, 8, DTYPES),
    ("matmul", (1, 11, 20, 100), 64, 16, DTYPES),
    ("matmul", (1, 11, 20, 100), 17, 64, DTYPES),
    ("matmul", (1, 2, 7, 20, 100), 5, 7, DTYPES),
    ("matmul", (1, 2, 7, 20, 100), 9, 2, DTYPES),
    ("matmul", (1, 2, 3, 7, 10, 11, 20, 100, 1000), 8, 1, DTYPES),
    ("matmul", (1, 2, 3, 7, 10, 11, 20, 100, 1000), 3, 1, DTYPES),
    ("matmul", (1, 2, 20, 100), 17, 1, DTYPES),
    ("matmul", (1, 2, 20, 100, 1000), 64, 1, DTYPES),
    ("matmul", (1, 20, 1000), 1, 8, DTYPES),
    ("dense", (1, 3, 20, 100), 8, 1, DTYPES),
    ("dense", (1, 3, 20, 100), 1, 8, DTYPES),
    ("dense", (7, 20), 5, 7, DTYPES),
    # input gradient: float32 tree (B == 1) / sixteen lanes (B < 16) / FMA (B >= 16); float64 Eigen
    ("matmul_grad_input", (1, 2, 7, 15, 16, 20, 100, 1000), 8, 1, DTYPES),
    ("matmul_grad_input", (1, 2, 7, 15, 16, 20, 100, 1000), 3, 8, DTYPES),
    ("matmul_grad_input", (1, 2, 15, 16, 20, 100), 16, 8, DTYPES),
    ("matmul_grad_input", (1, 2, 15, 16, 100), 64, 17, DTYPES),
    ("matmul_grad_input", (1, 2, 15, 16, 100), 8, 64, DTYPES),
    ("matmul_grad_input", (1, 2, 15, 16, 20, 100), 1, 8, DTYPES),
    ("matmul_grad_input", (1, 2, 15, 16, 20, 100), 1, 64, DTYPES),
    # kernel gradient: float32 FMA in depth blocks of 384; float64 contraction (kc blocks) or GEMV
    ("matmul_grad_kernel", (1, 2, 11, 20, 100, 257), 8, 3, DTYPES),
    ("matmul_grad_kernel", (1, 2, 11, 20, 100, 257), 3, 8, DTYPES),
    ("matmul_grad_kernel", (1, 11, 20, 100, 257), 16, 64, DTYPES),
    ("matmul_grad_kernel", (1, 11, 20, 127, 128, 200, 1000), 8, 1, DTYPES),
    ("matmul_grad_kernel", (1, 11, 20, 127, 128, 200, 1000), 1, 8, DTYPES),
    ("matmul_grad_kernel", (385, 768, 769, 1000, 2000), 3, 8, DTYPES),
    # on Eigen's float32 path (no oneDNN) the batch of 2000 is split between threads: UNSOLVED below
    ("matmul_grad_kernel", (1000, 2000) if not _EIGEN_FLOAT32 else (1000,), 64, 16, F32),
    ("matmul_grad_kernel", (1000, 5000), 1, 1, DTYPES),
    # reductions
    ("sum_vector", (1, 2, 7, 11, 20, 31, 32, 33, 100, 1000, 4097, 8193, 10000, 33333), 1, 1, DTYPES),
    ("sum_columns", (1, 2, 7, 11, 20, 33, 100, 1000, 10000), 1, 1, DTYPES),
    ("sum_columns", (1, 2, 7, 16, 20, 33, 100, 1000), 1, 8, DTYPES),
    ("sum_columns", (1, 2, 20, 100, 1000), 1, 3, DTYPES),
    ("sum_columns", (1, 2, 20, 100, 1000), 1, 64, DTYPES),
    ("reduce_sum_rows", (2, 7, 15, 16, 17, 20, 33, 100, 1000), 1, 8, DTYPES),
    ("reduce_sum_rows", (2, 15, 16, 20, 100, 1000), 1, 3, DTYPES),
    ("reduce_sum_rows", (2, 15, 16, 20, 100, 1000), 1, 17, DTYPES),
    # Dense layer activations as the compiled step runs them (fused into oneDNN in float32)
    ("dense_sigmoid", (1, 2, 20, 100), 1, 8, DTYPES),
    ("dense_sigmoid", (1, 20, 30), 3, 16, DTYPES),
    ("dense_sigmoid", (1, 20), 8, 1, DTYPES),
    ("dense_tanh", (1, 2, 20, 100), 1, 8, DTYPES),
    ("dense_tanh", (1, 20, 30), 3, 64, DTYPES),
]

CASES = [
    pytest.param(op, b, k, n, dt, id=f"{op}-{np.dtype(dt).name}-B{b}-K{k}-N{n}")
    for op, batches, k, n, dtypes in SOLVED
    for b in batches
    for dt in dtypes
]


@pytest.mark.parametrize("operation, batch_size, n_in, n_out, dtype", CASES)
def test_profile_matches_tensorflow(operation, batch_size, n_in, n_out, dtype):
    numpy_result, numba_result, reference = _run(operation, dtype, batch_size, n_in, n_out)
    _assert_same_bits(numpy_result, numba_result, f"{operation} numpy vs numba")
    _assert_same_bits(numpy_result, reference, f"{operation} vs tensorflow")


# Not reproduced with several intra-op threads (module docstring of _tensorflow); the worst
# distance is the one measured on this test's inputs with 2 threads.
UNSOLVED = [
    ("matmul_grad_kernel", np.float64, 385, 64, 64, "Eigen's thread-pool contraction blocks the batch per thread (17472 ulp)"),
    ("matmul_grad_kernel", np.float64, 1000, 64, 8, "Eigen's thread-pool contraction blocks the batch per thread (960 ulp)"),
    ("sum_columns", np.float32, 5000, 1, 64, "BiasAddGrad splits the rows between threads (368 ulp)"),
    ("sum_columns", np.float64, 5000, 1, 64, "BiasAddGrad splits the rows between threads (308 ulp)"),
] + ([
    ("matmul_grad_kernel", np.float32, 2000, 64, 16, "Eigen's thread-pool contraction blocks the batch per thread (2176 ulp; 2560 with its generic kernel)"),
] if _EIGEN_FLOAT32 else [])


@pytest.mark.parametrize(
    "operation, dtype, batch_size, n_in, n_out",
    [
        pytest.param(*case[:5], id=f"{case[0]}-{np.dtype(case[1]).name}-B{case[2]}-K{case[3]}-N{case[4]}",
                     marks=pytest.mark.xfail(_intra_op_threads() >= 2, reason=case[5], strict=True))
        for case in UNSOLVED
    ],
)
def test_unsolved_shapes_are_reported(operation, dtype, batch_size, n_in, n_out):
    numpy_result, numba_result, reference = _run(operation, dtype, batch_size, n_in, n_out)
    _assert_same_bits(numpy_result, numba_result, f"{operation} numpy vs numba")
    _assert_same_bits(numpy_result, reference, f"{operation} vs tensorflow")


_SINGLE_THREADED = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(1)
sys.path.insert(0, {tests!r})
import numpy as np
import test_numerics_tensorflow as t
failures = []
for operation, dtype, b, k, n, _ in t.UNSOLVED:
    mine, _, theirs = t._run(operation, dtype, b, k, n)
    if np.asarray(mine).tobytes() != np.asarray(theirs, dtype=np.asarray(mine).dtype).tobytes():
        failures.append((operation, np.dtype(dtype).name, b, k, n))
print(failures)
sys.exit(1 if failures else 0)
"""


def test_rules_hold_single_threaded():
    """With one intra-op thread (set before TensorFlow starts: a subprocess) the unsolved cases match."""
    script = _SINGLE_THREADED.format(tests=os.path.dirname(__file__))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"single-threaded mismatches: {result.stdout}\n{result.stderr[-2000:]}"


# --- building blocks ---------------------------------------------------------------


@numba.njit
def _fma_compiled(x, y, acc, out):
    for i in range(x.size):
        out[i] = onednn.fma(x[i], y[i], acc[i])


def test_fma_emulation_matches_the_fma_instruction():
    rng = np.random.default_rng(0)
    n = 200_000
    x = (rng.standard_normal(n) * 2.0 ** rng.integers(-20, 20, n)).astype(np.float32)
    y = (rng.standard_normal(n) * 2.0 ** rng.integers(-20, 20, n)).astype(np.float32)
    # Addends that nearly cancel the product, where a double rounding would show.
    acc = (-(x.astype(np.float64) * y) * (1 + rng.standard_normal(n) * 2.0 ** rng.integers(-30, 0, n))).astype(np.float32)
    # Double-rounding traps: x y = 2^-24 (1 - a^2) just below half an ulp of acc = 1 + 2^-23, so the
    # float64 sum rounds onto the float32 midpoint (and would then round to even, up), while the
    # exact sum is below it (and rounds down).
    a = np.arange(1, 41, dtype=np.float32) * np.float32(2.0**-20)
    trap_x = np.float32(2.0**-12) * (1 + a)
    trap_y = np.float32(2.0**-12) * (1 - a)
    trap_acc = np.full(a.size, np.float32(1.0) + np.float32(2.0**-23))
    x = np.concatenate([x, trap_x, -trap_x])
    y = np.concatenate([y, trap_y, trap_y])
    acc = np.concatenate([acc, trap_acc, -trap_acc])
    out = np.empty_like(x)
    _fma_compiled(x, y, acc, out)
    _assert_same_bits(onednn.fma(x, y, acc), out, "fma emulation vs llvm.fma.f32")
    exact = (x.astype(np.float64) * y.astype(np.float64) + acc.astype(np.float64)).astype(np.float32)
    assert np.count_nonzero(exact != out) > 0, "the inputs should include double-rounding cases"


def _activation_inputs(dtype, size, seed):
    rng = np.random.default_rng(seed)
    special = [0.0, -0.0, 1e-30, -1e-30, 1e-40, 7.9, 7.91, 8.0, -8.0, 9.0, 9.02, 17.7, 17.72, 20.0, -20.0, 90.0, -90.0]
    values = np.concatenate([rng.uniform(-20.0, 20.0, size), rng.standard_normal(size) * 10.0 ** rng.uniform(-8, 1, size), special])
    return values.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_tanh_packet_and_scalar_paths_match_tensorflow(dtype):
    z = _activation_inputs(dtype, 100_000, seed=1)
    whole = z[: z.size - z.size % eigen.packet_size(dtype)]
    _assert_same_bits(eigen.tanh(whole), tf.math.tanh(whole).numpy(), "tanh (packet)")
    tail = z[::997]
    theirs = np.array([tf.math.tanh(tail[i : i + 1]).numpy()[0] for i in range(tail.size)], dtype=dtype)
    _assert_same_bits(eigen.tanh_scalar(tail), theirs, "tanh (scalar tail)")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (1, 3), (11, 3), (20, 8), (33, 64), (1001, 3)])
def test_tanh_whole_tensor_and_gradient_match_tensorflow(dtype, shape):
    rng = np.random.default_rng(shape[0] * shape[1])
    z = (rng.uniform(-1, 1, shape) * 10.0 ** rng.uniform(-3, 1.3, shape)).astype(dtype)
    reference = tf.math.tanh(z).numpy()
    out = z.copy()
    eigen.tanh_tensorflow_loop(out)
    _assert_same_bits(eigen.tanh_tensorflow(z), reference, "tanh_tensorflow")
    _assert_same_bits(out, reference, "tanh_tensorflow_loop")
    dy = _spread(rng, shape, dtype)
    gradient = tf.raw_ops.TanhGrad(y=reference, dy=dy).numpy()
    out = dy.copy()
    eigen.tanh_grad_tensorflow_loop(reference, out)
    _assert_same_bits(eigen.tanh_grad_tensorflow(reference, dy), gradient, "tanh_grad_tensorflow")
    _assert_same_bits(out, gradient, "tanh_grad_tensorflow_loop")


@pytest.mark.parametrize("dtype", DTYPES)
def test_tanh_numba_scalars_match_numpy(dtype):
    z = _activation_inputs(dtype, 5000, seed=3)
    compiled = numba.njit(eigen.tanh)
    _assert_same_bits(np.array([compiled(v) for v in z], dtype=dtype), eigen.tanh(z), "njit(tanh)")


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "elu", "silu"])
def test_fused_float32_activations_match_a_compiled_dense_layer(name):
    """This machine's logistic, tanh, elu and swish over eight decades of pre-activations, through a real compiled Dense.

    With oneDNN, TensorFlow fuses the activation into the MatMul (oneDNN's
    kernels; x * sigmoid(x) becomes its swish); on Eigen's float32 path it
    runs Eigen's packet kernels.
    """
    from gdcore import activations

    rng = np.random.default_rng(7)
    if _EIGEN_FLOAT32:
        elu, silu = (_tensorflow.positioned(a.forward, a.tail_forward) for a in (activations.ELU, activations.SILU))
        mine, loop = {"sigmoid": (eigen.logistic_tensorflow, eigen.logistic_tensorflow_loop),
                      "tanh": (eigen.tanh, eigen.tanh_tensorflow_loop),
                      "elu": (elu, _tensorflow.positioned_loops(activations.ELU)[0]),
                      "silu": (silu, _tensorflow.positioned_loops(activations.SILU)[0])}[name]
    else:
        mine, loop = {"sigmoid": (onednn.logistic, onednn.logistic_loop), "tanh": (onednn.tanh, onednn.tanh_loop),
                      "elu": (onednn.elu, onednn.elu_loop), "silu": (onednn.swish, onednn.swish_loop)}[name]
    activation = {"sigmoid": tf.math.sigmoid, "tanh": tf.math.tanh, "elu": tf.nn.elu, "silu": tf.nn.silu}[name]
    kernel = np.ones((1, 16), np.float32)
    for scale in (1e-6, 1e-4, 1e-3, 0.01, 0.1, 1.0, 3.0, 10.0, 30.0, 100.0):
        x = (rng.standard_normal((512, 1)) * scale).astype(np.float32)
        bias = (rng.standard_normal(16) * scale).astype(np.float32)  # a zero bias would be optimized away
        reference = _dense_in_graph(activation)(x, kernel, bias).numpy()
        pre = x * kernel + bias
        out = pre.copy()
        loop(out)
        _assert_same_bits(mine(pre), reference, f"{name} at scale {scale}")
        _assert_same_bits(out, reference, f"{loop.__name__} at scale {scale}")


def test_eager_dense_layer_is_not_fused():
    """Outside a tf.function the same layer runs Eigen's kernels: the profile follows the compiled step."""
    rng = np.random.default_rng(8)
    x, kernel, bias = rng.standard_normal((256, 1)).astype(np.float32), np.ones((1, 8), np.float32), rng.standard_normal(8).astype(np.float32)
    eager = tf.math.sigmoid(tf.nn.bias_add(tf.linalg.matmul(x, kernel), bias)).numpy()
    pre = x * kernel + bias
    _assert_same_bits(eigen.logistic_tensorflow(pre), eager, "eager sigmoid")
    assert not np.array_equal(onednn.logistic(pre), eager)


# --- logistic ---------------------------------------------------------------------


def _logistic_inputs(dtype, size, seed):
    rng = np.random.default_rng(seed)
    special = [0.0, -0.0, np.inf, -np.inf, -104.0, -103.99, -87.5, 16.6355324, 17.0, 30.0, -708.5, -745.5, -746.0, 709.79, 1e30, -1e30]
    values = np.concatenate(
        [rng.uniform(-100.0, 100.0, size), rng.uniform(-20.0, 20.0, size), rng.standard_normal(size) * 1e-3, special]
    )
    return values.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_logistic_packet_path_matches_tensorflow(dtype):
    z = _logistic_inputs(dtype, 300_000, seed=1)
    z = z[: z.size - z.size % eigen.packet_size(dtype)]  # whole packets only
    _assert_same_bits(eigen.logistic(z), tf.math.sigmoid(z).numpy(), "logistic (packet)")


@pytest.mark.parametrize("dtype", DTYPES)
def test_logistic_scalar_path_matches_tensorflow(dtype):
    # A one-element tensor is all tail: Eigen's scalar operator().
    z = _logistic_inputs(dtype, 150, seed=2)
    theirs = np.array([tf.math.sigmoid(z[i : i + 1]).numpy()[0] for i in range(z.size)], dtype=dtype)
    _assert_same_bits(eigen.logistic_scalar(z), theirs, "logistic (scalar tail)")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (1, 3), (11, 3), (20, 8), (100, 16), (33, 64), (1001, 3)])
def test_logistic_whole_tensor_matches_tensorflow(dtype, shape):
    rng = np.random.default_rng(shape[0] * shape[1])
    z = (rng.uniform(-1, 1, shape) * 10.0 ** rng.uniform(-3, 2, shape)).astype(dtype)
    reference = tf.math.sigmoid(z).numpy()
    out = z.copy()
    eigen.logistic_tensorflow_loop(out)
    _assert_same_bits(eigen.logistic_tensorflow(z), reference, "logistic_tensorflow")
    _assert_same_bits(out, reference, "logistic_tensorflow_loop")

    dy = _spread(rng, shape, dtype)
    reference = tf.raw_ops.SigmoidGrad(y=reference, dy=dy).numpy()
    y = tf.math.sigmoid(z).numpy()
    out = dy.copy()
    eigen.logistic_grad_tensorflow_loop(y, out)
    _assert_same_bits(eigen.logistic_grad_tensorflow(y, dy), reference, "logistic_grad_tensorflow")
    _assert_same_bits(out, reference, "logistic_grad_tensorflow_loop")


@pytest.mark.parametrize("dtype", DTYPES)
def test_logistic_numba_scalars_match_numpy(dtype):
    z = _logistic_inputs(dtype, 2000, seed=3)
    packet, scalar = numba.njit(eigen.logistic), numba.njit(eigen.logistic_scalar)
    grad = numba.njit(eigen.logistic_grad)
    y = eigen.logistic(z)
    dy = _spread(np.random.default_rng(4), z.shape, dtype)
    _assert_same_bits(np.array([packet(v) for v in z], dtype=dtype), y, "njit(logistic)")
    _assert_same_bits(np.array([scalar(v) for v in z], dtype=dtype), eigen.logistic_scalar(z), "njit(logistic_scalar)")
    _assert_same_bits(np.array([grad(a, b) for a, b in zip(y, dy)], dtype=dtype), eigen.logistic_grad(y, dy), "njit(logistic_grad)")
    numba_type = numba.from_dtype(np.dtype(dtype))
    assert packet.nopython_signatures[0].return_type == numba_type


def test_verify_reports_one_row_per_group():
    from gdcore.numerics.verify import format_report, verify_tensorflow_profile

    df = verify_tensorflow_profile(n_trials=1, dtypes=("float64",), shapes=[(11, 8, 1), (20, 1, 8)])
    assert list(df.columns) == ["operation", "dtype", "shape_group", "cases", "bit_identical", "max_ulp"]
    row = df[(df.operation == "logistic") & (df.shape_group == "11<=B<=100, N=1")].iloc[0]
    assert row.bit_identical == row.cases
    assert (df.bit_identical == df.cases).all()
    assert "groups bit-identical" in format_report(df)
