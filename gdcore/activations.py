r"""Activation functions: one table of pure, elementwise functions.

Each entry pairs the activation with its derivative written in terms of the
activation's *output* :math:`y` and the upstream gradient :math:`dy`, the
form TensorFlow's gradient kernels use (``SigmoidGrad``, ``TanhGrad``,
``ReluGrad``). The same functions run on NumPy arrays in the NumPy engine and
on scalars inside the compiled Numba loop.

=========  ==================================  ===================================
name       :math:`y = f(z)`                    :math:`\partial L/\partial z`
=========  ==================================  ===================================
linear     :math:`z`                           :math:`dy`
sigmoid    :math:`1 / (1 + e^{-z})`            :math:`dy \cdot (y (1 - y))`
tanh       :math:`\tanh z`                     :math:`dy \cdot (1 - y^2)`
relu       :math:`\max(z, 0)`                  :math:`dy \cdot [y > 0]`
=========  ==================================  ===================================

The sigmoid and the tanh are evaluated as Eigen's vectorised kernels (what
TensorFlow runs on CPU on whole packets, :mod:`gdcore.numerics.eigen`): the
logistic's polynomial exponential and tanh's rational approximation (degree
[9/8] in float32, [19/18] in float64, within a few ulp of the true tanh). Both
use only ``+ - * /`` and comparisons, so the NumPy and Numba engines produce
the same bits (``np.tanh`` would not: NumPy's SIMD tanh and the C library's,
which Numba calls, differ in the last bit). The gradients are the formulas of
the table, in that order; TensorFlow's gradient kernels also flush denormal
operands and results to zero, which only the ``"tensorflow"`` numerics
profile reproduces (:mod:`gdcore.numerics._tensorflow`).
"""

from dataclasses import dataclass
from typing import Callable

from numba.extending import register_jitable

from gdcore._dtype import cast, where
from gdcore.numerics import eigen

logistic = register_jitable(eigen.logistic)
_eigen_tanh = register_jitable(eigen.tanh)


@register_jitable
def linear(z):
    return z


@register_jitable
def linear_grad(y, dy):
    return dy


@register_jitable
def sigmoid(z):
    return logistic(z)


@register_jitable
def sigmoid_grad(y, dy):
    return dy * (y * (cast(1, y) - y))


@register_jitable
def tanh(z):
    return _eigen_tanh(z)


@register_jitable
def tanh_grad(y, dy):
    return dy * (cast(1, y) - y * y)


@register_jitable
def relu(z):
    return where(z > cast(0, z), z, cast(0, z))


@register_jitable
def relu_grad(y, dy):
    return dy * where(y > cast(0, y), cast(1, dy), cast(0, dy))  # TensorFlow's ReluGrad multiplies by the mask


@dataclass(frozen=True)
class Activation:
    """A named activation: ``forward(z)``, ``grad(y, dy)`` and its id in the compiled loop."""

    name: str
    id: int
    forward: Callable
    grad: Callable

    def __call__(self, z):
        return self.forward(z)

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"


LINEAR = Activation("linear", 0, linear, linear_grad)
SIGMOID = Activation("sigmoid", 1, sigmoid, sigmoid_grad)
TANH = Activation("tanh", 2, tanh, tanh_grad)
RELU = Activation("relu", 3, relu, relu_grad)

ACTIVATIONS = {a.name: a for a in (LINEAR, SIGMOID, TANH, RELU)}
BY_ID = {a.id: a for a in ACTIVATIONS.values()}


def get(identifier) -> Activation:
    """Look up an activation by Keras name (``None`` means linear)."""
    from gdcore._validation import lookup

    if identifier is None:
        return LINEAR
    if isinstance(identifier, Activation):
        return identifier
    return lookup(ACTIVATIONS, identifier, "activation")
