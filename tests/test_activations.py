"""gdcore.activations: the table, each entry's derivative, its compiled loops, and Keras's values live.

A new entry of ``ACTIVATIONS`` is checked here without editing this file: its
gradient against central differences of its forward function (float64), its
compiled in-place loops against its NumPy functions (both dtypes, same bits),
its lookup by name, and, with TensorFlow, its values against Keras's function
of the same name and its ``"tensorflow"``-profile bits against TensorFlow's ops.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numba  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from gdcore import activations  # noqa: E402

ENTRIES = [pytest.param(a, id=a.name) for a in activations.ACTIVATIONS]
ELEMENTWISE = [pytest.param(a, id=a.name) for a in activations.ACTIVATIONS if not a.row_wise]
# Entries that are a Keras activation name (relu_options is ReLU's options, checked in test_activation_options.py).
KERAS_ENTRIES = [entry for entry in ENTRIES if entry.values[0].by_name]


def _defaults(activation):
    """The entry's default parameters, as its functions take them (none for most)."""
    return activation.parameter_values()[:len(activation.parameters)]
KINKS = (0.0, -3.0, 3.0, 6.0)  # relu and leaky_relu at 0, relu6 at 0 and 6, hard_sigmoid at -3 and 3


def _keras_activation(keras, name):
    """Keras's function for gdcore's entry ``name`` (the tanh GELU has no name in Keras)."""
    if name == "gelu_approximate":
        return lambda x: keras.activations.gelu(x, approximate=True)
    return keras.activations.get(name)


def test_ids_are_positions_and_names_are_unique():
    assert [a.id for a in activations.ACTIVATIONS] == list(range(len(activations.ACTIVATIONS)))
    names = [name for a in activations.ACTIVATIONS for name in (a.name, *a.aliases)]
    assert len(names) == len(set(names))
    assert activations.get(None) is activations.LINEAR and activations.get("Sigmoid") is activations.SIGMOID
    assert activations.get("swish") is activations.SILU and activations.get(activations.GELU_APPROXIMATE).name == "gelu_approximate"
    with pytest.raises(ValueError, match="unknown activation 'swishy'; known: .*sigmoid"):
        activations.get("swishy")


def test_keras_style_functions_work_on_arrays():
    z = np.array([-2.0, -0.5, 0.0, 0.5, 2.0, 7.0])
    np.testing.assert_array_equal(activations.leaky_relu(z), np.where(z > 0, z, z * float(np.float32(0.2))))
    np.testing.assert_array_equal(activations.relu6(z), np.clip(z, 0, 6))
    np.testing.assert_allclose(activations.elu(z), np.where(z < 0, np.expm1(z), z), rtol=1e-15, atol=1e-16)
    np.testing.assert_allclose(activations.softplus(z), np.log1p(np.exp(z)), rtol=1e-15)
    np.testing.assert_allclose(activations.swish(z), z / (1 + np.exp(-z)), rtol=1e-15, atol=1e-16)
    np.testing.assert_array_equal(activations.gelu(z), activations.GELU(z))
    np.testing.assert_array_equal(activations.gelu(z, approximate=True), activations.GELU_APPROXIMATE(z))
    with pytest.raises(ValueError, match="approximate must be True or False, got 'yes'"):
        activations.gelu(z, approximate="yes")


def test_only_the_listed_gradients_read_the_input():
    """TensorFlow's gradient kernels decide it: LeakyReluGrad, SoftsignGrad and the composed ones read z."""
    reads_input = {a.name for a in activations.ACTIVATIONS if a.reads_input}
    assert reads_input == {"leaky_relu", "softplus", "softsign", "silu", "hard_sigmoid", "gelu", "gelu_approximate",
                           "relu_options", "hard_silu"}
    z, y = np.ones(2), np.zeros(2)
    assert activations.SOFTPLUS.grad_operand(z, y) is z and activations.ELU.grad_operand(z, y) is y


@pytest.mark.parametrize("activation", ENTRIES)
def test_gradient_is_the_derivative(activation):
    rng = np.random.default_rng(activation.id)
    z = rng.uniform(-4, 4, 200)
    z = z[np.min([np.abs(z - kink) for kink in KINKS], axis=0) > 1e-3]  # away from the kinks
    step = 1e-6
    if activation.row_wise:  # over the last axis: dL/dz of L = sum(dy * f(z)), element by element
        z, dy = z[:198].reshape(66, 3), rng.normal(size=(66, 3))
        numeric = np.empty_like(z)
        for index in np.ndindex(z.shape):
            plus, minus = z.copy(), z.copy()
            plus[index] += step
            minus[index] -= step
            numeric[index] = np.sum(dy * (activation.forward(plus) - activation.forward(minus))) / (2 * step)
        np.testing.assert_allclose(activation.grad(activation.forward(z), dy), numeric, rtol=1e-5, atol=1e-7)
        return
    p = _defaults(activation)
    numeric = (activation.forward(z + step, *p) - activation.forward(z - step, *p)) / (2 * step)
    y = activation.forward(z, *p)
    np.testing.assert_allclose(activation.grad(activation.grad_operand(z, y), np.ones_like(z), *p), numeric, rtol=1e-5,
                               atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ENTRIES)
