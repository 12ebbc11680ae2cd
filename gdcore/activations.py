r"""Activation functions: one table of pure, elementwise functions.

Each entry of :data:`ACTIVATIONS` pairs the activation with its derivative
in the form TensorFlow's gradient kernels use: a function of the upstream
gradient :math:`dy` and of the activation's *output* :math:`y`
(``SigmoidGrad``, ``TanhGrad``, ``ReluGrad``, ``EluGrad``) or, where
TensorFlow's gradient reads it, its *input* :math:`z` (``LeakyReluGrad``,
``SoftsignGrad``, the registered gradient of ``Softplus``, the composed
SiLU and GELU); ``Activation.grad_reads`` says which, and both engines keep a
layer's pre-activation exactly when its gradient reads it. The same
functions run on NumPy arrays in the NumPy engine and on scalars inside the
compiled Numba loop; an entry's id is its position in the table.

================  ==================================================  ==========================================  =====
name              :math:`y = f(z)`                                    :math:`\partial L/\partial z`               reads
================  ==================================================  ==========================================  =====
linear            :math:`z`                                           :math:`dy`                                  y
sigmoid           :math:`1 / (1 + e^{-z})`                            :math:`dy \cdot (y (1 - y))`                y
tanh              :math:`\tanh z`                                     :math:`dy \cdot (1 - y^2)`                  y
relu              :math:`\max(z, 0)`                                  :math:`dy \cdot [y > 0]`                    y
softmax           :math:`e^{z_j - m} / \sum_k e^{z_k - m}`            :math:`(dy_j - \sum_k dy_k y_k)\, y_j`      y
leaky_relu        :math:`z` if :math:`z > 0` else :math:`s z`         :math:`dy` if :math:`z > 0` else :math:`s\,dy`     z
relu6             :math:`\min(\max(z, 0), 6)`                         :math:`dy \cdot [0 < y < 6]`                y
elu               :math:`z` if :math:`z \ge 0` else :math:`e^z - 1`   :math:`(y + 1)\,dy` if :math:`y < 0` else dy  y
selu              :math:`\lambda z` or :math:`\lambda\alpha(e^z - 1)`  :math:`dy\,(y + \lambda\alpha)` or :math:`\lambda\,dy`  y
softplus          :math:`\log(1 + e^z)` (:math:`z`, :math:`e^z` beyond :math:`\mp(\log\varepsilon + 2)`)  :math:`dy\,\sigma(z)`  z
softsign          :math:`z / (|z| + 1)`                               :math:`dy / (|z| + 1)^2`                    z
silu (swish)      :math:`z\,\sigma(z)`                                :math:`dy\,(s (1 + z (1 - s)))`, :math:`s = \sigma(z)`  z
hard_sigmoid      :math:`\mathrm{relu6}(z + 3) \cdot \mathrm{fl}(1/6)`  :math:`(dy\,\mathrm{fl}(1/6)) [0 < z + 3 < 6]`  z
exponential       :math:`e^z`                                         :math:`dy\,y`                               y
gelu              :math:`\mathrm{erfc}(-z/\sqrt2)\,(z/2)`             product rule and Erfc's gradient (below)    z
gelu_approximate  :math:`(1 + \tanh(\sqrt{2/\pi}(z + 0.044715 z^3)))\,(z/2)`  product rule, ``TanhGrad``, Pow's gradient  z
relu_options      Keras's ``relu(z, s, m, t)``: the ops of ``ReLU.static_call``      their gradients, added           z
hard_silu         :math:`z \cdot \mathrm{relu6}(z + 3) \cdot \mathrm{fl}(1/6)`  :math:`dy\,h(z) + [0 < z + 3 < 6]\,z\,(dy\,\mathrm{fl}(1/6))`, :math:`h` hard_sigmoid   z
================  ==================================================  ==========================================  =====

Two entries have parameters (``Activation.parameters``), which a model keeps
per layer (``activation_p0``, ``activation_p1``, ``activation_p2`` of
:data:`gdcore._contract.LAYOUT`) and both engines pass to the entry's
functions after their arrays: ``leaky_relu``'s slope :math:`s`, Keras's
``negative_slope`` (0.2 for the function and the ``"leaky_relu"`` string, 0.3
for the ``LeakyReLU`` layer), rounded to float32 as TensorFlow's ``alpha``
attribute is in either dtype; and ``relu_options``, Keras's ``relu`` with the
options that no single TensorFlow op takes (``ReLU(max_value=m,
negative_slope=s, threshold=t)`` beyond ``relu``, ``relu6`` and
``leaky_relu``), composed of the ops Keras 3 composes (``ReLU.static_call``)
with its constants in the model's dtype.

The softmax is the one entry over the last axis (``row_wise``, :math:`m` the
row's maximum, sums front to back, the C library's ``exp``); it brings its own
in-place loops. Trained with a cross-entropy, Keras never evaluates its
gradient: the loss reads its logits (:func:`gdcore.losses.training_loss`).

The transcendental functions are Eigen's vectorised kernels (what TensorFlow
runs on CPU on whole packets, :mod:`gdcore.numerics.eigen`): the logistic's
polynomial exponential, tanh's rational approximation (degree [9/8] in
float32, [19/18] in float64), ``pexp``, ``plog``/``log1p`` and Eigen's
``erfc``. All use only ``+ - * /``, comparisons and bit manipulation (one
processor instruction, RCPPS, for erfc's float32 reciprocal), so the NumPy and
Numba engines produce the same bits (``np.exp``/``np.tanh`` would not: NumPy's
SIMD functions and the C library's, which Numba calls, differ in the last
bit). Constants are those TensorFlow uses, rounded as it rounds them:
LeakyRelu's slope is a float32 attribute (0.2f in float64 too), tf.nn.gelu
casts :math:`1/\sqrt2` and 0.044715 from float32. Each formula is evaluated in
the order of Keras's fit graph after TensorFlow's graph optimizer (a division
by 6 becomes a product by its reciprocal, ``pow(z, 3)`` products, constant
factors folded and regrouped), read from the optimized graph and confirmed
against fit.

The ``"tensorflow"`` numerics profile evaluates an entry as TensorFlow's
kernels do where that depends on the element's position or on the code path
(:func:`gdcore.numerics._tensorflow.activation_functions`): Eigen's scalar
formulas (``tail_forward``, ``tail_grad``: the same formula over ``std::exp``,
``log1p``, ...) on the last ``n % P`` elements of a tensor, and in float32 on
oneDNN's paths oneDNN's fused logistic, tanh, elu and swish. Denormal
results are flushed to zero where TensorFlow's exponential, logarithm and
erfc produce them.
"""


