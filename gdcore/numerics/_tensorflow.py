r"""The ``"tensorflow"`` numerics profile: every reduction in the order Keras 3 on TensorFlow's CPU kernels uses.

Reproduced for tensorflow-cpu 2.21.0 (oneDNN 3.7.3, Eigen as shipped in the
wheel) and keras 3.15.1, on any x86-64 CPU TensorFlow runs on: TensorFlow takes
one of five float32 code paths, decided by the CPU and the environment
(:mod:`gdcore.numerics.machine`; ``print(gdcore.numerics.cpu_info())`` says
which), and the profile follows it:

``onednn-avx512`` / ``onednn-avx2``
    oneDNN's ops are on (TensorFlow's default on CPUs with AVX512_VNNI,
    AVX512_BF16, AVX_VNNI or AMX): every float32 ``MatMul`` is oneDNN's sgemm,
    generated for the AVX-512 or the AVX2 vector width, accumulating with fused
    multiply-adds (:mod:`gdcore.numerics.onednn`); in a ``tf.function`` a Dense
    layer's ``MatMul + BiasAdd + Sigmoid/Tanh`` is fused into one oneDNN inner
    product with oneDNN's own logistic/tanh.
``eigen-avx512`` / ``eigen-avx2``
    oneDNN's ops are off (every other CPU: AMD Zen 2/3, Intel Skylake, ...):
    Eigen dispatches each product as for float64; its tensor contractions run
    TensorFlow's custom contraction kernel, oneDNN's sgemm on Eigen's blocks; a
    Dense layer with two or more units runs as ``_FusedMatMul``; sigmoid and
    tanh are Eigen's (:mod:`gdcore.numerics.eigen_products`, :mod:`gdcore.numerics.eigen`).
``eigen-gebp``
    The same with ``TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL=0``: Eigen's own GEBP.

Float64 always runs on Eigen (compiled for AVX *without* FMA: packets of 4
doubles, every product rounded before it is added), dispatched by TensorFlow's
``LaunchBatchMatMul`` (:func:`gdcore.numerics.eigen_products.launch_matmul`),
with depth blocks sized from the L1 cache Eigen reads from CPUID.

Keras trains inside a ``tf.function``, where TensorFlow's graph optimizer
rewrites some ops (fused activations above; ``x / sqrt(y)`` becomes
``x * rsqrt(y)`` in optimizer updates, :func:`gdcore.optimizers.divide_by_sqrt`);
eager calls such as ``model(x)`` can therefore differ from
``fit``/``predict``/``evaluate``. This profile reproduces the compiled step.

Per operation (B = batch rows, K = input features of the layer, N = its units):

``matmul``, ``dense`` (forward), ``matmul_grad_input`` (``delta @ kernel.T``), ``matmul_grad_kernel`` (``inputs.T @ delta``)
    float32: the path's sgemm or Eigen dispatch (rules in the modules above,
    each with the shapes it was verified on); float64: Eigen.
``sum_vector`` (``tf.reduce_sum`` of the per-sample losses), ``sum_columns`` (a Dense layer's bias gradient)
    Eigen's vectorised inner reduction; ``BiasAddGrad`` for N >= 2 (Keras adds a
    bias with ``tf.nn.bias_add`` for more than one unit and ``AddV2`` for one,
    whose gradient is the ``reduce_sum`` of the column) (:mod:`gdcore.numerics.eigen_reductions`).
Activations (:func:`activation_functions`, ``Kernels.activation_loops``)
    float32 sigmoid, tanh, elu and silu: oneDNN's fused kernels on the
    ``onednn-*`` paths (``Float32Path.activations``); otherwise every entry
    of :mod:`gdcore.activations` with Eigen's packet formulas and, where an
    exponential, logarithm, logistic, tanh or erfc makes the scalar path
    differ, Eigen's scalar formulas on the last ``n % P`` elements
    (:func:`positioned`). Gradients: the entries' (``SigmoidGrad``,
    ``TanhGrad``, ``EluGrad``, ...), positioned likewise. Verified op by op
    and in fit (``tests/test_activations.py``,
    ``tests/test_tensorflow_training.py``); not reproduced: on the ``eigen-*``
    paths TensorFlow fuses Elu into ``_FusedMatMul``, whose output kernel
    splits packets by output block, so an elu layer whose units are not a
    multiple of 8 differs by a few ulp there (2 ulp in the bias after one
    epoch, measured with 3 units).
    After a product without a bias (``Dense(use_bias=False)``) TensorFlow
    fuses nothing into it (``activation_functions(..., fused=False)``):
    sigmoid and tanh are Eigen's standalone ops, elu and the rest the
    entries' positioned formulas on every path (so the elu case above is
    reproduced there), silu oneDNN's ``_MklSwish`` where oneDNN's ops are on
    (``Float32Path.standalone``); verified in fit by
    ``tests/test_layer_options.py`` (onednn-avx512, and once by hand on the
    onednn-avx2 and eigen-avx512 paths reached as ``tests/test_tensorflow_paths.py`` reaches them).

Not reproduced (the rules above are used; :mod:`gdcore.numerics.verify` reports the match rate):
where TensorFlow splits one large operation between its intra-op threads in a
way that changes a summation order (``tests/test_numerics_tensorflow.py`` lists
each case as a strict expected failure with its measured distance).

TensorFlow also runs its kernels with denormals flushed to zero (FTZ/DAZ);
the elementwise kernels emulate it, the reductions do not (training values are
normal numbers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import numpy as np
from numba import njit, types
from numba.extending import overload

from functools import partial

from gdcore._dtype import cast, jitable
from gdcore.numerics import eigen, eigen_products, onednn
from gdcore.numerics._in_place import activation_loop, gradient_loop
from gdcore.numerics.eigen_reductions import (inner_sum, reduce_sum_rows, reduce_sum_rows_loop, sum_columns,
                                              sum_columns_loop, sum_vector, sum_vector_loop)
from gdcore.numerics.machine import FLOAT32_PATHS as BACKENDS, Caches, cpu_info

_jit = njit(cache=True, error_model="numpy", nogil=True)



def _resolve(caches: Caches | None, backend: str | None) -> tuple[Caches, str]:
    """This machine's cache sizes and float32 path where the caller gave none."""
    info = cpu_info() if caches is None or backend is None else None
    return (info.caches if caches is None else caches), (info.float32_products if backend is None else backend)


