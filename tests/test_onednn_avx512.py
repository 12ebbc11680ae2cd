"""oneDNN's AVX-512 float32 products (``gdcore.numerics.onednn``, section "AVX-512") against live TensorFlow.

oneDNN picks its kernels for the instruction set once, when TensorFlow starts,
so the live checks run in one subprocess started with ``TF_ENABLE_ONEDNN_OPTS=1``
and no ``ONEDNN_MAX_CPU_ISA`` limit (and ``ONEDNN_VERBOSE=1``, whose start-up
line proves which ISA it used). For every case of ``CASES`` (one line per rule
of the module docstring) the NumPy function, its Numba ``*_loop`` twin and
TensorFlow must give the same bytes, with ``caches`` this machine's
(``cpu_info().caches``). They are skipped on a CPU without AVX-512.

The thread rules are plain arithmetic on a :class:`~gdcore.numerics.machine.Caches`:
the tests at the end work them by hand for other machines (a 1 MiB L2, 1 and
4 threads) and need no TensorFlow.
"""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from gdcore.numerics import onednn
from gdcore.numerics.machine import Caches, cpu_info

# oneDNN's avx512_core needs all four (cpu_isa_traits.hpp); cpu_info() reads them as Xbyak does.
_AVX512_CORE = ("avx512f", "avx512bw", "avx512vl", "avx512dq")
_MISSING = [name for name in _AVX512_CORE if name not in cpu_info().features]



def _live(test):
    """Mark a test that compares against TensorFlow running oneDNN's AVX-512 kernels on this CPU."""
    test = pytest.mark.tensorflow(test)
    test = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="needs TensorFlow")(test)
    return pytest.mark.skipif(bool(_MISSING), reason=f"oneDNN's AVX-512 kernels need {', '.join(_MISSING)}, "
                                                     f"which this CPU lacks")(test)