from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import numpy as np
from numba import njit
from numba.extending import overload

from gdcore._dtype import cast, jitable, keras_float, libm_exp, libm_log, where
from gdcore._validation import lookup
from gdcore.numerics import eigen
from gdcore.numerics._in_place import activation_loop, gradient_loop

_jit = njit(cache=True, error_model="numpy", nogil=True)

logistic = jitable(eigen.logistic)
_eigen_tanh = jitable(eigen.tanh)
_eigen_exp = jitable(eigen.exp)
_eigen_log1p = jitable(eigen.log1p)
_tanh_grad = eigen.tanh_grad  # TanhGrad, denormals flushed (compiled code calls it too)


@jitable
def linear(z):
    return z


@jitable
def linear_grad(y, dy):
    return dy


@jitable
def sigmoid(z):
    return logistic(z)


@jitable
def sigmoid_grad(y, dy):
    return dy * (y * (cast(1, y) - y))


@jitable
def tanh(z):
    return _eigen_tanh(z)


@jitable
def tanh_grad(y, dy):
    return dy * (cast(1, y) - y * y)


@jitable
def _relu(z):
    return where(z > cast(0, z), z, cast(0, z))


@jitable
def relu_grad(y, dy):
    return dy * where(y > cast(0, y), cast(1, dy), cast(0, dy))  # TensorFlow's ReluGrad multiplies by the mask


# --- activations with a slope, a cap or an exponential (Keras 3's keras.activations) ------------

# TensorFlow's LeakyRelu takes its slope as a float32 attribute: Keras's 0.2 is 0.2f in either dtype.
_LEAKY_SLOPE = float(np.float32(0.2))
_SELU_SCALE = 1.0507009873554804934193349852946
_SELU_SCALE_ALPHA = 1.7580993408473768599402175208123  # scale * alpha, as TensorFlow's Selu functor writes it
# Eigen's Softplus switches formula at log(machine epsilon) + 2 (evaluated in the dtype: logf in float32).
_SOFTPLUS_THRESHOLD = {np.dtype(np.float32): float(np.float32(np.log(np.float32(2.0**-23))) + np.float32(2.0)),
                       np.dtype(np.float64): float(np.log(2.0**-52) + 2.0)}


@jitable
def leaky_relu(z, negative_slope=_LEAKY_SLOPE):
    r""":math:`z` for :math:`z > 0`, else :math:`s z`: TensorFlow's ``LeakyRelu``, ``(z > 0).select(z, z * alpha)``.

    :math:`s` is ``negative_slope`` rounded to float32, as TensorFlow's ``alpha`` attribute is in either dtype
    (Keras's function default is 0.2).
    """
    return where(z > cast(0, z), z, z * cast(np.float32(negative_slope), z))


@jitable
def leaky_relu_grad(z, dy, negative_slope=_LEAKY_SLOPE):
    return where(z > cast(0, z), dy, dy * cast(np.float32(negative_slope), dy))  # LeakyReluGrad reads the input


@jitable
def _relu6(z):
    r""":math:`\min(\max(z, 0), 6)`."""
    return where(z > cast(0, z), where(z < cast(6, z), z, cast(6, z)), cast(0, z))


@jitable
def relu6_grad(y, dy):
    return dy * where(y > cast(0, y), where(y < cast(6, y), cast(1, dy), cast(0, dy)), cast(0, dy))  # Relu6Grad's mask


# Keras 3's relu with options no single op takes (ReLU.static_call, keras/src/activations/activations.py), for
# slope s, cap m (inf: None) and threshold t. Keras's ops.cast makes the compared threshold and the cap float32
# constants first (fl32(t), fl32(m) in float64 too); the t of -z + t and the slope are Python constants of the
# graph, in the dtype (exact in float64):
#   x = where(z > t, z, 0) if t != 0, else relu6(z) if m == 6, else relu(z)
#   x = maximum(minimum(x, m), 0)          (tf.clip_by_value) if m is given, unless relu6 ran
#   x = x - s * relu(-z + t)               if s != 0 (relu(-z) when t == 0)
# The gradient is TensorFlow's through the same ops: SelectV2's where(c, g, 0), Relu6Grad/ReluGrad on the
# outputs, Minimum's and Maximum's masks (a <= b, a >= b), Sub's and Neg's -g, Mul's s * g, the two paths added.

@jitable
def _relu_options_first(z, max_value, threshold):
    zero = cast(0, z)
    if threshold != 0:
        return where(z > cast(np.float32(threshold), z), z, zero)
    if max_value == 6:
        return _relu6(z)
    return _relu(z)


@jitable
def _relu_options_clips(max_value, threshold):
    return max_value != np.inf and not (threshold == 0 and max_value == 6)


@jitable
def relu_options(z, negative_slope, max_value, threshold):
    r"""Keras's ``relu(z, negative_slope=s, max_value=m, threshold=t)`` as its ops compute it (``m = inf``: no cap)."""
    zero = cast(0, z)
    x = _relu_options_first(z, max_value, threshold)
    if _relu_options_clips(max_value, threshold):
        cap = cast(np.float32(max_value), z)
        x = where(x < cap, x, cap)  # Minimum
        x = where(x > zero, x, zero)  # Maximum
    if negative_slope != 0:
        negative_part = _relu(cast(threshold, z) - z) if threshold != 0 else _relu(-z)
        x = x - cast(negative_slope, z) * negative_part
    return x


