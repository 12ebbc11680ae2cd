"""oneDNN's AVX2 float32 products (``gdcore.numerics.onednn``, section "AVX2") against live TensorFlow.

oneDNN picks its kernels for the instruction set once, when TensorFlow starts,
so the checks run in one subprocess started with ``ONEDNN_MAX_CPU_ISA=AVX2`` and
``TF_ENABLE_ONEDNN_OPTS=1`` (and ``ONEDNN_VERBOSE=1``, whose start-up line proves
which ISA it used). For every case of ``CASES`` (one line per rule of the module
docstring) the NumPy function, its Numba ``*_loop`` twin and TensorFlow must give
the same bytes, with ``caches`` this machine's (``cpu_info().caches``); the
subprocess reports each case, and one pytest item per case asserts it. The
thread arithmetic on other machines is tested in ``test_onednn_avx512.py``.
"""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytestmark = [
    pytest.mark.tensorflow,
    pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="needs TensorFlow"),
]

# (operation, batch sizes, n_in, n_out, inputs, rule): where each rule of the AVX2 section is exercised.
# inputs: "random" spans 2^-8..2^8; "zeros" (``_with_zeros``) makes many sums have only -0 products.
CASES = [
    # forward: GEMV (B = 1), tree (N = 1), no-copy NN tiles
    ("matmul", (1,), 17, 7, "random", "B = 1: FMA-sequential GEMV"),
    ("matmul", (2, 11, 100), 17, 1, "random", "N = 1: matrix-vector tree"),
    ("matmul", (6, 7, 9, 20), 8, 16, "random", "16-column tiles: one FMA chain; 1- and 3-row tiles: two chains"),
    ("matmul", (2, 3, 7, 20), 8, 3, "random", "8-column tiles: two FMA chains; 1- and 2-row tiles: rounded products"),
    ("matmul", (33, 100), 17, 17, "random", "16 columns and an 8-column tail"),
    ("matmul", (73, 100), 3, 64, "random", "row blocks of 48: 73 in two halves, 100 = 48 + 52"),
    ("matmul", (4105,), 64, 64, "random", "above 1.01 L2: two threads share the rows"),
    # input gradient: tree (B = 1 or K = 1), no-copy TN
    ("matmul_grad_input", (1, 20), 8, 17, "random", "B = 1: tree over the kernel's rows"),
    ("matmul_grad_input", (2, 15, 100), 1, 8, "random", "K = 1: tree"),
    ("matmul_grad_input", (2, 7, 16, 150), 16, 4, "random", "no-copy TN: row blocks of 96 (150 in two halves)"),
    ("matmul_grad_input", (3, 20, 257), 3, 64, "random", "8-column tiles"),
    # kernel gradient: GEMV (K = 1 or N = 1), no-copy NT
    ("matmul_grad_kernel", (1, 20, 1000), 1, 8, "random", "K = 1: FMA-sequential GEMV"),
    ("matmul_grad_kernel", (8192, 8193), 64, 1, "random", "N = 1: the GEMV's depth in two halves from B = 8193"),
    ("matmul_grad_kernel", (11, 96, 192, 200, 1000), 3, 8, "random", "no-copy NT: depth blocks of 96"),
    ("matmul_grad_kernel", (385, 2000), 17, 16, "random", "depth blocks of 96, 16-column tiles"),
    # signed zeros: every kernel starts from +0
    ("matmul", (1, 3, 20, 100), 16, 17, "zeros", "+0: GEMV and every no-copy tile"),
    ("matmul", (2, 100), 16, 1, "zeros", "+0: tree (output zeroed, parts added onto it)"),
    ("matmul_grad_input", (1, 2, 20), 16, 17, "zeros", "+0: tree and no-copy TN"),
    ("matmul_grad_kernel", (20, 10000), 1, 16, "zeros", "+0: GEMV, whole and split"),
    ("matmul_grad_kernel", (20, 1000), 16, 17, "zeros", "+0: depth blocks"),
    # the Dense layer inside a tf.function: the fused inner product runs the same sgemm
    ("dense", (1, 7, 100), 8, 3, "random", "MatMul + BiasAdd fused: the same product, then the bias"),
    ("dense", (1, 7, 100), 8, 1, "zeros", "the bias added onto +0 (a -0 bias keeps the product's sign)"),
    ("dense_sigmoid", (1, 7, 20, 100), 3, 16, "random", "fused logistic: the AVX-512 kernel, unchanged"),
    ("dense_tanh", (1, 7, 20, 100), 3, 16, "random", "fused tanh: the AVX-512 kernel, unchanged"),
]

