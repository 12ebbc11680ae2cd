r"""Optimizers: pure update rules plus thin Keras-shaped objects holding their state.

The update rules are elementwise functions of plain arrays or scalars
(optax-style: state in, state out), shared by the NumPy engine and the
compiled Numba loop. Keras's operation order is kept exactly, because in
floating point :math:`(m\alpha)/(\sqrt v+\hat\epsilon)` is not
:math:`m(\alpha/(\sqrt v+\hat\epsilon))`.

**SGD** (``keras.optimizers.SGD``), gradient :math:`g`, learning rate :math:`\eta`:

.. math::

    \text{momentum } = 0:&\quad w \leftarrow w - g\eta \\
    \text{momentum } \mu > 0:&\quad m \leftarrow m\mu - g\eta,\quad
        w \leftarrow w + m \quad(\text{Nesterov: } w \leftarrow w + (m\mu - g\eta))

**Adam** (``keras.optimizers.Adam``), step :math:`t` = number of updates so
far + 1, counted across ``fit`` calls:

.. math::

    \alpha_t &= \eta\,\sqrt{1-\beta_2'^{\,t}}\,/\,(1-\beta_1'^{\,t}) \\
    m &\leftarrow m + (g - m)(1-\beta_1) \\
    v &\leftarrow v + (g^2 - v)(1-\beta_2) \\
    w &\leftarrow w - (m\,\alpha_t) / (\sqrt v + \hat\epsilon)

Conventions, as Keras has them: :math:`\hat\epsilon` ("epsilon hat") is added
to :math:`\sqrt v`, not to a bias-corrected :math:`\sqrt{\hat v}`; in the
powers, :math:`\beta'` is :math:`\beta` rounded to float32 first (TensorFlow
converts the Python float to a float32 tensor before casting it), so in
float64 :math:`\beta_1' = 0.8999999761581421`; the factors :math:`1-\beta`
are computed in Python double precision and then rounded to the model's
dtype. scikit-learn's Adam uses the exact :math:`\beta` instead:
``Adam(float32_betas=False)`` follows that convention.
"""

import numpy as np
from numba.extending import register_jitable

from gdcore._dtype import cast, libm_pow
from gdcore._validation import positive_float, unit_interval


# --- update rules (one definition, both engines) --------------------------------


@register_jitable
def sgd_update(weight, grad, learning_rate):
    return weight - grad * learning_rate


@register_jitable
def sgd_momentum_update(weight, grad, momentum_buffer, learning_rate, momentum, nesterov):
    momentum_buffer = momentum_buffer * momentum - grad * learning_rate
    if nesterov:
        weight = weight + (momentum_buffer * momentum - grad * learning_rate)
    else:
        weight = weight + momentum_buffer
    return weight, momentum_buffer


@register_jitable
def adam_step_size(learning_rate, beta_1_power_base, beta_2_power_base, step):
    r""":math:`\alpha_t = \eta\sqrt{1-\beta_2'^t}/(1-\beta_1'^t)`, all in the dtype of ``learning_rate``."""
    one = cast(1, learning_rate)
    beta_1_power = libm_pow(beta_1_power_base, step)
    beta_2_power = libm_pow(beta_2_power_base, step)
    return learning_rate * np.sqrt(one - beta_2_power) / (one - beta_1_power)


@register_jitable
def adam_update(weight, grad, m, v, alpha, one_minus_beta_1, one_minus_beta_2, epsilon):
    m = m + (grad - m) * one_minus_beta_1
    v = v + (grad * grad - v) * one_minus_beta_2
    weight = weight - (m * alpha) / (np.sqrt(v) + epsilon)
    return weight, m, v


# --- Keras-shaped objects -------------------------------------------------------

SGD_ID, ADAM_ID = 0, 1


class Optimizer:
    """State shared by all optimizers: ``iterations`` and per-parameter slots.

    The state lives in flat arrays the size of the model's parameters; it is
    created by the first ``fit`` after ``compile`` and persists across ``fit``
    calls, as in Keras. Compiling with a new optimizer starts from scratch.
    """

    id: int
    n_slots: int

    def __init__(self, learning_rate: float):
        self.learning_rate = positive_float(learning_rate, "learning_rate")
        self.iterations = 0
        self.slots: np.ndarray | None = None  # shape (n_slots, n_params)

    def build(self, n_params: int, dtype) -> None:
        if self.slots is None or self.slots.shape[1] != n_params or self.slots.dtype != dtype:
            self.slots = np.zeros((max(self.n_slots, 1), n_params), dtype=dtype)
            self.iterations = 0

    def hyperparameters(self, dtype) -> np.ndarray:
        """The constants of the update rule, already rounded to ``dtype`` as Keras rounds them."""
        raise NotImplementedError

    def get_config(self) -> dict:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum. Formula: module docstring."""

    id = SGD_ID
    n_slots = 1

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False):
        super().__init__(learning_rate)
        self.momentum = unit_interval(momentum, "momentum", closed_right=True)
        self.nesterov = bool(nesterov)

    def hyperparameters(self, dtype) -> np.ndarray:
        # [learning_rate, momentum, nesterov, unused...]
        return np.array([self.learning_rate, self.momentum, float(self.nesterov), 0, 0, 0], dtype=dtype)

    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate, "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam with Keras's epsilon-hat and float32-rounded betas. Formula: module docstring."""

    id = ADAM_ID
    n_slots = 2

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                 float32_betas: bool = True):
        super().__init__(learning_rate)
        self.beta_1 = unit_interval(beta_1, "beta_1")
        self.beta_2 = unit_interval(beta_2, "beta_2")
        self.epsilon = positive_float(epsilon, "epsilon", allow_zero=True)
        # Keras rounds beta to float32 before raising it to the power t; scikit-learn does not.
        self.float32_betas = bool(float32_betas)

    def hyperparameters(self, dtype) -> np.ndarray:
        # [learning_rate, beta_1', beta_2', 1 - beta_1, 1 - beta_2, epsilon]
        return np.array(
            [
                self.learning_rate,
                np.float32(self.beta_1) if self.float32_betas else self.beta_1,
                np.float32(self.beta_2) if self.float32_betas else self.beta_2,
                1 - self.beta_1,
                1 - self.beta_2,
                self.epsilon,
            ],
            dtype=dtype,
        )

    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate, "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "float32_betas": self.float32_betas}


OPTIMIZERS = {"sgd": SGD, "adam": Adam}


def get(identifier) -> Optimizer:
    """An optimizer object from a name (Keras defaults) or an existing object."""
    from gdcore._validation import lookup

    if isinstance(identifier, Optimizer):
        return identifier
    return lookup(OPTIMIZERS, identifier, "optimizer")()