@jitable
def relu_options_grad(z, dy, negative_slope, max_value, threshold):
    zero = cast(0, dy)
    x = _relu_options_first(z, max_value, threshold)
    grad = dy
    if _relu_options_clips(max_value, threshold):
        cap = cast(np.float32(max_value), z)
        grad = where(where(x < cap, x, cap) >= cast(0, z), grad, zero)  # Maximum's mask
        grad = where(x <= cap, grad, zero)  # Minimum's mask
    if threshold != 0:
        grad = where(z > cast(np.float32(threshold), z), grad, zero)
    elif max_value == 6:
        grad = relu6_grad(x, grad)
    else:
        grad = relu_grad(x, grad)
    if negative_slope == 0:
        return grad
    negative_part = _relu(cast(threshold, z) - z) if threshold != 0 else _relu(-z)
    negative_grad = relu_grad(negative_part, cast(negative_slope, dy) * -dy)
    return grad + -negative_grad


# The entries below that evaluate an exponential or a logistic are written once over that function
# (``using``): gdcore evaluates every element with Eigen's packet formula, and the "tensorflow" profile
# builds the same formula over the scalar function for the elements TensorFlow evaluates one by one.


def elu_using(exp):
    @jitable
    def elu(z):
        r""":math:`z` for :math:`z \ge 0`, else :math:`e^z - 1` (``alpha=1``)."""
        return where(z < cast(0, z), exp(z) - cast(1, z), z)

    return elu


def selu_using(exp):
    @jitable
    def selu(z):
        r""":math:`\lambda z` for :math:`z \ge 0`, else :math:`\lambda\alpha (e^z - 1)`."""
        return where(z < cast(0, z), cast(_SELU_SCALE_ALPHA, z) * (exp(z) - cast(1, z)), cast(_SELU_SCALE, z) * z)

    return selu


def exponential_using(exp):
    @jitable
    def exponential(z):
        r""":math:`e^z`."""
        return exp(z)

    return exponential


def softplus_using(exp, log1p):
    @jitable
    def softplus(z):
        r""":math:`\log(1 + e^z)`, as Eigen's ``Softplus``: :math:`z` above :math:`-t`, :math:`e^z` below :math:`t`, :math:`t = \log\varepsilon + 2`."""
        threshold = _softplus_threshold(z)
        e = exp(z)
        return where(z > -threshold, z, where(z < threshold, e, log1p(e)))

    return softplus


def softplus_grad_using(logistic):
    @jitable
    def softplus_grad(z, dy):
        return dy * logistic(z)  # TensorFlow's registered gradient of Softplus: dy * sigmoid(z), from the input

    return softplus_grad


def silu_using(logistic):
    @jitable
    def silu(z):
        r""":math:`z\,\sigma(z)` (alias ``swish``)."""
        return z * logistic(z)

    return silu


def silu_grad_using(logistic):
    @jitable
    def silu_grad(z, dy):
        s = logistic(z)  # tf.nn.silu's custom gradient recomputes the sigmoid of the input
        return dy * (s * (cast(1, z) + z * (cast(1, z) - s)))

    return silu_grad


def _softplus_threshold(z):
    return np.asarray(z).dtype.type(_SOFTPLUS_THRESHOLD[np.asarray(z).dtype])


@overload(_softplus_threshold, jit_options={"cache": True})
def _softplus_threshold_numba(z):
    threshold = _SOFTPLUS_THRESHOLD[np.dtype(str(z))]
    return lambda z: cast(threshold, z)


elu = elu_using(_eigen_exp)
selu = selu_using(_eigen_exp)
exponential = exponential_using(_eigen_exp)
softplus = softplus_using(_eigen_exp, _eigen_log1p)
softplus_grad = softplus_grad_using(logistic)
silu = silu_using(logistic)
silu_grad = silu_grad_using(logistic)
swish = silu
_exp_tail = jitable(eigen.exp_scalar)
_log1p_tail = jitable(eigen.log1p_scalar)
_logistic_tail = jitable(eigen.logistic_scalar)


@jitable
def elu_grad(y, dy):
    return where(y < cast(0, y), (y + cast(1, y)) * dy, dy)  # EluGrad reads the output


@jitable
def selu_grad(y, dy):
    return where(y < cast(0, y), dy * (y + cast(_SELU_SCALE_ALPHA, y)), dy * cast(_SELU_SCALE, dy))


@jitable
def softsign(z):
    r""":math:`z / (|z| + 1)`."""
    return z / (np.abs(z) + cast(1, z))


@jitable
def softsign_grad(z, dy):
    denominator = np.abs(z) + cast(1, z)
    return dy / (denominator * denominator)  # SoftsignGrad: dy / (|z| + 1)^2, from the input


@jitable
def hard_sigmoid(z):
    r""":math:`\mathrm{relu6}(z + 3) / 6`, the division by 6 a product with :math:`\mathrm{fl}(1/6)` as TensorFlow's graph rewrites it."""
    return _relu6(z + cast(3, z)) * (cast(1, z) / cast(6, z))


@jitable
def hard_sigmoid_grad(z, dy):
    shifted = z + cast(3, z)
    return relu6_grad(_relu6(shifted), dy * (cast(1, dy) / cast(6, dy)))


_hard_sigmoid = hard_sigmoid  # the kernel (the module's ``hard_sigmoid`` is Keras's function on arrays, below)


@jitable
def hard_silu_forward(z):
    r""":math:`z\,\mathrm{relu6}(z + 3)/6` (``hard_swish``), Keras's ``x * hard_sigmoid(x)`` in its fit graph's form."""
    return z * _hard_sigmoid(z)