# --- Eigen's products, as TensorFlow dispatches them (eigen_products.launch_matmul) -------


def _eigen_matmul(lhs, rhs, lhs_row_major, rhs_row_major, caches):
    """``lhs @ rhs`` (float64) through TensorFlow's ``LaunchBatchMatMul`` and Eigen.

    ``lhs``/``rhs`` are the operands as multiplied; ``*_row_major`` tells
    whether each is the stored (row-major) tensor or the transpose of one.
    """
    return eigen_products.launch_matmul(lhs, rhs, lhs_row_major, rhs_row_major, caches.l1, caches.l2, caches.l3)


@_jit
def _eigen_matmul_loop(lhs, rhs, lhs_row_major, rhs_row_major, out, caches):
    eigen_products.launch_matmul_loop(lhs, rhs, lhs_row_major, rhs_row_major, out, caches.l1, caches.l2, caches.l3)


# --- NumPy functions -------------------------------------------------------------------


# --- float32 on Eigen (oneDNN's ops off) -----------------------------------------------------
# Eigen dispatches each product as for float64; a contraction runs TensorFlow's custom
# contraction kernel, oneDNN's sgemm on Eigen's blocks, whose order depends on the vector
# family oneDNN generates for ("avx512", "avx2"), or Eigen's own GEBP when that kernel is
# disabled (family ""). In a tf.function Keras's Dense layer with two or more units runs
# as _FusedMatMul (always the contraction, bias added once): eigen_products.fused_matmul.


