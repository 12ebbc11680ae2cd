"""The cross-entropies and the softmax under ``numerics="tensorflow"``: TensorFlow's bits, op by op.

Each loss entry's per-sample values and its gradient (NumPy) against Keras's
loss function differentiated by ``tf.GradientTape`` inside a ``tf.function``
(the graph Keras's ``fit`` runs, Grappler's rewrites included), on batches
whose flattened size leaves a scalar tail (Eigen evaluates the last ``n % P``
elements with the C library) and with rows long enough for packets inside the
softmax kernels' row sums. tests/test_classification.py trains the same losses
against Keras's ``fit`` and checks the compiled engine gives the same bits.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numba  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from gdcore import activations, losses  # noqa: E402
from gdcore.numerics import eigen, get_profile  # noqa: E402

pytestmark = pytest.mark.tensorflow

# (entry, classes): the binary ones on 1 and 3 outputs, the categorical ones on 3 and 10 classes
# (10 > 8: whole packets inside each row's sum in both dtypes).
CASES = [(name, k) for name in ("binary_crossentropy", "binary_crossentropy_from_logits") for k in (1, 3)] + \
        [(name, k) for name in ("categorical_crossentropy", "categorical_crossentropy_from_logits",
                                "sparse_categorical_crossentropy", "sparse_categorical_crossentropy_from_logits")
         for k in (3, 10)]


def _batch(name, k, rows, dtype, rng):
    """(gdcore's y, Keras's y, the output fed to the loss): logits, or probabilities computed outside TensorFlow."""
    z = (rng.standard_normal((rows, k)) * rng.choice([0.5, 3.0, 12.0], (rows, 1))).astype(dtype)
    logits = name.endswith("_from_logits")
    if name.startswith("binary"):
        y = rng.integers(0, 2, (rows, k)).astype(dtype)
        return y, y, z if logits else (1 / (1 + np.exp(-z.astype(np.float64)))).astype(dtype)
    labels = rng.integers(0, k, rows)
    one_hot = np.eye(k, dtype=dtype)[labels]
    e = np.exp(z - z.max(axis=1, keepdims=True))
    output = z if logits else (e / e.sum(axis=1, keepdims=True)).astype(dtype)
    return one_hot, labels if name.startswith("sparse") else one_hot, output


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name, k", CASES)
def test_loss_and_gradient_are_tensorflows_bits(name, k, dtype):
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    profile = get_profile("tensorflow")
    entry = losses.get(name)
    keras_name = name.removesuffix("_from_logits")
    function = getattr(keras.losses, keras_name)

    @tf.function
    def keras_loss(y, output):
        with tf.GradientTape() as tape:
            tape.watch(output)
            per_sample = function(y, output, from_logits=name.endswith("_from_logits"))
            mean = tf.reduce_mean(per_sample)
        return per_sample, tape.gradient(mean, output)

    rng = np.random.default_rng(k)
    for rows in (16, 13, 2):  # 13 * 3 and 13 * 10: a scalar tail in both dtypes
        for _ in range(4):
            y, their_y, output = _batch(name, k, rows, dtype, rng)
            per_sample, grad = (t.numpy() for t in keras_loss(tf.constant(their_y), tf.constant(output)))
            mine = losses.per_sample(entry, profile, y, output)  # an elementwise loss: the mean over outputs
            assert mine.tobytes() == per_sample.tobytes(), f"{rows} rows: per-sample loss"
            assert losses.output_grad(entry, y, output, profile=profile).tobytes() == grad.tobytes(), \
                f"{rows} rows: gradient"


def test_lanes_follow_the_flattened_tensor():
    """13 rows of 3 float32: elements 0..31 in packets of 8, 32..38 the tail; rows 0..7 of the (13,) vector in a packet."""
    lanes = np.empty(4, np.int8)
    losses.fill_lanes(lanes, 5, 13, 0)  # the plain profile: the C library everywhere
    assert lanes.tolist() == [losses.PLAIN] * 4
    losses.fill_lanes(lanes, 2, 13, 8)  # elements 6, 7, 8; row 2
    assert lanes.tolist() == [losses.PACKET] * 4
    losses.fill_lanes(lanes, 10, 13, 8)  # elements 30, 31, 32; row 10
    assert lanes.tolist() == [losses.PACKET, losses.PACKET, losses.TAIL, losses.TAIL]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_is_tensorflows(dtype):
    """``tf.nn.softmax`` and its gradient: NumPy and compiled, 7 to 40 classes (whole packets in the row sums)."""
    tf = pytest.importorskip("tensorflow")
    profile = get_profile("tensorflow")
    softmax = activations.get("softmax")
    forward_loop, grad_loop = profile.kernels.activation_loops(softmax)
    run_forward = numba.njit(lambda z: forward_loop(z))
    run_grad = numba.njit(lambda y, delta: grad_loop(y, delta))
    rng = np.random.default_rng(7)
    for rows, k in [(16, 3), (13, 7), (5, 17), (4, 40)]:
        z = (rng.standard_normal((rows, k)) * 3).astype(dtype)
        dy = rng.standard_normal((rows, k)).astype(dtype)
        zt = tf.constant(z)
        with tf.GradientTape() as tape:
            tape.watch(zt)
            y_tf = tf.nn.softmax(zt)
        grad_tf = tape.gradient(y_tf, zt, output_gradients=tf.constant(dy)).numpy()
        y = profile.activate(softmax, z)
        assert y.tobytes() == y_tf.numpy().tobytes(), f"{rows}x{k} forward"
        compiled = z.copy()
        run_forward(compiled)
        assert compiled.tobytes() == y.tobytes(), f"{rows}x{k} compiled forward"
        grad = profile.activation_grad(softmax, y, dy)
        assert grad.tobytes() == grad_tf.tobytes(), f"{rows}x{k} gradient"
        delta = dy.copy()
        run_grad(y, delta)
        assert delta.tobytes() == grad.tobytes(), f"{rows}x{k} compiled gradient"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_packet_log_and_reciprocal_follow_tensorflow_at_the_edges(dtype):
    """Eigen's log selects (NaN, negatives, 0, inf) and its float32 reciprocal estimate, as tf.math computes them."""
    tf = pytest.importorskip("tensorflow")
    edges = np.array([np.nan, -1.0, -0.0, 0.0, np.inf, 1e-7, 0.3, 1.0 - 1e-7], dtype)
    values = np.concatenate([edges, np.random.default_rng(0).uniform(1e-7, 2.0, 8).astype(dtype)])  # 16: no tail
    mine, theirs = eigen.log(values), tf.math.log(values).numpy()
    assert np.array_equal(np.isnan(mine), np.isnan(theirs)) and np.isnan(mine[:2]).all()  # NaN payloads differ
    assert mine[2:].tobytes() == theirs[2:].tobytes()  # -inf at -0 and 0, +inf at inf, the rest to the bit
    assert eigen.reciprocal(values[5:13]).tobytes() == tf.math.reciprocal(values[5:13]).numpy().tobytes()


def test_a_nan_output_gives_a_nan_loss():
    """The packet logarithm must not turn NaN into a number: a diverged batch stays detectable."""
    profile = get_profile("tensorflow")
    for name in ("binary_crossentropy", "binary_crossentropy_from_logits", "categorical_crossentropy",
                 "sparse_categorical_crossentropy_from_logits"):
        entry = losses.get(name)
        k = 1 if name.startswith("binary") else 3
        output = np.full((8, k), 0.25)
        output[3, 0] = np.nan
        y = np.zeros((8, k))
        y[:, 0] = 1.0
        assert np.isnan(losses.per_sample(entry, profile, y, output)[3]), name