@jitable
def hard_silu_grad(z, dy):
    # Mul's gradient: dy times the other factor on each path, the input's two uses summed (two terms: either order);
    # the graph optimizer groups the second path's product as z (dy / 6) (measured against Keras's fit graph).
    through_gate = relu6_grad(_relu6(z + cast(3, z)), z * (dy * (cast(1, dy) / cast(6, dy))))
    return _hard_sigmoid(z) * dy + through_gate


# GELU, as tf.nn.gelu composes it from elementwise ops (TensorFlow has no Gelu kernel), every operation
# rounded, in the graph's order. tf.nn.gelu casts 1/sqrt(2) and 0.044715 from float32 tensors (so float64
# uses their float32 values); sqrt(2/pi) and Erfc's gradient constant are made in the dtype.
_GELU_C = float(np.float32(0.7071067811865476))  # 1/sqrt(2)
_GELU_K = float(-2 / np.sqrt(np.pi))  # Erfc's registered gradient: -2/sqrt(pi) exp(-u^2)
_GELU_TANH_C = 0.7978845608028654  # sqrt(2/pi)
_GELU_TANH_COEFF = float(np.float32(0.044715))


def gelu_using(erfc):
    @jitable
    def gelu_exact(z):
        r""":math:`\tfrac12 z\,\mathrm{erfc}(-z/\sqrt2)` (Keras's ``gelu``, ``approximate=False``)."""
        return erfc(cast(_GELU_C, z) * -z) * (z * cast(0.5, z))

    return gelu_exact


def gelu_grad_using(erfc, exp):
    @jitable
    def gelu_exact_grad(z, dy):
        # Keras's fit graph after TensorFlow's graph optimizer: the product rule on y = erfc(u) (z / 2),
        # u = c (-z); Erfc's gradient -2/sqrt(pi) exp(-u^2) and the chain's c folded into one constant, the
        # four factors grouped as measured against Keras's fit (of the 15 groupings only this one matches).
        u = cast(_GELU_C, z) * -z
        through_half = (erfc(u) * cast(0.5, z)) * dy
        folded = cast(_GELU_K, z) * cast(_GELU_C, z)
        through_erfc = -((exp(-(u * u)) * folded) * ((z * cast(0.5, z)) * dy))
        return through_erfc + through_half

    return gelu_exact_grad


def gelu_approximate_using(tanh):
    @jitable
    def gelu_approximate(z):
        r""":math:`\tfrac12 z\,(1 + \tanh(\sqrt{2/\pi}\,(z + 0.044715 z^3)))` (``approximate=True``)."""
        cube = (cast(_GELU_TANH_COEFF, z) * (z * z)) * z  # pow(z, 3) becomes products, the constant first
        t = tanh((z + cube) * cast(_GELU_TANH_C, z))
        return (cast(1, z) + t) * (z * cast(0.5, z))

    return gelu_approximate


def gelu_approximate_grad_using(tanh):
    @jitable
    def gelu_approximate_grad(z, dy):
        # Keras's fit graph after TensorFlow's graph optimizer: Pow's gradient 3 z^2 with the coefficient
        # folded into fl(0.044715 * 3), TanhGrad, and the three paths summed by AddN in this order.
        square = z * z
        t = tanh((z + (cast(_GELU_TANH_COEFF, z) * square) * z) * cast(_GELU_TANH_C, z))
        through_half = ((cast(1, z) + t) * cast(0.5, z)) * dy
        d_inner = _tanh_grad(t, dy * (z * cast(0.5, z))) * cast(_GELU_TANH_C, z)
        through_cube = (square * (cast(_GELU_TANH_COEFF, z) * cast(3, z))) * d_inner
        return (through_cube + through_half) + d_inner

    return gelu_approximate_grad


@jitable
def exponential_grad(y, dy):
    return dy * y  # Exp's gradient reads the output


@jitable
def _softmax_in_place(z):
    for b in range(z.shape[0]):
        row = z[b]
        largest = row[0]
        for j in range(1, row.shape[0]):
            largest = max(largest, row[j])
        total = cast(0, largest)
        for j in range(row.shape[0]):
            row[j] = libm_exp(row[j] - largest)
            total = total + row[j]
        for j in range(row.shape[0]):
            row[j] = row[j] / total


@jitable
def _softmax_grad_in_place(y, delta):
    for b in range(y.shape[0]):
        weighted = cast(0, y[b, 0])
        for j in range(y.shape[1]):
            weighted = weighted + delta[b, j] * y[b, j]
        for j in range(y.shape[1]):
            delta[b, j] = (delta[b, j] - weighted) * y[b, j]


def softmax(z):
    r"""Over the last axis of a (batch, units) array: :math:`a_j = e^{z_j - m} / \sum_k e^{z_k - m}`, :math:`m = \max_k z_k`.

    Subtracting the row's maximum first keeps every exponential in (0, 1], as
    TensorFlow's ``Softmax`` kernel does; the sums run front to back.
    """
    out = np.array(z, copy=True, order="C")
    _softmax_in_place(out)
    return out


def softmax_grad(y, dy):
    r"""TensorFlow's ``SoftmaxGrad``: :math:`\partial L/\partial z_j = (dy_j - \sum_k dy_k a_k)\, a_j`."""
    out = np.array(dy, copy=True, order="C")
    _softmax_grad_in_place(np.ascontiguousarray(y), out)
    return out


_eigen_erfc = jitable(eigen.erfc)
gelu_exact = gelu_using(_eigen_erfc)
gelu_exact_grad = gelu_grad_using(_eigen_erfc, _eigen_exp)
gelu_approximate = gelu_approximate_using(_eigen_tanh)
gelu_approximate_grad = gelu_approximate_grad_using(_eigen_tanh)