CASE_IDS = [f"{op}-B{b}-K{k}-N{n}-{inputs}" for op, batches, k, n, inputs, _ in CASES for b in batches]


def _spread(rng, shape):
    return (rng.standard_normal(shape) * 2.0 ** rng.integers(-8, 8, shape)).astype(np.float32)


def _signed_zeros(rng, shape):
    return np.where(rng.random(shape) < 0.5, np.float32(0.0), np.float32(-0.0)).astype(np.float32)


def _with_zeros(rng, inputs, kernel, delta, bias):
    """Copies in which many sums have only -0 products: zero rows and columns of ``inputs`` and zero rows of
    ``delta`` (the first ones and a quarter of the others) are +0, every weight is negative (its zeros -0);
    other entries are zero (either sign) at random, and half the biases are zeros of either sign. The
    kernel gradient takes ``-|delta|``."""
    inputs, delta, bias = inputs.copy(), delta.copy(), bias.copy()
    for values in (inputs, delta):
        hit = rng.random(values.shape) < 0.125
        values[hit] = _signed_zeros(rng, values.shape)[hit]
        rows = rng.random(values.shape[0]) < 0.25
        rows[0] = True
        values[rows] = 0.0
    cols = rng.random(inputs.shape[1]) < 0.25
    cols[0] = True
    inputs[:, cols] = 0.0
    kernel = kernel.copy()
    hit = rng.random(kernel.shape) < 0.125
    kernel[hit] = 0.0
    hit = rng.random(bias.shape) < 0.5
    bias[hit] = _signed_zeros(rng, bias.shape)[hit]
    return inputs, -np.abs(kernel), delta, bias


def _difference(mine, theirs, what):
    """'' if ``mine`` and ``theirs`` have the same bytes, else a message with the first difference."""
    mine = np.ascontiguousarray(mine, np.float32)
    theirs = np.ascontiguousarray(theirs, np.float32)
    if mine.shape != theirs.shape:
        return f"{what}: shape {mine.shape} vs tensorflow {theirs.shape}"
    bad = np.flatnonzero(mine.view(np.int32) != theirs.view(np.int32))
    if bad.size == 0:
        return ""
    return (f"{what}: {bad.size}/{mine.size} values differ; first at flat index {bad[0]}: "
            f"mine {mine.ravel()[bad[0]]!r} vs tensorflow {theirs.ravel()[bad[0]]!r}")


def _run(tf, graphs, caches, operation, batch_size, n_in, n_out, inputs_kind):
    """(NumPy result, Numba result, TensorFlow result) of one case, in the subprocess."""
    from gdcore.numerics import onednn

    rng = np.random.default_rng(1000 * batch_size + 10 * n_in + n_out)
    inputs = _spread(rng, (batch_size, n_in))
    kernel = _spread(rng, (n_in, n_out))
    delta = _spread(rng, (batch_size, n_out))
    bias = _spread(rng, (n_out,))
    if inputs_kind == "zeros":
        inputs, kernel, delta, bias = _with_zeros(rng, inputs, kernel, delta, bias)
    if operation == "matmul_grad_input":
        out = np.empty((batch_size, n_in), np.float32)
        onednn.matmul_grad_input_avx2_loop(delta, kernel, out, caches)
        return (onednn.matmul_grad_input_avx2(delta, kernel, caches), out,
                tf.linalg.matmul(delta, kernel, transpose_b=True).numpy())
    if operation == "matmul_grad_kernel":
        delta = -np.abs(delta) if inputs_kind == "zeros" else delta  # zero columns of inputs times negatives
        out = np.empty((n_in, n_out), np.float32)
        onednn.matmul_grad_kernel_avx2_loop(inputs, delta, out, caches)
        return (onednn.matmul_grad_kernel_avx2(inputs, delta, caches), out,
                tf.linalg.matmul(inputs, delta, transpose_a=True).numpy())
    out = np.empty((batch_size, n_out), np.float32)
    onednn.matmul_avx2_loop(inputs, kernel, out, caches)
    if operation == "matmul":
        return onednn.matmul_avx2(inputs, kernel, caches), out, tf.linalg.matmul(inputs, kernel).numpy()
    out += bias
    activation, forward, loop = {
        "dense": (None, None, None),
        "dense_sigmoid": (tf.math.sigmoid, onednn.logistic, onednn.logistic_loop),
        "dense_tanh": (tf.math.tanh, onednn.tanh, onednn.tanh_loop),
    }[operation]
    if operation not in graphs:
        graphs[operation] = tf.function(
            (lambda x, w, b: tf.nn.bias_add(tf.linalg.matmul(x, w), b)) if activation is None
            else (lambda x, w, b: activation(tf.nn.bias_add(tf.linalg.matmul(x, w), b))), reduce_retracing=True)
    pre = onednn.matmul_avx2(inputs, kernel, caches) + bias
    if loop is not None:
        loop(out)
    return pre if forward is None else forward(pre), out, graphs[operation](inputs, kernel, bias).numpy()


