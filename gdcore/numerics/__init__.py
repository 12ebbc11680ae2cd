"""Numerics profiles: the order in which each reduction is summed.

Floating-point addition is not associative, so "the" sum of a batch depends on
the order the kernel adds it in. A profile fixes that order for every
reduction a training step performs (the Dense forward product, the two
gradient products, the loss sum and the bias gradient); the elementwise maths
(activations, loss gradients, optimizer updates) is shared by all profiles,
except where a profile's kernel evaluates an activation differently
(TensorFlow's float64 sigmoid and tanh depend on an element's position in the
tensor, its float32 ones come from oneDNN's fused kernel: each profile
module's ``activation_functions(activation, backend)`` and its kernels'
``activation_loops(activation)`` say how it evaluates an entry), and the
cross-entropies' exp, log, log1p and reciprocal, which ``"tensorflow"``
evaluates by position as Eigen does (:func:`gdcore.losses.fill_lanes`).

``"plain"``
    Every sum front to back, the textbook loop (:mod:`gdcore.numerics._plain`).
``"tensorflow"``
    The order TensorFlow's CPU kernels use (oneDNN's float32 and Eigen's float64
    matrix products, Eigen's vectorised reductions,
    :mod:`gdcore.numerics._tensorflow`), so that training reproduces Keras bit
    for bit.

Each profile module provides, for each reduction, a NumPy function (read by
students, used by the NumPy engine) and a ``*_loop`` twin compiled by Numba
(used by the fused training loop); the two are tested bit-identical. The
forward pass uses ``dense_loop(inputs, kernel, bias, out)``: ``matmul_loop``
with the bias added to each finished sum (the same bits as a separate pass). The
activation loops (``sigmoid_loop(z)``, ``sigmoid_grad_loop(y, delta)``, and
the same for tanh) work in place on (batch, units) buffers.
"""

import importlib
import math
from dataclasses import dataclass, field
from functools import partial
from types import ModuleType

import numpy as np

from gdcore.numerics.machine import Caches, CPUInfo, cpu_info

REDUCTIONS = ("matmul", "dense", "matmul_grad_input", "matmul_grad_kernel", "sum_vector", "sum_columns",
              "reduce_sum_rows")
# Products whose order depends on the machine: the profile passes them its cache sizes.
_MACHINE_DEPENDENT = ("matmul", "dense", "matmul_grad_input", "matmul_grad_kernel")
# The compiled engine receives the profile as this constant: one id per summation order
# (for "tensorflow", one per float32 code path, gdcore.numerics.machine.CPUInfo.float32_products).
PROFILE_IDS = {"plain": 0, "tensorflow/onednn-avx512": 1, "tensorflow/onednn-avx2": 2, "tensorflow/eigen-avx512": 3,
               "tensorflow/eigen-avx2": 4, "tensorflow/eigen-gebp": 5}
NAMES = ("plain", "tensorflow")


def _parameters(activation, parameters) -> tuple:
    """The entry's own parameters from the layout's three (``Activation.parameter_values``; None: its defaults)."""
    count = len(activation.parameters)
    if not count:
        return ()
    return tuple((activation.parameter_values() if parameters is None else parameters)[:count])