def test_compiled_loops_give_the_numpy_bits(activation, dtype):
    rng = np.random.default_rng(7)
    z = (rng.standard_normal((13, 5)) * 3).astype(dtype)
    forward_loop, grad_loop = activation.loops
    # An entry with a parameter takes it last, loops and functions alike (a value other than its default here).
    extra = activation.parameter_values((0.3, 4.0, 0.5)[:len(activation.parameters)]) if activation.parameters else ()
    functions_take = extra[:len(activation.parameters)]  # the loops take all three, the functions their own
    out = z.copy()
    forward_loop(out, *extra)
    assert out.tobytes() == activation.forward(z, *functions_take).tobytes()
    dy = rng.standard_normal(z.shape).astype(dtype)
    delta = dy.copy()
    operand = activation.grad_operand(z, out)
    grad_loop(operand, delta, *extra)
    assert delta.tobytes() == activation.grad(operand, dy, *functions_take).tobytes()


@pytest.mark.tensorflow
@pytest.mark.parametrize("activation", KERAS_ENTRIES)
def test_values_follow_keras(activation):
    keras = pytest.importorskip("keras")
    z = np.linspace(-6, 6, 97)
    if activation.row_wise:
        z = np.linspace(-6, 6, 96).reshape(24, 4)
    theirs = keras.ops.convert_to_numpy(_keras_activation(keras, activation.name)(z))
    np.testing.assert_allclose(activation.forward(z), theirs, rtol=1e-12, atol=1e-15)


# --- the "tensorflow" profile against TensorFlow's own ops ----------------------------------

# Whose bits follow the graph TensorFlow's optimizer rewrites in Keras's fit, which eager execution does not run:
# hard_sigmoid's division by 6 becomes a product by fl(1/6) (checked in a tf.function below); the GELUs'
# pow(z, 3) becomes products and their constants are folded and regrouped, differently in a standalone
# tf.function than in Keras's fit graph, so tests/test_tensorflow_training.py checks them in fit.
_FIT_GRAPH_ONLY = {"gelu", "gelu_approximate"}
# In float32 these forwards are the float32 path's own kernels (oneDNN's fused elu and swish, oneDNN's or Eigen's
# logistic and tanh): tests/test_numerics_tensorflow.py checks them through a compiled Dense layer.
_PATH_FORWARDS = {"sigmoid", "tanh", "elu", "silu"}


def _wide_inputs(dtype, shape, seed):
    """Pre-activations over eight decades, both signs, with the exponential's and the softplus's edges in the tail."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(shape) * 10.0 ** rng.uniform(-3, 1.3, shape)
    z.flat[-5:] = [-20.0, 30.0, -0.5, 14.5, -90.0]
    return z.astype(dtype)


def _compiled(loop, arity, parametric=False):
    """A compiled caller of a profile loop (the profile's loops are called from compiled code only); ``parametric``:
    the entry's default parameters passed last."""
    if parametric:  # the loops of an entry with parameters take three
        if arity == 1:
            return numba.njit(lambda z, p0, p1, p2: loop(z, p0, p1, p2))
        return numba.njit(lambda o, d, p0, p1, p2: loop(o, d, p0, p1, p2))
    return numba.njit(lambda z: loop(z)) if arity == 1 else numba.njit(lambda operand, delta: loop(operand, delta))


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", [a for a in ELEMENTWISE if a.values[0].name not in _FIT_GRAPH_ONLY and
                                        a.values[0].by_name])
def test_tensorflow_profile_gives_tensorflows_bits(activation, dtype):
    """Forward and gradient, NumPy and compiled, on a tensor whose last n % P elements take Eigen's scalar path."""
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    from gdcore.numerics import get_profile

    profile = get_profile("tensorflow")
    z, dy = _wide_inputs(dtype, (37, 7), seed=activation.id), _wide_inputs(dtype, (37, 7), seed=99)
    function = _keras_activation(keras, activation.name)

    def forward_and_gradient(z, dy):
        with tf.GradientTape() as tape:
            tape.watch(z)
            y = function(z)
        return y, tape.gradient(y, z, output_gradients=dy)

    if activation.name in ("hard_sigmoid", "hard_silu"):  # a graph: the division by 6 becomes fit's product by 1/6
        forward_and_gradient = tf.function(forward_and_gradient)
    y_tf, grad_tf = (t.numpy() for t in forward_and_gradient(tf.constant(z), tf.constant(dy)))
    y = profile.activate(activation, z)
    operand = activation.grad_operand(z, y)
    grad = profile.activation_grad(activation, operand, dy)
    forward_loop, grad_loop = profile.kernels.activation_loops(activation)
    y_loop, grad_out = z.copy(), dy.copy()
    extra = activation.parameter_values() if activation.parameters else ()
    _compiled(forward_loop, 1, bool(extra))(y_loop, *extra)
    _compiled(grad_loop, 2, bool(extra))(operand.copy(), grad_out, *extra)
    assert y_loop.tobytes() == y.tobytes() and grad_out.tobytes() == grad.tobytes(), "loops vs NumPy"
    checks = [("forward", y, y_tf), ("gradient", grad, grad_tf)]
    if dtype == np.float32 and activation.name in _PATH_FORWARDS and profile.backend.startswith("onednn"):
        # oneDNN's fused forward is not what the standalone op runs; a gradient from the input still is TF's,
        # one from the output is checked in fit.
        checks = checks[1:] if activation.reads_input else []
    for name, mine, theirs in checks:
        differ = np.flatnonzero(mine.view(mine.dtype).ravel() != np.asarray(theirs, dtype).ravel())
        differ = differ[~(np.isnan(mine.ravel()[differ]) & np.isnan(np.asarray(theirs).ravel()[differ]))]
        assert differ.size == 0, (f"{activation.name} {name}: {differ.size} elements differ, first at z = "
                                  f"{z.ravel()[differ[0]]!r}: gdcore {mine.ravel()[differ[0]]!r} vs "
                                  f"tensorflow {np.asarray(theirs).ravel()[differ[0]]!r}")