def _check_all():
    """Every case and the two sanity checks, in a process TensorFlow started with ``ONEDNN_MAX_CPU_ISA=AVX2``."""
    import tensorflow as tf

    from gdcore.numerics import onednn
    from gdcore.numerics.machine import cpu_info

    caches = cpu_info().caches
    graphs = {}
    report = {}
    for operation, batches, n_in, n_out, inputs_kind, _ in CASES:
        for batch_size in batches:
            mine, loop, theirs = _run(tf, graphs, caches, operation, batch_size, n_in, n_out, inputs_kind)
            report[f"{operation}-B{batch_size}-K{n_in}-N{n_out}-{inputs_kind}"] = (
                _difference(mine, loop, f"{operation} numpy vs numba")
                or _difference(mine, theirs, f"{operation} vs tensorflow"))
    # oneDNN's eltwise kernels alone, through a fused layer whose product is exact (a ones kernel).
    rng = np.random.default_rng(7)
    kernel = np.ones((1, 16), np.float32)
    for name, activation, forward in (("sigmoid", tf.math.sigmoid, onednn.logistic), ("tanh", tf.math.tanh, onednn.tanh)):
        layer = tf.function(lambda x, w, b: activation(tf.nn.bias_add(tf.linalg.matmul(x, w), b)))
        for scale in (1e-4, 0.01, 1.0, 10.0, 100.0):
            x = (rng.standard_normal((512, 1)) * scale).astype(np.float32)
            bias = (rng.standard_normal(16) * scale).astype(np.float32)
            report[f"eltwise-{name}-{scale}"] = _difference(forward(x * kernel + bias), layer(x, kernel, bias).numpy(),
                                                            f"onednn.{name} at scale {scale}")
    # A row that sums to 1 FMA-sequentially (the AVX-512 rule) and to 2 by even/odd accumulators.
    x = np.tile(np.array([2.0**24, 1, -(2.0**24), 1], np.float32), (6, 1))
    w = np.ones((4, 3), np.float32)
    theirs = tf.linalg.matmul(x, w).numpy()
    report["revealing"] = {"tensorflow": theirs[0, 0].item(), "avx2": onednn.matmul_avx2(x, w, caches)[0, 0].item(),
                           "avx512": onednn.dot_fma(x, w)[0, 0].item()}
    return report


_MARK = "AVX2-REPORT "
_SCRIPT = """
import json, sys
sys.path.insert(0, {tests!r})
import test_onednn_avx2 as t
report = t._check_all()
print({mark!r} + json.dumps(report), flush=True)
"""


@pytest.fixture(scope="module")
def avx2_run():
    """(report, stdout) of one subprocess in which TensorFlow's oneDNN runs its AVX2 kernels."""
    env = dict(os.environ, ONEDNN_MAX_CPU_ISA="AVX2", TF_ENABLE_ONEDNN_OPTS="1", ONEDNN_VERBOSE="1",
               TF_CPP_MIN_LOG_LEVEL="2")
    script = _SCRIPT.format(tests=os.path.dirname(os.path.abspath(__file__)), mark=_MARK)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, env=env)
    lines = [line for line in result.stdout.splitlines() if line.startswith(_MARK)]
    assert result.returncode == 0 and lines, f"subprocess failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return json.loads(lines[-1][len(_MARK):]), result.stdout


def test_subprocess_ran_onednn_avx2(avx2_run):
    """oneDNN says so at start-up, the products went through its sgemm, and the AVX-512 rule fails where AVX2 differs."""
    report, stdout = avx2_run
    assert "cpu,isa:Intel AVX2" in stdout, [line for line in stdout.splitlines() if ",isa:" in line]
    assert ",gemm_api," in stdout and "inner_product,x64:gemm:jit" in stdout
    revealing = report["revealing"]
    assert revealing["tensorflow"] == revealing["avx2"] == 2.0, revealing
    assert revealing["avx512"] == 1.0, revealing


@pytest.mark.parametrize("case", CASE_IDS)
def test_avx2_products_match_tensorflow(avx2_run, case):
    report, _ = avx2_run
    assert report[case] == "", report[case]


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_avx2_fused_activations_are_the_avx512_kernels(avx2_run, name):
    report, _ = avx2_run
    failures = [message for key, message in report.items() if key.startswith(f"eltwise-{name}-") and message]
    assert not failures, failures