@dataclass(frozen=True)
class Activation:
    r"""A named activation: ``forward(z)`` and ``grad(operand, dy)`` (module docstring), with its formulas.

    ``grad_reads`` says which tensor the gradient reads, as TensorFlow's
    gradient kernel for it does: ``"output"`` (:math:`a`, e.g. ``SigmoidGrad``,
    ``EluGrad``) or ``"input"`` (:math:`z`, e.g. ``LeakyReluGrad``, the
    softplus's :math:`dy\,\sigma(z)`); the engines keep the pre-activation of
    a layer whose activation reads its input (:meth:`grad_operand`).
    ``formula`` and ``grad_formula`` are LaTeX (:math:`a` the output, :math:`z`
    the input), rendered by :mod:`gdcore.explain`; ``sklearn`` is
    scikit-learn's name for it (``MLPRegressor(activation=...)``), if any;
    ``id`` is its position in :data:`ACTIVATIONS`.

    ``parameters`` name the entry's float options, if it has any (Keras's
    names, e.g. ``("negative_slope",)``; at most three), and ``defaults`` their
    values when none are given: ``forward(z, *p)`` and ``grad(operand, dy,
    *p)`` then take them after their arrays, and the compiled loops always take
    three, ``forward_loop(z, p0, p1, p2)``, ``grad_loop(operand, delta, p0, p1,
    p2)`` (the unused ones 0). ``float32_parameters``: the values are rounded to
    float32 (a TensorFlow attribute), else kept as given (the functions cast them
    to the dtype, as a Python constant in a Keras graph is).
    """

    name: str
    forward: Callable
    grad: Callable
    formula: str
    grad_formula: str
    sklearn: str | None = None
    aliases: tuple[str, ...] = ()
    grad_reads: str = "output"
    # The same formulas over Eigen's scalar functions (std::exp, ...), for the last n % P elements of a
    # tensor, which TensorFlow evaluates one by one; None where they give the bits of forward/grad.
    tail_forward: Callable | None = field(default=None, compare=False, repr=False)
    tail_grad: Callable | None = field(default=None, compare=False, repr=False)
    row_wise: bool = False  # over the last axis (softmax): its own in-place loops, ``forward_loop``/``grad_loop``
    forward_loop: Callable | None = field(default=None, compare=False, repr=False)
    grad_loop: Callable | None = field(default=None, compare=False, repr=False)
    parameters: tuple[str, ...] = ()
    defaults: tuple[float, ...] = ()
    float32_parameters: bool = False
    symbols: tuple[str, ...] = ()  # the parameters' symbols in ``formula`` (LaTeX)
    by_name: bool = True  # a Keras activation name (False: reached through a layer's options only)
    _loops: dict = field(default_factory=dict, compare=False, repr=False)

    @cached_property  # a position in an immutable table: looked up once (== compares every field)
    def id(self) -> int:
        return ACTIVATIONS.index(self)

    def __call__(self, x):
        """Keras's function of this activation on ``x`` (``activations.get("relu")(x)`` is ``activations.relu(x)``)."""
        function = _ENTRY_FUNCTIONS.get(self.name)
        return function(x) if function is not None else _evaluate(self, x)

    def __eq__(self, other):
        """Entries compare by their fields; an entry also equals Keras's function of its name (``get("relu") == relu``)."""
        if isinstance(other, Activation):
            return self is other or all(getattr(self, f.name) == getattr(other, f.name)
                                        for f in dataclasses.fields(self) if f.compare)
        if callable(other) and other in _FUNCTIONS:
            return _FUNCTIONS[other] is self
        return NotImplemented

    @property
    def reads_input(self) -> bool:
        return self.grad_reads == "input"

    def parameter_values(self, values=None) -> tuple[float, float, float]:
        """The parameters as the layout keeps them and the loops take them: ``values`` (or the defaults), rounded
        to float32 where the entry says so, padded with zeros to three."""
        values = self.defaults if values is None else tuple(values)
        if len(values) != len(self.parameters):
            raise ValueError(f"activation {self.name!r} takes {len(self.parameters)} parameter(s) "
                             f"{self.parameters}, got {values!r}")
        values = tuple(float(np.float32(v)) if self.float32_parameters else float(v) for v in values)
        return values + (0.0,) * (3 - len(values))

    def grad_operand(self, z, y):
        """What ``grad`` takes as its first argument: the pre-activation ``z`` or the output ``y``."""
        return z if self.reads_input else y

    @property
    def loops(self) -> tuple[Callable, Callable]:
        """Compiled in-place loops over a (batch, units) buffer: ``forward_loop(z)``, ``grad_loop(y, delta)``."""
        if not self._loops and self.row_wise:
            # Called, not inlined (as the row losses): a row loop gains nothing from inlining and costs compile time.
            self._loops["forward"], self._loops["grad"] = _jit(self.forward_loop), _jit(self.grad_loop)
        if not self._loops:
            parametric = len(self.parameters)
            self._loops["forward"] = activation_loop(_jit(self.forward), f"{self.name}_loop", inline=True,
                                                     parametric=parametric)
            self._loops["grad"] = gradient_loop(_jit(self.grad), f"{self.name}_grad_loop", inline=True,
                                                parametric=parametric)
        return self._loops["forward"], self._loops["grad"]

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"


LINEAR = Activation("linear", linear, linear_grad, r"a = z", r"f'(z) = 1", "identity")
SIGMOID = Activation("sigmoid", sigmoid, sigmoid_grad, r"a = \sigma(z) = 1/(1+e^{-z})", r"f'(z) = a(1-a)", "logistic")
TANH = Activation("tanh", tanh, tanh_grad, r"a = \tanh z", r"f'(z) = 1-a^2", "tanh")
RELU = Activation("relu", _relu, relu_grad, r"a = \max(z, 0)", r"f'(z) = [a > 0]", "relu")