def _eigen32_path(family: str):
    custom = bool(family)
    tag = family or "gebp"
    family = family or "avx512"  # not read without the custom kernel

    def matmul(inputs, kernel, caches):
        return eigen_products.launch_matmul(inputs, kernel, True, True, caches.l1, caches.l2, caches.l3, custom,
                                            family)

    def matmul_grad_input(delta, kernel, caches):
        return eigen_products.launch_matmul(delta, kernel.T, True, False, caches.l1, caches.l2, caches.l3, custom,
                                            family)

    def matmul_grad_kernel(inputs, delta, caches):
        return eigen_products.launch_matmul(inputs.T, delta, False, True, caches.l1, caches.l2, caches.l3, custom,
                                            family)

    def dense(inputs, kernel, bias, caches):
        if kernel.shape[1] == 1:  # Keras adds a one-unit bias with AddV2: not fused
            return matmul(inputs, kernel, caches) + bias
        return eigen_products.fused_matmul(inputs, kernel, bias, caches.l1, caches.l2, caches.l3, custom, family)

    def matmul_loop(inputs, kernel, out, caches):
        eigen_products.launch_matmul_loop(inputs[:, :], kernel[:, :], True, True, out[:, :], caches.l1, caches.l2,
                                          caches.l3, custom, family)

    def matmul_grad_input_loop(delta, kernel, out, caches):
        eigen_products.launch_matmul_loop(delta[:, :], kernel.T[:, :], True, False, out[:, :], caches.l1, caches.l2,
                                          caches.l3, custom, family)

    def matmul_grad_kernel_loop(inputs, delta, out, caches):
        eigen_products.launch_matmul_loop(inputs.T[:, :], delta[:, :], False, True, out[:, :], caches.l1, caches.l2,
                                          caches.l3, custom, family)

    def dense_loop(inputs, kernel, bias, out, caches):
        if kernel.shape[1] == 1:
            eigen_products.launch_matmul_loop(inputs[:, :], kernel[:, :], True, True, out[:, :], caches.l1,
                                              caches.l2, caches.l3, custom, family)
            for b in range(out.shape[0]):
                out[b, 0] = out[b, 0] + bias[0]
        else:
            eigen_products.fused_matmul_loop(inputs[:, :], kernel[:, :], bias, out[:, :], caches.l1, caches.l2,
                                             caches.l3, custom, family)

    loops = []
    for loop in (matmul_loop, matmul_grad_input_loop, matmul_grad_kernel_loop, dense_loop):
        loop.__name__ = loop.__qualname__ = f"_eigen32_{tag}_{loop.__name__}"
        loops.append(_jit(loop))
    return Float32Path(f"eigen-{tag}", matmul, matmul_grad_input, matmul_grad_kernel, eigen.logistic_tensorflow,
                       eigen.tanh_tensorflow, *loops[:3], eigen.logistic_tensorflow_loop, eigen.tanh_tensorflow_loop,
                       dense=dense, dense_loop=loops[3])


@dataclass(frozen=True)
class Float32Path:
    """The float32 kernels of one of TensorFlow's code paths: NumPy functions and their Numba twins.

    Products take ``(a, b, caches)`` (NumPy) and ``(a, b, out, caches)``
    (Numba); activations are the layer's forward activation as the compiled
    Keras step evaluates it, ``f(z)`` and in place ``f_loop(z)``.
    """

    name: str
    matmul: Callable
    matmul_grad_input: Callable
    matmul_grad_kernel: Callable
    sigmoid: Callable
    tanh: Callable
    matmul_loop: Callable
    matmul_grad_input_loop: Callable
    matmul_grad_kernel_loop: Callable
    sigmoid_loop: Callable
    tanh_loop: Callable
    dense: Callable | None = None  # (inputs, kernel, bias, caches) when the layer's product is not matmul + bias
    dense_loop: Callable | None = None  # (inputs, kernel, bias, out, caches)
    # Other forward activations this path evaluates its own way, by name: (f(z), f_loop(z)).
    activations: dict = field(default_factory=dict)
    # Those of ``activations`` that are an op of their own, run the same way after a product without a bias; the
    # others are fused into the Dense layer's ``MatMul + BiasAdd`` and, without a bias, run as Eigen's standalone op.
    standalone: frozenset = frozenset()


def _onednn_path(family: str) -> Float32Path:
    """oneDNN's sgemm for every float32 product (kernels for ``family``), its fused logistic/tanh."""
    kernels = [getattr(onednn, f"{name}_{family}{suffix}") for suffix in ("", "_loop")
               for name in ("matmul", "matmul_grad_input", "matmul_grad_kernel")]
    # oneDNN fuses Elu into the Dense layer's inner product and runs x * sigmoid(x) as its swish, an op of its own
    # (TensorFlow's graph optimizer rewrites Mul(x, Sigmoid(x)) to _MklSwish whatever produced x); its softmax
    # primitive runs tf.nn.softmax whatever produced x.
    fused = {"elu": (onednn.elu, onednn.elu_loop), "silu": (onednn.swish, onednn.swish_loop),
             "softmax": (getattr(onednn, f"softmax_{family}"), getattr(onednn, f"softmax_{family}_loop"))}
    return Float32Path(f"onednn-{family}", *kernels[:3], onednn.logistic, onednn.tanh, *kernels[3:],
                       onednn.logistic_loop, onednn.tanh_loop, activations=fused,
                       standalone=frozenset({"silu", "softmax"}))