@dataclass(frozen=True)
class Profile:
    """A named summation order: ``profile.matmul(a, w)`` etc. call the NumPy versions.

    ``backend`` is, for ``"tensorflow"``, the float32 code path TensorFlow
    takes on the machine described by ``cpu`` (:func:`cpu_info`); ``caches``
    are the cache sizes and thread count the machine-dependent kernels read.
    """

    name: str
    id: int
    module: ModuleType
    backend: str = ""
    caches: Caches = Caches(0, 0, 0, 1, 0)
    cpu: CPUInfo | None = field(default=None, compare=False)

    def __getattr__(self, attribute):
        if attribute in REDUCTIONS:
            function = getattr(self.module, attribute)
            if self.backend and attribute in _MACHINE_DEPENDENT:
                return partial(function, caches=self.caches, backend=self.backend)
            return function
        raise AttributeError(attribute)

    @property
    def kernels(self):
        """The compiled loops of this profile (a module or :class:`gdcore.numerics._tensorflow.Kernels`)."""
        return self.module.kernels(self.backend) if self.backend else self.module

    def _activation(self, activation, fused: bool = True):
        return self.module.activation_functions(activation, self.backend, fused)

    def activate(self, activation, z, fused: bool = True, parameters=None):
        """``activation(z)`` evaluated as this profile's kernel evaluates it.

        ``fused``: the product before it added a bias (TensorFlow may fuse the
        two with the activation); False after a bare product (``use_bias=False``).
        ``parameters``: the layer's parameters as its layout record keeps them, three
        (``Activation.parameter_values``; None: the entry's defaults).
        """
        forward = self._activation(activation, fused)[0]
        return forward(z, *_parameters(activation, parameters))

    def activation_grad(self, activation, operand, dy, parameters=None):
        r""":math:`\partial L/\partial z` from ``dy`` = :math:`\partial L/\partial a` and the tensor the gradient reads.

        ``operand`` is the layer's output :math:`a` or its pre-activation
        :math:`z`, as ``activation.grad_reads`` says (``activation.grad_operand(z, a)``);
        ``parameters`` as in :meth:`activate`.
        """
        return self._activation(activation)[1](operand, dy, *_parameters(activation, parameters))

    def update_lanes(self, layout, dtype) -> np.ndarray:
        """Per parameter, how an optimizer update evaluates its position-dependent operations (int8).

        0 everywhere for ``"plain"`` (each operation as written). For
        ``"tensorflow"``, by the element's position in its own weight tensor
        (Keras keeps each kernel and bias as a separate tensor, and Eigen runs
        whole SIMD packets from the start of each): 1 in a whole packet of 8
        float32, 2 in the last ``size % 8`` elements and everywhere in float64
        (see :func:`gdcore.optimizers.divide_by_sqrt`).
        """
        from gdcore._contract import weight_tensors

        sizes = [math.prod(shape) for _, _, _, shape in weight_tensors(layout)]
        return self.tensor_lanes(sizes, dtype)

    def tensor_lanes(self, sizes, dtype) -> np.ndarray:
        """:meth:`update_lanes` for weight tensors of ``sizes`` elements, laid out one after the other."""
        lanes = np.zeros(int(sum(sizes)), dtype=np.int8)
        if not self.backend:
            return lanes
        if np.dtype(dtype) == np.float64:
            lanes[:] = 2
            return lanes
        start = 0
        for size in sizes:
            whole = size - size % 8
            lanes[start : start + whole] = 1
            lanes[start + whole : start + size] = 2
            start += size
        return lanes

    def __reduce__(self):
        # Modules do not pickle: a profile is rebuilt from its name, path and cache sizes.
        return _rebuild_profile, (self.name, self.backend, tuple(self.caches))

    def __repr__(self) -> str:
        return f"Profile({self.name!r})" if not self.backend else f"Profile({self.name!r}, backend={self.backend!r})"


def get_profile(name, cpu: CPUInfo | None = None) -> Profile:
    """The profile called ``name`` (``"plain"`` or ``"tensorflow"``).

    ``"tensorflow"`` follows the code path TensorFlow takes on ``cpu``
    (default: this machine, :func:`cpu_info`); a path the profile does not
    reproduce is an error naming it.
    """
    if isinstance(name, Profile):
        return name
    if not isinstance(name, str) or name not in NAMES:
        raise ValueError(f"unknown numerics profile {name!r}; known: {', '.join(NAMES)}")
    if name == "plain":
        return Profile("plain", 0, importlib.import_module("gdcore.numerics._plain"))
    cpu = cpu_info() if cpu is None else cpu
    module = importlib.import_module("gdcore.numerics._tensorflow")
    key = f"tensorflow/{cpu.float32_products}"
    if key not in PROFILE_IDS or cpu.float32_products not in module.FLOAT32_PATHS:
        module.float32_path(cpu.float32_products)  # raises, naming the path
    return Profile("tensorflow", PROFILE_IDS[key], module, cpu.float32_products, cpu.caches, cpu)


def _rebuild_profile(name: str, backend: str, caches: tuple) -> Profile:
    if name == "plain":
        return get_profile("plain")
    module = importlib.import_module("gdcore.numerics._tensorflow")
    module.float32_path(backend)  # a path this version does not reproduce is an error naming it
    return Profile(name, PROFILE_IDS[f"tensorflow/{backend}"], module, backend, Caches(*caches))


def verify_tensorflow_profile(*args, **kwargs):
    """Probe the installed TensorFlow: see :func:`gdcore.numerics.verify.verify_tensorflow_profile`."""
    from gdcore.numerics.verify import verify_tensorflow_profile as verify

    return verify(*args, **kwargs)


def verify_random_streams(*args, **kwargs):
    """Check gdcore's copy of Keras's random streams: see :func:`gdcore.numerics.verify.verify_random_streams`."""
    from gdcore.numerics.verify import verify_random_streams as verify

    return verify(*args, **kwargs)


__all__ = ["CPUInfo", "Caches", "Profile", "cpu_info", "get_profile", "verify_random_streams",
           "verify_tensorflow_profile"]