SOFTMAX = Activation("softmax", softmax, softmax_grad, r"a_j = e^{z_j} / \textstyle\sum_k e^{z_k}",
                     r"\partial L/\partial z_j = (dy_j - \textstyle\sum_k dy_k a_k)\,a_j", "softmax", row_wise=True,
                     forward_loop=_softmax_in_place, grad_loop=_softmax_grad_in_place)

LEAKY_RELU = Activation("leaky_relu", leaky_relu, leaky_relu_grad, r"a = z\ (z > 0),\ s z\ \text{otherwise}",
                        r"f'(z) = 1\ (z > 0),\ s\ \text{otherwise}", grad_reads="input",
                        parameters=("negative_slope",), defaults=(_LEAKY_SLOPE,), float32_parameters=True,
                        symbols=("s",))
RELU6 = Activation("relu6", _relu6, relu6_grad, r"a = \min(\max(z, 0), 6)", r"f'(z) = [0 < a < 6]")
RELU_OPTIONS = Activation("relu_options", relu_options, relu_options_grad,
                          r"a = [z > t]\,\min(z, m) - s\max(t - z, 0)",
                          r"f'(z) = [z > t]\,[z \le m] + s\,[z < t]\ (\text{relu6's } [0 < z < 6]\ \text{when } m = 6, t = 0)",
                          grad_reads="input",
                          parameters=("negative_slope", "max_value", "threshold"), defaults=(0.0, np.inf, 0.0),
                          symbols=("s", "m", "t"), by_name=False)
ELU = Activation("elu", elu, elu_grad, r"a = z\ (z \ge 0),\ e^z - 1\ \text{otherwise}",
                 r"f'(z) = 1\ (a \ge 0),\ a + 1\ \text{otherwise}", tail_forward=elu_using(_exp_tail))
SELU = Activation("selu", selu, selu_grad, r"a = \lambda z\ (z \ge 0),\ \lambda\alpha(e^z - 1)\ \text{otherwise}",
                  r"f'(z) = \lambda\ (a \ge 0),\ a + \lambda\alpha\ \text{otherwise}",
                  tail_forward=selu_using(_exp_tail))
SOFTPLUS = Activation("softplus", softplus, softplus_grad, r"a = \log(1 + e^z)", r"f'(z) = \sigma(z)",
                      grad_reads="input", tail_forward=softplus_using(_exp_tail, _log1p_tail),
                      tail_grad=softplus_grad_using(_logistic_tail))
SOFTSIGN = Activation("softsign", softsign, softsign_grad, r"a = z / (|z| + 1)", r"f'(z) = 1 / (|z| + 1)^2",
                      grad_reads="input")
SILU = Activation("silu", silu, silu_grad, r"a = z\,\sigma(z)", r"f'(z) = \sigma(z)\,(1 + z(1 - \sigma(z)))",
                  aliases=("swish",), grad_reads="input", tail_forward=silu_using(_logistic_tail),
                  tail_grad=silu_grad_using(_logistic_tail))
HARD_SIGMOID = Activation("hard_sigmoid", hard_sigmoid, hard_sigmoid_grad, r"a = \mathrm{relu6}(z + 3) / 6",
                          r"f'(z) = [-3 < z < 3] / 6", grad_reads="input")
EXPONENTIAL = Activation("exponential", exponential, exponential_grad, r"a = e^z", r"f'(z) = a",
                         tail_forward=exponential_using(_exp_tail))
HARD_SILU = Activation("hard_silu", hard_silu_forward, hard_silu_grad, r"a = z\,\mathrm{relu6}(z + 3) / 6",
                       r"f'(z) = \mathrm{relu6}(z + 3)/6 + z\,[-3 < z < 3]/6", aliases=("hard_swish",),
                       grad_reads="input")

_erfc_tail = jitable(eigen.erfc_scalar)
_tanh_tail = jitable(eigen.tanh_scalar)
GELU = Activation("gelu", gelu_exact, gelu_exact_grad, r"a = \tfrac12 z\,(1 + \mathrm{erf}(z/\sqrt2))",
                  r"f'(z) = \Phi(z) + z\,\varphi(z)", grad_reads="input", tail_forward=gelu_using(_erfc_tail),
                  tail_grad=gelu_grad_using(_erfc_tail, _exp_tail))
GELU_APPROXIMATE = Activation("gelu_approximate", gelu_approximate, gelu_approximate_grad,
                              r"a = \tfrac12 z\,(1 + \tanh(\sqrt{2/\pi}(z + 0.044715 z^3)))",
                              r"f'(z) = \tfrac12(1 + t) + \tfrac12 z (1 - t^2)\sqrt{2/\pi}(1 + 3 \cdot 0.044715 z^2)",
                              grad_reads="input", tail_forward=gelu_approximate_using(_tanh_tail),
                              tail_grad=gelu_approximate_grad_using(_tanh_tail))

#: Every activation, in id order.
ACTIVATIONS: tuple[Activation, ...] = (LINEAR, SIGMOID, TANH, RELU, SOFTMAX, LEAKY_RELU, RELU6, ELU, SELU, SOFTPLUS,
                                       SOFTSIGN, SILU, HARD_SIGMOID, EXPONENTIAL, GELU, GELU_APPROXIMATE, RELU_OPTIONS,
                                       HARD_SILU)
BY_NAME = {name: activation for activation in ACTIVATIONS if activation.by_name
           for name in (activation.name, *activation.aliases)}
BY_ID = dict(enumerate(ACTIVATIONS))
EVERY_NAME = {activation.name: activation for activation in ACTIVATIONS}  # layer-only entries too (explain, configs)


_ENTRY_FUNCTIONS = {}  # filled below: an entry's Keras function, by the entry's name