FLOAT32_PATHS = {
    **{path.name: path for path in (_onednn_path("avx512"), _onednn_path("avx2"))},
    **{path.name: path for path in (_eigen32_path("avx512"), _eigen32_path("avx2"), _eigen32_path(""))},
}


def float32_path(backend: str) -> Float32Path:
    """The kernels of ``backend`` (one of :data:`BACKENDS`); a path not reproduced is an error naming it."""
    if backend not in FLOAT32_PATHS:
        known = ", ".join(FLOAT32_PATHS)
        raise NotImplementedError(f"the 'tensorflow' profile does not reproduce TensorFlow's float32 path {backend!r} "
                                  f"(reproduced: {known}); see gdcore.numerics.cpu_info()")
    return FLOAT32_PATHS[backend]


# --- NumPy functions -------------------------------------------------------------------
# ``caches`` and ``backend`` default to this machine's (gdcore.numerics.cpu_info()).


def matmul(inputs: np.ndarray, kernel: np.ndarray, caches: Caches | None = None, backend: str | None = None) -> np.ndarray:
    r"""Forward product :math:`z_{bj} = \sum_k a_{bk} W_{kj}` in TensorFlow's order (module docstring)."""
    caches, backend = _resolve(caches, backend)
    if inputs.dtype == np.float64:
        return _eigen_matmul(inputs, kernel, True, True, caches)
    return float32_path(backend).matmul(inputs, kernel, caches)


def matmul_grad_input(delta: np.ndarray, kernel: np.ndarray, caches: Caches | None = None,
                      backend: str | None = None) -> np.ndarray:
    r"""Backward product :math:`g_{bk} = \sum_j \delta_{bj} W_{kj}` in TensorFlow's order (module docstring)."""
    caches, backend = _resolve(caches, backend)
    if delta.dtype == np.float64:
        return _eigen_matmul(delta, kernel.T, True, False, caches)
    return float32_path(backend).matmul_grad_input(delta, kernel, caches)


def matmul_grad_kernel(inputs: np.ndarray, delta: np.ndarray, caches: Caches | None = None,
                       backend: str | None = None) -> np.ndarray:
    r"""Kernel gradient :math:`g_{kj} = \sum_b a_{bk}\delta_{bj}` in TensorFlow's order (module docstring)."""
    caches, backend = _resolve(caches, backend)
    if inputs.dtype == np.float64:
        return _eigen_matmul(inputs.T, delta, False, True, caches)
    return float32_path(backend).matmul_grad_kernel(inputs, delta, caches)


def dense(inputs: np.ndarray, kernel: np.ndarray, bias: np.ndarray, caches: Caches | None = None,
          backend: str | None = None) -> np.ndarray:
    """A Dense layer's pre-activation ``inputs @ kernel + bias`` as Keras's compiled step computes it."""
    caches, backend = _resolve(caches, backend)
    path = float32_path(backend) if inputs.dtype == np.float32 else None
    if path is not None and path.dense is not None:
        return path.dense(inputs, kernel, bias, caches)
    return matmul(inputs, kernel, caches, backend) + bias


def sigmoid(z: np.ndarray, backend: str | None = None) -> np.ndarray:
    """A Dense layer's sigmoid as Keras's compiled step computes it (module docstring)."""
    if z.dtype == np.float64:
        return eigen.logistic_tensorflow(z)
    return float32_path(_resolve(None, backend)[1]).sigmoid(z)


def tanh(z: np.ndarray, backend: str | None = None) -> np.ndarray:
    """A Dense layer's tanh as Keras's compiled step computes it (module docstring)."""
    if z.dtype == np.float64:
        return eigen.tanh_tensorflow(z)
    return float32_path(_resolve(None, backend)[1]).tanh(z)


# --- softmax (softmax_op_functor.h on Eigen; oneDNN's primitive in float32 on oneDNN paths) ----

_exp_packet, _exp_tail = jitable(eigen.exp), jitable(eigen.exp_scalar)
_reciprocal_packet = jitable(eigen.reciprocal)


