"""gdcore.activations: the table, each entry's derivative, its compiled loops, and Keras's values live.

A new entry of ``ACTIVATIONS`` is checked here without editing this file: its
gradient against central differences of its forward function (float64), its
compiled in-place loops against its NumPy functions (both dtypes, same bits),
its lookup by name, and, with TensorFlow, its values against Keras's function
of the same name.
"""

import numpy as np
import pytest

from gdcore import activations

ENTRIES = [pytest.param(a, id=a.name) for a in activations.ACTIVATIONS]


def test_ids_are_positions_and_names_are_unique():
    assert [a.id for a in activations.ACTIVATIONS] == list(range(len(activations.ACTIVATIONS)))
    names = [name for a in activations.ACTIVATIONS for name in (a.name, *a.aliases)]
    assert len(names) == len(set(names))
    assert activations.get(None) is activations.LINEAR and activations.get("Sigmoid") is activations.SIGMOID
    with pytest.raises(ValueError, match="unknown activation 'swishy'; known: .*sigmoid"):
        activations.get("swishy")


@pytest.mark.parametrize("activation", ENTRIES)
def test_gradient_is_the_derivative(activation):
    rng = np.random.default_rng(activation.id)
    z = rng.uniform(-4, 4, 200)
    z = z[np.abs(z) > 1e-3]  # away from relu's kink
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
    numeric = (activation.forward(z + step) - activation.forward(z - step)) / (2 * step)
    y = activation.forward(z)
    np.testing.assert_allclose(activation.grad(y, np.ones_like(z)), numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ENTRIES)
def test_compiled_loops_give_the_numpy_bits(activation, dtype):
    rng = np.random.default_rng(7)
    z = (rng.standard_normal((13, 5)) * 3).astype(dtype)
    forward_loop, grad_loop = activation.loops
    out = z.copy()
    forward_loop(out)
    assert out.tobytes() == activation.forward(z).tobytes()
    dy = rng.standard_normal(z.shape).astype(dtype)
    delta = dy.copy()
    grad_loop(out, delta)
    assert delta.tobytes() == activation.grad(out, dy).tobytes()


@pytest.mark.tensorflow
@pytest.mark.parametrize("activation", ENTRIES)
def test_values_follow_keras(activation):
    keras = pytest.importorskip("keras")
    z = np.linspace(-6, 6, 97)
    if activation.row_wise:
        z = np.linspace(-6, 6, 96).reshape(24, 4)
    theirs = keras.ops.convert_to_numpy(keras.activations.get(activation.name)(z))
    np.testing.assert_allclose(activation.forward(z), theirs, rtol=1e-12, atol=1e-15)