def get(identifier) -> Activation:
    """Look up an activation by Keras name, entry or function of this module (``None`` means linear)."""
    if identifier is None:
        return LINEAR
    if callable(identifier) and not isinstance(identifier, Activation):
        if identifier in _FUNCTIONS:
            return _FUNCTIONS[identifier]
        name = getattr(identifier, "__name__", repr(identifier))
        raise NotImplementedError(f"activation {name}: a layer trains only the activations of gdcore's table "
                                  f"({', '.join(BY_NAME)}), given by name, entry or function of gdcore.activations; "
                                  f"{name} has no entry (its gradient in Keras's fit is not reproduced yet)")
    if isinstance(identifier, Activation):
        if not identifier.by_name:
            raise ValueError(f"activation {identifier.name!r} is ReLU's options, not an activation of its own (Keras "
                             "has no such name): use the layer, keras.layers.ReLU(max_value=..., "
                             "negative_slope=..., threshold=...)")
        return identifier
    return lookup(BY_NAME, identifier, "activation")


# --- Keras's functions: keras.activations.relu(x, ...) and the others, on arrays ----------------------


def _evaluate(entry: Activation, x, parameters=None, fused: bool = False) -> np.ndarray:
    """``entry`` on ``x`` as the current numerics profile evaluates it (:func:`gdcore.config.numerics`).

    ``x`` is anything ``np.asarray`` takes: a float32 or float64 array (or
    NumPy scalar) keeps its dtype, anything else becomes ``floatx()`` (Keras
    makes a Python float, or a list of them, a float32 tensor). The result has ``x``'s shape; each element is computed as
    the profile computes the op of a Keras layer (elementwise ops by their
    position in the flattened array, the softmax over the last axis).
    """
    from gdcore import config
    from gdcore.numerics import get_profile

    z = keras_float(x)
    if z.ndim == 0:
        return _evaluate(entry, z.reshape(1, 1), parameters)[0, 0]
    flat = np.ascontiguousarray(z.reshape(-1, z.shape[-1]) if entry.row_wise else z.reshape(1, -1))
    values = entry.parameter_values(parameters)
    return get_profile(config.numerics()).activate(entry, flat, fused, parameters=values).reshape(z.shape)


def _option(value, argument: str, function: str, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{function}({argument}=...) must be a number{' or None' if allow_none else ''}, "
                        f"got {value!r}")
    if np.isnan(value):
        raise ValueError(f"{function}({argument}=...) must not be NaN")
    return float(value)


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    r"""Keras's ``keras.activations.relu``: :math:`\min(x, m)` above the threshold :math:`t`, :math:`s (x - t)` below.

    The defaults are ``relu``; ``max_value=6`` alone ``relu6``; a
    ``negative_slope`` alone ``leaky_relu``; anything else the ops Keras 3
    composes (``relu_options``). As Keras's function (not its layer), negative
    options are taken as they are.
    """
    slope = _option(negative_slope, "negative_slope", "relu")
    cap = _option(max_value, "max_value", "relu", allow_none=True)
    threshold = _option(threshold, "threshold", "relu")
    if slope == 0 and threshold == 0 and cap is None:
        return _evaluate(RELU, x)
    if slope == 0 and threshold == 0 and cap == 6:
        return _evaluate(RELU6, x)
    if cap is None and threshold == 0:
        return _evaluate(LEAKY_RELU, x, (slope,))
    return _evaluate(RELU_OPTIONS, x, (slope, np.inf if cap is None else cap, threshold))


def leaky_relu(x, negative_slope=0.2):
    r"""Keras's ``keras.activations.leaky_relu``: :math:`x` for :math:`x > 0`, else :math:`s x` (``s`` rounded to float32)."""
    return _evaluate(LEAKY_RELU, x, (_option(negative_slope, "negative_slope", "leaky_relu"),))


def elu(x, alpha=1.0):
    r"""Keras's ``keras.activations.elu``: :math:`x` for :math:`x > 0`, else :math:`\alpha (e^x - 1)`.

    ``alpha`` other than 1 is Keras 3's ``where(x > 0, elu(x), alpha * elu(x))``
    with ``alpha`` a constant in ``x``'s dtype.
    """
    alpha = _option(alpha, "alpha", "elu")
    y = _evaluate(ELU, x)
    if alpha == 1:
        return y
    return np.where(np.asarray(y) > 0, y, y.dtype.type(alpha) * y)


def _over_axes(function, x, axis, name: str) -> np.ndarray:
    """``function`` of a (rows, k) array applied along ``axis`` of ``x`` (an int, a tuple of them, or None: all).

    As Keras's ``ops.softmax``: the axes moved last, in the given order, and flattened into one.
    """
    z = _evaluate(LINEAR, x)
    if z.ndim == 0:
        raise ValueError(f"{name} needs at least one axis, got a scalar")
    axes = tuple(range(z.ndim)) if axis is None else axis if isinstance(axis, tuple) else (axis,)
    if not axes or any(isinstance(a, (bool, np.bool_)) or not isinstance(a, (int, np.integer)) or
                       not -z.ndim <= a < z.ndim for a in axes):
        raise ValueError(f"{name}(axis=...) must be an axis of x (ndim {z.ndim}), a tuple of them or None, "
                         f"got {axis!r}")
    axes = tuple(int(a) % z.ndim for a in axes)
    if len(set(axes)) != len(axes):
        raise ValueError(f"{name}(axis=...) repeats an axis: {axis!r}")
    kept = [a for a in range(z.ndim) if a not in axes]
    moved = np.transpose(z, (*kept, *axes))
    rows = np.ascontiguousarray(moved.reshape(-1, math.prod(moved.shape[len(kept):])))
    return np.transpose(function(rows).reshape(moved.shape), np.argsort((*kept, *axes)))


def softmax(x, axis=-1):
    r"""Keras's ``keras.activations.softmax``: :math:`e^{x_j - m} / \sum_k e^{x_k - m}` along ``axis``.

    ``axis``: the last by default, any axis, a tuple of axes (Keras's
    ``ops.softmax``: normalised over all of them at once) or None (all).
    """
    return _over_axes(lambda rows: _evaluate(SOFTMAX, rows), x, axis, "softmax")