@jitable
def _softmax_eigen_in_place(z):
    """TensorFlow's ``Softmax`` kernel on Eigen, in place on a (B, k) array.

    Per row: m = max z; e = exp(z - m), Eigen's packet/tail rule over the whole
    flattened tensor; the row sum in Eigen's inner-most order; its
    ``inverse()`` (Eigen's packet reciprocal, float32 RCPPS + Newton step) by
    the row's position in the (B,) vector of sums; e times that.
    """
    rows, k = z.shape
    packet = 32 // z.itemsize
    end = rows * k - (rows * k) % packet
    for b in range(rows):
        row = z[b]
        largest = row[0]
        for j in range(1, k):
            largest = max(largest, row[j])
        for j in range(k):
            shifted = row[j] - largest
            row[j] = _exp_packet(shifted) if b * k + j < end else _exp_tail(shifted)
        total = inner_sum(row)
        inverse = _reciprocal_packet(total) if b < rows - rows % packet else cast(1, total) / total
        for j in range(k):
            row[j] = row[j] * inverse


@jitable
def _softmax_grad_in_place(y, delta):
    """TensorFlow's softmax gradient, ``(dy - reduce_sum(dy * y, -1)) * y``, the sum in Eigen's inner-most order."""
    rows, k = y.shape
    products = np.empty(k, y.dtype)
    for b in range(rows):
        for j in range(k):
            products[j] = delta[b, j] * y[b, j]
        weighted = inner_sum(products)
        for j in range(k):
            delta[b, j] = (delta[b, j] - weighted) * y[b, j]


@_jit
def _softmax_eigen_loop(z):
    _softmax_eigen_in_place(z)


@_jit
def softmax_grad_loop(y, delta):
    """Numba twin of :func:`softmax_grad`: ``delta`` is overwritten."""
    _softmax_grad_in_place(y, delta)


def softmax(z: np.ndarray, backend: str | None = None) -> np.ndarray:
    """``tf.nn.softmax(z)`` over the last axis of a (B, k) array: Eigen's kernel, or in float32 the path's own."""
    path_softmax = float32_path(_resolve(None, backend)[1]).activations.get("softmax")
    if z.dtype == np.float32 and path_softmax is not None:
        return path_softmax[0](z)
    out = np.array(z, copy=True, order="C")
    _softmax_eigen_in_place(out)
    return out


