"""Numerics profiles: the order in which each reduction is summed.

Floating-point addition is not associative, so "the" sum of a batch depends on
the order the kernel adds it in. A profile fixes that order for every
reduction a training step performs (the Dense forward product, the two
gradient products, the loss sum and the bias gradient); the elementwise maths
(activations, loss gradients, optimizer updates) is shared by all profiles,
except where a profile's kernel evaluates an activation differently
(TensorFlow's float64 sigmoid and tanh depend on an element's position in the
tensor, its float32 ones come from oneDNN's fused kernel: each profile
module's ``ACTIVATIONS`` table lists such overrides).

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
from dataclasses import dataclass
from types import ModuleType

PROFILE_IDS = {"plain": 0, "tensorflow": 1}
REDUCTIONS = ("matmul", "matmul_grad_input", "matmul_grad_kernel", "sum_vector", "sum_columns")


@dataclass(frozen=True)
class Profile:
    """A named summation order: ``profile.matmul(a, w)`` etc. call the NumPy versions."""

    name: str
    id: int
    module: ModuleType

    def __getattr__(self, attribute):
        if attribute in REDUCTIONS:
            return getattr(self.module, attribute)
        raise AttributeError(attribute)

    def activate(self, activation, z):
        """``activation(z)`` evaluated as this profile's kernel evaluates it."""
        forward, _ = self.module.ACTIVATIONS.get(activation.name, (activation.forward, activation.grad))
        return forward(z)

    def activation_grad(self, activation, y, dy):
        r""":math:`\partial L/\partial z` from the layer output ``y`` and ``dy`` = :math:`\partial L/\partial y`."""
        _, grad = self.module.ACTIVATIONS.get(activation.name, (activation.forward, activation.grad))
        return grad(y, dy)

    def __repr__(self) -> str:
        return f"Profile({self.name!r})"


def get_profile(name) -> Profile:
    """The profile called ``name`` (``"plain"`` or ``"tensorflow"``)."""
    if isinstance(name, Profile):
        return name
    if not isinstance(name, str) or name not in PROFILE_IDS:
        raise ValueError(f"unknown numerics profile {name!r}; known: {', '.join(PROFILE_IDS)}")
    module = importlib.import_module(f"gdcore.numerics._{name}")
    return Profile(name, PROFILE_IDS[name], module)


def verify_tensorflow_profile(*args, **kwargs):
    """Probe the installed TensorFlow: see :func:`gdcore.numerics.verify.verify_tensorflow_profile`."""
    from gdcore.numerics.verify import verify_tensorflow_profile as verify

    return verify(*args, **kwargs)