def log_softmax(x, axis=-1):
    r"""Keras's ``keras.activations.log_softmax``: :math:`s_j - \log \sum_k e^{s_k}`, :math:`s = x - \max_k x_k`.

    TensorFlow's ``LogSoftmax`` kernel: under ``numerics="tensorflow"`` each
    row's exps in Eigen's packets from the row's start (the C library's on
    its last ``k % P``), summed in Eigen's order, the log of the row sums
    positioned in the (rows,) vector; in the plain profile the C library's
    functions and sums front to back. ``axis`` as :func:`softmax`'s.
    """
    from gdcore import config
    from gdcore.numerics.eigen_reductions import inner_sum

    packet = eigen.packet_size(np.float32) if config.numerics() == "tensorflow" else 0

    def rows_log_softmax(z):
        shifted = z - z.max(axis=1, keepdims=True)
        n_rows, k = shifted.shape
        if not packet:
            exps = libm_exp(shifted)
            totals = np.empty(n_rows, z.dtype)
            for b in range(n_rows):
                total = z.dtype.type(0)
                for value in exps[b]:
                    total = total + value
                totals[b] = total
            return shifted - libm_log(totals)[:, None]
        width = eigen.packet_size(z.dtype)
        whole = k - k % width
        exps = np.empty_like(shifted)
        exps[:, :whole] = eigen.exp(shifted[:, :whole])
        exps[:, whole:] = eigen.exp_scalar(shifted[:, whole:])
        totals = np.array([inner_sum(row) for row in exps], dtype=z.dtype)
        packed = n_rows - n_rows % width
        logs = np.empty_like(totals)
        logs[:packed] = eigen.log(totals[:packed])
        logs[packed:] = libm_log(totals[packed:])
        return shifted - logs[:, None]

    return _over_axes(rows_log_softmax, x, axis, "log_softmax")


def gelu(x, approximate=False):
    r"""Keras's ``keras.activations.gelu``: :math:`\tfrac12 x(1 + \mathrm{erf}(x/\sqrt2))`, or its tanh approximation.

    ``approximate=False`` (Keras's default, the ``"gelu"`` string) is the
    exact, erf form, Keras's bits under ``numerics="tensorflow"``;
    ``approximate=True`` is :data:`GELU_APPROXIMATE`, the form of Keras's fit
    graph, where :math:`x^3` is two products: called eagerly, TensorFlow's
    ``Pow`` kernel gives the cube (Eigen's vectorised ``pow``, not reproduced
    here) up to 2 ulp apart from them, which ``1 + tanh`` and the final product
    can magnify (measured: about 1e-6 absolute at x near 4.7 in float32, 2e-15
    in float64 where the value is tiny).
    """
    if not isinstance(approximate, (bool, np.bool_)):
        raise ValueError(f"approximate must be True or False, got {approximate!r}")
    return _evaluate(GELU_APPROXIMATE if approximate else GELU, x)


def silu(x):
    r"""Keras's ``keras.activations.silu`` (``swish``): :math:`x\,\sigma(x)`, eagerly ``x * sigmoid(x)`` as ``tf.nn.silu`` computes it.

    (In a layer, the entry's form runs: in float32 on oneDNN's paths the fused swish of Keras's fit.)
    """
    z = _evaluate(LINEAR, x)
    return z * _evaluate(SIGMOID, z)


def hard_sigmoid(x):
    r"""Keras's ``keras.activations.hard_sigmoid``: :math:`\mathrm{relu6}(x + 3) / 6`, eagerly a true division.

    (Keras's fit graph multiplies by :math:`\mathrm{fl}(1/6)` instead: the layer's entry does, this function does not.)
    """
    z = _evaluate(LINEAR, x)
    return _evaluate(RELU6, z + z.dtype.type(3)) / z.dtype.type(6)


def hard_silu(x):
    r"""Keras's ``keras.activations.hard_silu`` (``hard_swish``): :math:`x \cdot \mathrm{relu6}(x + 3) / 6`, as ``x * hard_sigmoid(x)``."""
    z = _evaluate(LINEAR, x)
    return z * hard_sigmoid(z)


def mish(x):
    r"""Keras's ``keras.activations.mish``: :math:`x \tanh(\mathrm{softplus}(x))`, each op as the profile evaluates it."""
    z = _evaluate(LINEAR, x)
    return z * _evaluate(TANH, _evaluate(SOFTPLUS, z))


def _function(entry: Activation):
    def function(x):
        return _evaluate(entry, x)

    function.__name__ = function.__qualname__ = entry.name
    function.__doc__ = f"Keras's ``keras.activations.{entry.name}`` on an array: :math:`{entry.formula}`."
    return function


linear, sigmoid, tanh, relu6, selu, softplus, softsign, exponential = (
    _function(entry) for entry in (LINEAR, SIGMOID, TANH, RELU6, SELU, SOFTPLUS, SOFTSIGN, EXPONENTIAL))
swish = silu
hard_swish = hard_silu
#: Keras's function of each name, and the entry a layer given it runs (``Dense(activation=activations.relu)``).
_FUNCTIONS = {relu: RELU, leaky_relu: LEAKY_RELU, elu: ELU, softmax: SOFTMAX, gelu: GELU, linear: LINEAR,
              sigmoid: SIGMOID, tanh: TANH, relu6: RELU6, selu: SELU, softplus: SOFTPLUS, softsign: SOFTSIGN,
              silu: SILU, hard_sigmoid: HARD_SIGMOID, exponential: EXPONENTIAL, hard_silu: HARD_SILU}
_ENTRY_FUNCTIONS.update((entry.name, function) for function, entry in _FUNCTIONS.items())