def softmax_grad(y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """TensorFlow's softmax gradient from the output ``y`` (:func:`_softmax_grad_in_place`)."""
    out = np.array(dy, copy=True, order="C")
    _softmax_grad_in_place(np.ascontiguousarray(y), out)
    return out


# --- float64 products (Eigen, whatever the float32 path) ---------------------------------


@_jit
def _matmul64_loop(inputs, kernel, out, caches):
    _eigen_matmul_loop(inputs[:, :], kernel[:, :], True, True, out[:, :], caches)


@_jit
def _matmul_grad_input64_loop(delta, kernel, out, caches):
    _eigen_matmul_loop(delta[:, :], kernel.T[:, :], True, False, out[:, :], caches)


@_jit
def _matmul_grad_kernel64_loop(inputs, delta, out, caches):
    _eigen_matmul_loop(inputs.T[:, :], delta[:, :], False, True, out[:, :], caches)


@_jit
def sigmoid_grad_loop(y, delta):
    """``SigmoidGrad`` over a 2-D array (flattened in C order; Eigen's packet/tail rule): ``delta`` is overwritten."""
    eigen.logistic_grad_tensorflow_loop(y, delta)


@_jit
def tanh_grad_loop(y, delta):
    """``TanhGrad`` over a 2-D array (flattened in C order; Eigen's packet/tail rule): ``delta`` is overwritten."""
    eigen.tanh_grad_tensorflow_loop(y, delta)


# --- the compiled kernels of one float32 path ----------------------------------------------


def _by_dtype(float32_function, float64_function, arity: int):
    """An overload typer picking a kernel by the first argument's dtype while typing (the other would not type)."""
    if arity == 1:
        def typer(z):
            function = float32_function if z.dtype == types.float32 else float64_function
            return lambda z: function(z)
    elif arity == 5:
        def typer(inputs, kernel, bias, out, caches):
            function = float32_function if inputs.dtype == types.float32 else float64_function
            return lambda inputs, kernel, bias, out, caches: function(inputs, kernel, bias, out, caches)
    else:
        def typer(first, second, out, caches):
            function = float32_function if first.dtype == types.float32 else float64_function
            return lambda first, second, out, caches: function(first, second, out, caches)
    return typer


def _dispatcher(name: str, float32_function, float64_function, arity: int = 4):
    """A Python stub, named ``name``, that compiled code calls and that resolves by dtype (:func:`_by_dtype`)."""

    def stub(*args):
        raise TypeError(f"{name} is called from compiled code only")

    stub.__name__ = stub.__qualname__ = name
    overload(stub, jit_options={"cache": True})(_by_dtype(float32_function, float64_function, arity))
    return stub


class Kernels:
    """The compiled loops of the ``"tensorflow"`` profile for one float32 path (:func:`kernels`).

    Attributes follow the profile interface of :mod:`gdcore.numerics`:
    ``dense_loop(inputs, kernel, bias, out, caches)``, ``matmul_loop``,
    ``matmul_grad_input_loop``, ``matmul_grad_kernel_loop`` (``(a, b, out,
    caches)``), ``sum_vector_loop``, ``sum_columns_loop``, ``sigmoid_loop(z)``,
    ``tanh_loop(z)``, ``sigmoid_grad_loop(y, delta)``, ``tanh_grad_loop(y, delta)``.
    Each dispatches on the dtype while typing, so a model compiles only its own
    library's kernels.
    """

    takes_caches = True

    def __init__(self, backend: str):
        self._path_loops = {}
        path = float32_path(backend)
        tag = backend.replace("-", "_")
        self.backend = backend
        self.matmul_loop = _dispatcher(f"tf_{tag}_matmul_loop", path.matmul_loop, _matmul64_loop)
        self.matmul_grad_input_loop = _dispatcher(f"tf_{tag}_matmul_grad_input_loop", path.matmul_grad_input_loop,
                                                  _matmul_grad_input64_loop)
        self.matmul_grad_kernel_loop = _dispatcher(f"tf_{tag}_matmul_grad_kernel_loop", path.matmul_grad_kernel_loop,
                                                   _matmul_grad_kernel64_loop)
        self.sigmoid_loop = _dispatcher(f"tf_{tag}_sigmoid_loop", path.sigmoid_loop, eigen.logistic_tensorflow_loop, 1)
        self.tanh_loop = _dispatcher(f"tf_{tag}_tanh_loop", path.tanh_loop, eigen.tanh_tensorflow_loop, 1)
        if path.dense_loop is not None:
            self.dense_loop = _dispatcher(f"tf_{tag}_dense_loop", path.dense_loop, _dense64_loop, arity=5)
        else:
            self.dense_loop = _dense_loop_for(self.matmul_loop, f"tf_{tag}_dense_loop")
        self.sum_vector_loop = sum_vector_loop
        self.sum_columns_loop = sum_columns_loop
        self.reduce_sum_rows_loop = reduce_sum_rows_loop
        self.sigmoid_grad_loop = sigmoid_grad_loop
        self.tanh_grad_loop = tanh_grad_loop
        # Activations TensorFlow evaluates its own way, by name: (forward loop, gradient loop).
        softmax_loop = path.activations.get("softmax", (None, _softmax_eigen_loop))[1]
        self.softmax_loop = _dispatcher(f"tf_{tag}_softmax_loop", softmax_loop, _softmax_eigen_loop, 1)
        self.ACTIVATION_LOOPS = {"sigmoid": (self.sigmoid_loop, sigmoid_grad_loop),
                                 "tanh": (self.tanh_loop, tanh_grad_loop),
                                 "softmax": (self.softmax_loop, softmax_grad_loop)}
        # After a product without a bias: the standalone ops, Eigen's (UNFUSED_ACTIVATIONS).
        self.UNFUSED_ACTIVATION_LOOPS = {"sigmoid": (eigen.logistic_tensorflow_loop, sigmoid_grad_loop),
                                         "tanh": (eigen.tanh_tensorflow_loop, tanh_grad_loop),
                                         "softmax": (self.softmax_loop, softmax_grad_loop)}
        self._path = path
        self._tag = tag

    def activation_loops(self, activation, fused: bool = True):
        """(forward loop, gradient loop) of an activation entry as TensorFlow's kernels evaluate it.

        The loops of :data:`ACTIVATION_LOOPS` by name; otherwise the entry's
        packet formulas with its tail formulas on the last ``n % P`` elements
        (:func:`positioned_loops`), the forward replaced in float32 where this
        path evaluates it its own way (``Float32Path.activations``).
        ``fused=False``: after a product without a bias, where TensorFlow fuses
        nothing: :data:`UNFUSED_ACTIVATION_LOOPS` by name, the path's standalone
        ops (``Float32Path.standalone``), else the entry's positioned loops
        (see :func:`activation_functions`).
        """
        table = self.ACTIVATION_LOOPS if fused else self.UNFUSED_ACTIVATION_LOOPS
        if activation.name in table:
            return table[activation.name]
        forward_loop, grad_loop = positioned_loops(activation)
        if activation.name in self._path.activations and (fused or activation.name in self._path.standalone):
            if activation.name not in self._path_loops:
                self._path_loops[activation.name] = _dispatcher(f"tf_{self._tag}_{activation.name}_loop",
                                                                self._path.activations[activation.name][1],
                                                                forward_loop, 1)
            forward_loop = self._path_loops[activation.name]
        return forward_loop, grad_loop

    def __repr__(self) -> str:
        return f"Kernels({self.backend!r})"


def _dense_loop_for(matmul_loop, name: str):
    def dense_loop(inputs, kernel, bias, out, caches):
        """out <- inputs @ kernel + bias: the product, then ``BiasAdd`` (one rounding per element)."""
        matmul_loop(inputs, kernel, out, caches)
        rows, cols = out.shape
        if cols < 4:  # the innermost loop runs along the longer side
            for j in range(cols):
                for b in range(rows):
                    out[b, j] = out[b, j] + bias[j]
        else:
            for b in range(rows):
                for j in range(cols):
                    out[b, j] = out[b, j] + bias[j]

    dense_loop.__name__ = dense_loop.__qualname__ = name
    return _jit(dense_loop)


_dense64_loop = _dense_loop_for(_matmul64_loop, "tf_dense64_loop")


@lru_cache(maxsize=None)
def kernels(backend: str | None = None) -> Kernels:
    """The compiled kernels for ``backend`` (default: this machine's float32 path)."""
    return Kernels(_resolve(Caches(0, 0, 0, 0, 0), backend)[1])


# --- Python entry points to the loops (tests, verify) ------------------------------------


def matmul_loop(inputs, kernel, out, caches: Caches | None = None, backend: str | None = None):
    """Numba twin of :func:`matmul`, into ``out``."""
    caches, backend = _resolve(caches, backend)
    (float32_path(backend).matmul_loop if inputs.dtype == np.float32 else _matmul64_loop)(inputs, kernel, out, caches)


def matmul_grad_input_loop(delta, kernel, out, caches: Caches | None = None, backend: str | None = None):
    """Numba twin of :func:`matmul_grad_input`, into ``out``."""
    caches, backend = _resolve(caches, backend)
    loop = float32_path(backend).matmul_grad_input_loop if delta.dtype == np.float32 else _matmul_grad_input64_loop
    loop(delta, kernel, out, caches)


def matmul_grad_kernel_loop(inputs, delta, out, caches: Caches | None = None, backend: str | None = None):
    """Numba twin of :func:`matmul_grad_kernel`, into ``out``."""
    caches, backend = _resolve(caches, backend)
    loop = float32_path(backend).matmul_grad_kernel_loop if inputs.dtype == np.float32 else _matmul_grad_kernel64_loop
    loop(inputs, delta, out, caches)


def dense_loop(inputs, kernel, bias, out, caches: Caches | None = None, backend: str | None = None):
    """out <- inputs @ kernel + bias, compiled: :func:`matmul_loop`, then ``BiasAdd``."""
    caches, backend = _resolve(caches, backend)
    path = float32_path(backend) if inputs.dtype == np.float32 else None
    if path is None:
        _dense64_loop(inputs, kernel, bias, out, caches)
    elif path.dense_loop is not None:
        path.dense_loop(inputs, kernel, bias, out, caches)
    else:
        kernels(backend).dense_loop(inputs, kernel, bias, out, caches)


def sigmoid_loop(z, backend: str | None = None):
    """Numba twin of :func:`sigmoid` on a 2-D array (flattened in C order), in place."""
    (float32_path(_resolve(None, backend)[1]).sigmoid_loop if z.dtype == np.float32 else eigen.logistic_tensorflow_loop)(z)


def tanh_loop(z, backend: str | None = None):
    """Numba twin of :func:`tanh` on a 2-D array (flattened in C order), in place."""
    (float32_path(_resolve(None, backend)[1]).tanh_loop if z.dtype == np.float32 else eigen.tanh_tensorflow_loop)(z)


# Activations whose TensorFlow kernel differs from the elementwise formula of
# gdcore.activations: (forward(z, backend), gradient from the output).
ACTIVATIONS = {
    "sigmoid": (sigmoid, eigen.logistic_grad_tensorflow),
    "tanh": (tanh, eigen.tanh_grad_tensorflow),
    "softmax": (softmax, softmax_grad),
}


def _eigen_sigmoid(z: np.ndarray, backend: str | None = None) -> np.ndarray:
    return eigen.logistic_tensorflow(z)


def _eigen_tanh(z: np.ndarray, backend: str | None = None) -> np.ndarray:
    return eigen.tanh_tensorflow(z)


# After a product without a bias (Dense(use_bias=False): a bare MatMul) TensorFlow fuses nothing: sigmoid and tanh
# are the standalone ops, Eigen's on every path and in both dtypes (oneDNN fuses them only into MatMul + BiasAdd).
UNFUSED_ACTIVATIONS = {
    "sigmoid": (_eigen_sigmoid, eigen.logistic_grad_tensorflow),
    "tanh": (_eigen_tanh, eigen.tanh_grad_tensorflow),
    "softmax": (softmax, softmax_grad),  # a kernel of its own, whatever produced its input
}


def positioned(packet, tail, arity: int = 1):
    """An elementwise function of whole arrays: ``packet`` on the first ``n - n % P`` elements (C order), ``tail`` on the rest.

    Eigen's rule for its unary and binary functors (:mod:`gdcore.numerics.eigen`):
    whole SIMD packets from index 0, then the scalar ``operator()``.
    """

    def apply(*arrays):
        arrays = [np.ascontiguousarray(a) for a in arrays]
        flat = [a.reshape(-1) for a in arrays]
        end = flat[0].size - flat[0].size % eigen.packet_size(arrays[0].dtype)
        out = np.empty_like(flat[-1])
        out[:end] = packet(*(f[:end] for f in flat))
        if end < out.size:
            out[end:] = tail(*(f[end:] for f in flat))
        return out.reshape(arrays[-1].shape)

    return apply


def activation_functions(activation, backend: str | None = None, fused: bool = True):
    """(forward(z), gradient(operand, dy)) NumPy functions of an activation entry as TensorFlow's kernels evaluate it.

    :data:`ACTIVATIONS` by name; otherwise the entry's own functions, each
    :func:`positioned` where the entry has tail formulas (``tail_forward``,
    ``tail_grad``: Eigen's scalar path), and in float32 the forward of the
    float32 path where it has one (``Float32Path.activations``: oneDNN's fused elu and swish).

    ``fused=False``: the activation after a product without a bias
    (``Dense(use_bias=False)``: a bare ``MatMul``), where TensorFlow's graph
    optimizer fuses nothing into the product: :data:`UNFUSED_ACTIVATIONS` by
    name, the path's own forward where it is a standalone op (``Float32Path.standalone``:
    oneDNN's swish), otherwise the entry's positioned functions (Eigen's kernels).
    """
    table = ACTIVATIONS if fused else UNFUSED_ACTIVATIONS
    if activation.name in table:
        forward, grad = table[activation.name]
        return partial(forward, backend=backend), grad
    forward = activation.forward if activation.tail_forward is None else positioned(activation.forward,
                                                                                    activation.tail_forward)
    grad = activation.grad if activation.tail_grad is None else positioned(activation.grad, activation.tail_grad)
    path = float32_path(_resolve(None, backend)[1])
    path_forward = path.activations.get(activation.name) if fused or activation.name in path.standalone else None
    if path_forward is not None:
        return partial(_float32_or, path_forward[0], forward), grad
    return forward, grad


def _float32_or(float32_function, other, z):
    return float32_function(z) if z.dtype == np.float32 else other(z)


_POSITIONED_LOOPS: dict = {}


def positioned_loops(activation):
    """Compiled in-place twins of :func:`activation_functions`'s positioned forward and gradient (both dtypes)."""
    if activation.name not in _POSITIONED_LOOPS:
        if activation.tail_forward is None and activation.tail_grad is None:
            _POSITIONED_LOOPS[activation.name] = activation.loops
        else:
            forward = _jit(activation.forward)
            grad = _jit(activation.grad)
            tail_forward = forward if activation.tail_forward is None else _jit(activation.tail_forward)
            tail_grad = grad if activation.tail_grad is None else _jit(activation.tail_grad)
            _POSITIONED_LOOPS[activation.name] = (
                activation_loop(forward, f"tf_{activation.name}_loop", tail=tail_forward),
                gradient_loop(grad, f"tf_{activation.name}_grad_loop", tail=tail_grad))
    return _POSITIONED_LOOPS[activation.name]