# (operation, batch sizes, n_in, n_out, inputs, rule): where each rule of the AVX-512 section is exercised.
# inputs: "random" spans 2^-8..2^8; "zeros" (``_with_zeros``) makes many sums have only -0 products.
CASES = [
    # forward: GEMV (B = 1), tree (N = 1), no-copy in depth blocks of 384
    ("matmul", (1,), 17, 7, "random", "B = 1: the GEMV, FMA-sequential from +0"),
    ("matmul", (1,), 500, 7, "random", "B = 1, K = 500: the GEMV has no depth blocks"),
    ("matmul", (2, 11, 100), 17, 1, "random", "N = 1: matrix-vector tree"),
    ("matmul", (2, 20, 1000), 8, 16, "random", "no-copy: FMA-sequential from +0"),
    ("matmul", (20, 100), 500, 3, "random", "K = 500: two depth blocks of 250"),
    ("matmul", (101,), 800, 1024, "random", "lda = N = 1024, K > 500, B > 100: copied, blocks 384, 384, 32"),
    # input gradient: sixteen lanes (2 <= B <= 15), tree (B = 1 or K = 1), no-copy
    ("matmul_grad_input", (1,), 8, 17, "random", "B = 1: tree over the kernel's rows"),
    ("matmul_grad_input", (2, 7, 15), 8, 17, "random", "2 <= B <= 15: sixteen lanes"),
    ("matmul_grad_input", (2, 15), 1, 64, "random", "sixteen lanes come before the tree: also K = 1"),
    ("matmul_grad_input", (16, 100), 1, 8, "random", "K = 1, B >= 16: tree"),
    ("matmul_grad_input", (16, 100, 1000), 17, 64, "random", "no-copy TN: FMA-sequential from +0"),
    ("matmul_grad_input", (32,), 128, 800, "random", "one thread, 100 < K < 1200, B < 200: copied, blocks 384, 384, 32"),
    # kernel gradient: GEMV (K = 1 or N = 1) with its thread split, no-copy in depth blocks of 384
    ("matmul_grad_kernel", (1, 20, 1000), 1, 8, "random", "K = 1: FMA-sequential GEMV"),
    ("matmul_grad_kernel", (8145, 8146), 64, 1, "random",
     "N = 1: from B = 8146 two threads and the GEMV's depth in two halves (AVX2: from 8193)"),
    ("matmul_grad_kernel", (10000,), 1, 64, "random", "K = 1: the depth in two halves"),
    ("matmul_grad_kernel", (11, 385, 768, 769, 1000), 3, 8, "random", "depth blocks of 384, then two halves"),
    ("matmul_grad_kernel", (2000, 10000), 64, 16, "random", "depth blocks on two threads"),
    ("matmul_grad_kernel", (800,), 17, 1000, "random", "no-copy: blocks 384, 208, 208"),
    ("matmul_grad_kernel", (800,), 17, 1024, "random", "NT with lda = N = 1024: copied, blocks 384, 384, 32"),
    # signed zeros: every kernel starts from +0
    ("matmul", (1, 20, 100), 16, 17, "zeros", "+0: GEMV and no-copy"),
    ("matmul", (2, 100), 16, 1, "zeros", "+0: tree (output zeroed, parts added onto it)"),
    ("matmul_grad_input", (1, 7, 20), 16, 17, "zeros", "+0: tree, sixteen lanes, no-copy"),
    ("matmul_grad_input", (20,), 1, 16, "zeros", "+0: tree with K = 1"),
    ("matmul_grad_kernel", (20, 10000), 1, 16, "zeros", "+0: GEMV, whole and split"),
    ("matmul_grad_kernel", (20, 1000), 16, 17, "zeros", "+0: depth blocks"),
    # the Dense layer inside a tf.function: the fused inner product runs the same sgemm
    ("dense", (1, 7, 100), 8, 3, "random", "MatMul + BiasAdd fused: the same product, then the bias"),
    ("dense", (1, 7, 100), 8, 1, "zeros", "the bias added onto +0 (a -0 bias keeps the product's sign)"),
    ("dense_sigmoid", (1, 7, 20, 100), 3, 16, "random", "fused logistic"),
    ("dense_tanh", (1, 7, 20, 100), 3, 16, "random", "fused tanh"),
    ("dense_tanh", (7, 20), 3, 16, "zeros", "fused tanh keeps the sign of a zero"),
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
    rng = np.random.default_rng(1000 * batch_size + 10 * n_in + n_out)
    inputs = _spread(rng, (batch_size, n_in))
    kernel = _spread(rng, (n_in, n_out))
    delta = _spread(rng, (batch_size, n_out))
    bias = _spread(rng, (n_out,))
    if inputs_kind == "zeros":
        inputs, kernel, delta, bias = _with_zeros(rng, inputs, kernel, delta, bias)
    if operation == "matmul_grad_input":
        out = np.empty((batch_size, n_in), np.float32)
        onednn.matmul_grad_input_avx512_loop(delta, kernel, out, caches)
        return (onednn.matmul_grad_input_avx512(delta, kernel, caches), out,
                tf.linalg.matmul(delta, kernel, transpose_b=True).numpy())
    if operation == "matmul_grad_kernel":
        delta = -np.abs(delta) if inputs_kind == "zeros" else delta  # zero columns of inputs times negatives
        out = np.empty((n_in, n_out), np.float32)
        onednn.matmul_grad_kernel_avx512_loop(inputs, delta, out, caches)
        return (onednn.matmul_grad_kernel_avx512(inputs, delta, caches), out,
                tf.linalg.matmul(inputs, delta, transpose_a=True).numpy())
    out = np.empty((batch_size, n_out), np.float32)
    onednn.matmul_avx512_loop(inputs, kernel, out, caches)
    if operation == "matmul":
        return onednn.matmul_avx512(inputs, kernel, caches), out, tf.linalg.matmul(inputs, kernel).numpy()
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
    pre = onednn.matmul_avx512(inputs, kernel, caches) + bias
    if loop is not None:
        loop(out)
    return pre if forward is None else forward(pre), out, graphs[operation](inputs, kernel, bias).numpy()


def _check_all():
    """Every case and the revealing inputs, in a process whose TensorFlow runs oneDNN's AVX-512 kernels."""
    import tensorflow as tf

    caches = cpu_info().caches
    graphs = {}
    report = {"caches": list(caches)}
    for operation, batches, n_in, n_out, inputs_kind, _ in CASES:
        for batch_size in batches:
            mine, loop, theirs = _run(tf, graphs, caches, operation, batch_size, n_in, n_out, inputs_kind)
            report[f"{operation}-B{batch_size}-K{n_in}-N{n_out}-{inputs_kind}"] = (
                _difference(mine, loop, f"{operation} numpy vs numba")
                or _difference(mine, theirs, f"{operation} vs tensorflow"))
    # Zero inputs times negative weights: each product is -0, TensorFlow's sums are +0.
    x, w = np.zeros((20, 16), np.float32), -np.ones((16, 17), np.float32)
    report["zero_products"] = {"product": float(x[0, 0] * w[0, 0]),
                               "forward": bool(np.signbit(tf.linalg.matmul(x, w).numpy()).any()),
                               "tree": bool(np.signbit(tf.linalg.matmul(x, w[:, :1]).numpy()).any())}
    # One huge term, then ones: FMA-sequential loses every one; cut in two halves the second half keeps its own.
    x = np.ones((8146, 64), np.float32)
    x[0] = 2.0**24
    theirs = tf.linalg.matmul(x, np.ones((8146, 1), np.float32), transpose_a=True).numpy()
    report["split"] = {"tensorflow": theirs[0, 0].item(), "halves": (np.float32(2.0**24) + np.float32(8146 // 2)).item()}
    return report


_MARK = "AVX512-REPORT "
_SCRIPT = """
import json, sys
sys.path.insert(0, {tests!r})
import test_onednn_avx512 as t
report = t._check_all()
print({mark!r} + json.dumps(report), flush=True)
"""


@pytest.fixture(scope="module")
def avx512_run():
    """(report, stdout) of one subprocess in which TensorFlow's oneDNN runs its AVX-512 kernels."""
    env = {name: value for name, value in os.environ.items() if name not in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")}
    env.update(TF_ENABLE_ONEDNN_OPTS="1", ONEDNN_VERBOSE="1", TF_CPP_MIN_LOG_LEVEL="2")
    script = _SCRIPT.format(tests=os.path.dirname(os.path.abspath(__file__)), mark=_MARK)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, env=env)
    lines = [line for line in result.stdout.splitlines() if line.startswith(_MARK)]
    assert result.returncode == 0 and lines, f"subprocess failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return json.loads(lines[-1][len(_MARK):]), result.stdout


@_live
@pytest.mark.parametrize("case", CASE_IDS)
def test_avx512_products_match_tensorflow(avx512_run, case):
    report, _ = avx512_run
    assert report[case] == "", report[case]


@_live
def test_subprocess_ran_onednn_avx512(avx512_run):
    """oneDNN says so at start-up, the products went through its sgemm, and the designed inputs show the rules."""
    report, stdout = avx512_run
    isa_lines = [line for line in stdout.splitlines() if ",isa:" in line]
    assert any("cpu,isa:Intel AVX-512" in line for line in isa_lines), isa_lines
    assert ",gemm_api," in stdout and "inner_product,x64:gemm:jit" in stdout
    assert report["caches"] == list(cpu_info().caches)
    zeros = report["zero_products"]
    assert np.signbit(zeros["product"]) and not zeros["forward"] and not zeros["tree"], zeros
    split = report["split"]
    assert split["tensorflow"] == split["halves"] != 2.0**24, split


# --- the thread rules on other machines (no TensorFlow) ------------------------------------------

MIB = 1024 * 1024


def _machine(l2=2 * MIB, threads=2, onednn_l2=None):
    return Caches(48 * 1024, l2, 32 * MIB, threads, l2 if onednn_l2 is None else onednn_l2)


def _huge_then_ones(batch_size, n_in=64):
    """``inputs`` whose first row is 2^24 and the rest ones, ``delta`` ones: each part of the depth keeps
    its own ones (a part that starts with 2^24 loses them: 2^24 + 1 rounds back to 2^24)."""
    inputs = np.ones((batch_size, n_in), np.float32)
    inputs[0] = 2.0**24
    return inputs, np.ones((batch_size, 1), np.float32)


@pytest.mark.parametrize("l2, batch_size, threads", [
    # 4 (64 + 65 B) bytes against 1.01 L2 in float32: 2 MiB -> 8145 | 8146; 1 MiB -> 4072 | 4073
    (2 * MIB, 8145, 1), (2 * MIB, 8146, 2), (MIB, 4072, 1), (MIB, 4073, 2),
])
def test_tensorflow_lends_its_threads_above_1_01_l2(l2, batch_size, threads):
    assert onednn._tensorflow_threads(64, batch_size, 1, _machine(l2=l2)) == threads


@pytest.mark.parametrize("m, n, threads, avx512, expected", [
    (64, 100, 2, True, 1),       # mn + 288 n = 35200 < 41700: one thread
    (64, 300, 2, True, 2),       # 105600; n / t = 150 >= 32 and m (n / t) = 9600 >= 4096: both
    (81, 300, 12, True, 1),      # n / t = 25 < 32 and m (n / t) = 2025 < 2048: one
    (500, 60, 2, True, 2),       # n / t = 30 < 32 but m (n / t) = 15000 >= 2048: both
    (1, 4000, 4, True, 1),       # n / t = 1000 >= 32 and m (n / t) = 1000 < 4096: one
    (16, 4000, 4, True, 4),      # m (n / t) = 16000 >= 4096: all four
    (10, 4000, 16, True, 13),    # more than 12: (n / t) m = 2500 < 4096, so min(max(mn / 3072, 1), t)
    (20000, 100, 4, True, 4),    # m >= 20000 and n <= 200: all
    (64, 4073, 4, True, 4),      # AVX-512: all four
    (64, 4073, 4, False, 1),     # AVX2 (oneDNN's L2 1 MiB): ceil(4 * 64 * 4073 / 1 MiB) = 1
    (64, 5000, 4, False, 2),     # AVX2: ceil(4 * 64 * 5000 / 1 MiB) = 2
])
def test_gemv_thread_checker(m, n, threads, avx512, expected):
    """oneDNN's ``thread_checker`` step by step (module docstring, AVX-512 "GEMV")."""
    assert onednn._gemv_threads(m, n, threads, MIB, avx512) == expected


@pytest.mark.parametrize("machine, batch_size, avx512, parts", [
    (_machine(l2=MIB, threads=4), 5000, True, 4),    # four threads, short and fat: four parts of 1250
    (_machine(l2=MIB, threads=4), 5000, False, 2),   # AVX2: two threads (ceil(1.22)), two parts of 2500
    (_machine(l2=MIB, threads=1), 5000, True, 1),    # one thread: no split
    (_machine(l2=MIB, threads=4), 4072, True, 1),    # below 1.01 L2 TensorFlow lends one thread
    (_machine(threads=2), 8146, True, 2),            # this machine's shape of the live case above
    (_machine(threads=2), 8146, False, 1),           # AVX2: ceil(4 * 64 * 8146 / 2 MiB) = 1
])
def test_gemv_depth_split_worked_by_hand(machine, batch_size, avx512, parts):
    """The kernel gradient of a layer with one unit over 2^24 and ones: 2^24 plus the ones of every part but the first."""
    inputs, delta = _huge_then_ones(batch_size)
    assert onednn._gemv_depth_parts(64, batch_size, 1, machine, avx512) == parts
    first = -(-batch_size // parts)  # ceil: the first batch_size % parts parts have one more term
    expected = np.float32(2.0**24) + np.float32(batch_size - first) if parts > 1 else np.float32(2.0**24)
    gradient = onednn.matmul_grad_kernel_avx512 if avx512 else onednn.matmul_grad_kernel_avx2
    loop = onednn.matmul_grad_kernel_avx512_loop if avx512 else onednn.matmul_grad_kernel_avx2_loop
    out = np.empty((64, 1), np.float32)
    loop(inputs, delta, out, machine)
    assert gradient(inputs, delta, machine)[0, 0] == expected
    assert out.tobytes() == gradient(inputs, delta, machine).tobytes()


def test_avx512_no_copy_orders_do_not_depend_on_the_machine():
    """Only the GEMV reads ``caches`` on AVX-512: the no-copy, tree and sixteen-lane results stay put."""
    rng = np.random.default_rng(3)
    inputs, kernel, delta = _spread(rng, (3000, 17)), _spread(rng, (17, 16)), _spread(rng, (3000, 16))
    results = []
    for machine in (_machine(), _machine(l2=MIB, threads=1), _machine(l2=64 * 1024, threads=4)):
        results.append(b"".join(f(a, b, machine).tobytes() for f, a, b in (
            (onednn.matmul_avx512, inputs, kernel), (onednn.matmul_grad_input_avx512, delta, kernel),
            (onednn.matmul_grad_kernel_avx512, inputs, delta), (onednn.matmul_grad_input_avx512, delta[:7], kernel))))
    assert results[0] == results[1] == results[2]


@pytest.mark.parametrize("depth, packed, bounds", [
    (300, False, [0, 300]), (300, True, [0, 300]),                  # one block
    (500, False, [0, 250, 500]), (500, True, [0, 250, 500]),        # two halves either way
    (768, False, [0, 384, 768]), (768, True, [0, 384, 768]),
    (800, False, [0, 384, 592, 800]), (800, True, [0, 384, 768, 800]),  # no-copy halves the rest, copy does not
    (1200, False, [0, 384, 768, 984, 1200]), (1200, True, [0, 384, 768, 1152, 1200]),
])
def test_depth_blocks_of_the_two_drivers(depth, packed, bounds):
    assert onednn.depth_blocks(depth, packed=packed) == bounds


@pytest.mark.parametrize("product, shape, machine, packed", [
    ("forward", (20, 64, 64), _machine(), False),          # 1/m + 1/n >= 0.00196: no-copy
    ("forward", (1030, 800, 1030), _machine(), True),      # both above 1020, m, k >= 378 t'
    ("forward", (101, 800, 1024), _machine(), True),       # lda = N = 1024, k > 500, n = B > 100
    ("forward", (101, 800, 1000), _machine(), False),
    ("forward", (100, 800, 1024), _machine(), False),      # n = B = 100, not above 100
    ("grad_input", (32, 128, 800), _machine(), True),      # one thread (below 1.01 L2), TN, 100 < K < 1200, B < 200
    ("grad_input", (32, 128, 800), _machine(l2=64 * 1024), False),  # two threads: the one-thread rule is off
    ("grad_input", (32, 100, 800), _machine(), False),     # m = K = 100, not above 100
    ("grad_kernel", (800, 17, 1024), _machine(), True),    # NT with lda = N = 1024; then ldc = 1024 is "bad"
    ("grad_kernel", (800, 17, 1000), _machine(), False),
])
def test_copy_or_no_copy(product, shape, machine, packed):
    """``nocopy_checker_avx512`` on the three products (module docstring, "Copy or no copy")."""
    decide = {"forward": onednn._packs_forward, "grad_input": onednn._packs_grad_input,
              "grad_kernel": onednn._packs_grad_kernel}[product]
    assert decide(*shape, machine) == packed


@pytest.mark.parametrize("m, n, k, expected", [
    (100, 100, 100, 4),      # 120000 bytes fit the socket's L2 (4 x 64 KiB): all four
    (11, 10000, 1, 1),       # 440044 bytes do not; c = 3437.5 cycles: 3000 i < c (i - 1) for no i > 1
    (11, 20000, 1, 4),       # c = 6875: 12000 < 20625 at i = 4
    (5, 10000, 1, 4),        # n > 50 and m <= 10: all
    (8, 8, 8, 1),            # 4 (64 + 8 x 16) = 768 bytes < 1.01 x 64 KiB: TensorFlow lends one thread
])
def test_avx512_sgemm_threads(m, n, k, expected):
    """``adjust_thread_count`` with 4 threads and a 64 KiB L2 (module docstring)."""
    assert onednn._avx512_sgemm_threads(m, n, k, _machine(l2=64 * 1024, threads=4)) == expected


# --- signed zeros and the two engines (no TensorFlow) -----------------------------------------------


@pytest.mark.parametrize("isa", ["avx512", "avx2"])
@pytest.mark.parametrize("batch_size, n_in, n_out", [(1, 16, 17), (7, 16, 17), (20, 16, 1), (20, 1, 16), (100, 16, 17)])
def test_zero_inputs_times_negative_weights_give_plus_zero(isa, batch_size, n_in, n_out):
    """Every product of zeros and negative weights is -0; every routine adds them onto +0."""
    caches = _machine()
    zeros_in, zeros_out = np.zeros((batch_size, n_in), np.float32), np.zeros((batch_size, n_out), np.float32)
    negative = -np.ones((n_in, n_out), np.float32)
    cases = (("matmul", zeros_in, negative, (batch_size, n_out)),
             ("matmul_grad_input", zeros_out, negative, (batch_size, n_in)),
             ("matmul_grad_kernel", zeros_in, -np.ones((batch_size, n_out), np.float32), (n_in, n_out)))
    for name, a, b, shape in cases:
        out = np.full(shape, np.nan, np.float32)
        getattr(onednn, f"{name}_{isa}_loop")(a, b, out, caches)
        result = getattr(onednn, f"{name}_{isa}")(a, b, caches)
        assert not np.signbit(result).any() and not np.signbit(out).any(), name
        assert (result == 0).all() and (out == 0).all(), name


@pytest.mark.parametrize("isa", ["avx512", "avx2"])
@pytest.mark.parametrize("machine", [_machine(), _machine(l2=MIB, threads=4), _machine(l2=MIB, threads=1)])
def test_numpy_and_numba_agree_on_other_machines(isa, machine):
    rng = np.random.default_rng(11)
    for batch_size, n_in, n_out in [(1, 8, 3), (7, 8, 1), (11, 1, 16), (5000, 64, 1), (5000, 1, 17), (1000, 17, 64)]:
        inputs, kernel = _spread(rng, (batch_size, n_in)), _spread(rng, (n_in, n_out))
        delta = _spread(rng, (batch_size, n_out))
        inputs, kernel, delta, _ = _with_zeros(rng, inputs, kernel, delta, np.ones(n_out, np.float32))
        for name, a, b, shape in (("matmul", inputs, kernel, (batch_size, n_out)),
                                  ("matmul_grad_input", delta, kernel, (batch_size, n_in)),
                                  ("matmul_grad_kernel", inputs, delta, (n_in, n_out))):
            out = np.empty(shape, np.float32)
            getattr(onednn, f"{name}_{isa}_loop")(a, b, out, machine)
            mine = getattr(onednn, f"{name}_{isa}")(a, b, machine)
            assert _difference(mine, out, f"{name} numpy vs numba") == ""
