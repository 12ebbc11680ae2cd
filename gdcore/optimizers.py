r"""Optimizers: one table of update rules, and thin Keras-shaped objects holding their state.

Each rule is an entry of :data:`RULES` (optax-style: state in, state out):

``step(hyper, t)``
    The constants of update :math:`t` (1-based, counted across ``fit``
    calls), e.g. Adam's :math:`\alpha_t`; a tuple.
``update(w, g, state, hyper, constants, lane)``
    One update, elementwise: ``(w, state)`` from the weight, its gradient and
    its state (a tuple with one value per slot). The same function runs on
    whole NumPy arrays in the NumPy engine and on scalars in the compiled loop.
    ``lane`` says how the numerics profile evaluates the few operations whose
    result depends on an element's position (:func:`divide_by_sqrt`): 0 as
    written, 1 and 2 as TensorFlow does on a whole SIMD packet and on a weight
    tensor's scalar tail (:meth:`gdcore.numerics.Profile.update_lanes`).
    A lane of :data:`FROZEN` marks a parameter of a layer with
    ``trainable=False``: no update touches it or its slots.

``hyper`` is a named tuple of the rule's constants, already rounded to the
model's dtype as Keras rounds them; the state lives in an array of shape
(slots, parameters), one row per named slot. Keras's operation order is kept
exactly, because in floating point :math:`(m\alpha)/(\sqrt v+\hat\epsilon)`
is not :math:`m(\alpha/(\sqrt v+\hat\epsilon))`.

How Keras rounds a constant (``keras.src.optimizers``) decides its bits:
``ops.cast(python_float, dtype)`` goes through a float32 tensor first (so in
float64 :math:`\beta_1 = 0.9` becomes 0.8999999761581421: Adam's betas, SGD's
momentum), while a Python float combined with a tensor (``ops.multiply(rho,
v)``, ``1 - beta_1``, ``+ epsilon``) is converted straight to the tensor's
dtype, after any arithmetic done in Python double precision.

**SGD** (``keras.optimizers.SGD``), learning rate :math:`\eta`, momentum :math:`\mu`:

.. math::

    \mu = 0:\quad w \leftarrow w - g\eta; \qquad
    \mu > 0:\quad m \leftarrow m\mu - g\eta,\quad
        w \leftarrow w + m \quad(\text{Nesterov: } w \leftarrow w + (m\mu - g\eta))

**Adam** (``keras.optimizers.Adam``):

.. math::

    \alpha_t = \eta\,\sqrt{1-\beta_2^{\,t}}\,/\,(1-\beta_1^{\,t}), \quad
    m \leftarrow m + (g - m)(1-\beta_1), \quad
    v \leftarrow v + (g^2 - v)(1-\beta_2), \quad
    w \leftarrow w - (m\,\alpha_t) / (\sqrt v + \hat\epsilon)

with :math:`\hat\epsilon` ("epsilon hat") added to :math:`\sqrt v`, not to a
bias-corrected :math:`\sqrt{\hat v}`; scikit-learn's Adam uses the exact
:math:`\beta` in the powers instead: ``Adam(float32_betas=False)``; likewise
its SGD uses the exact momentum: ``SGD(float32_momentum=False)``.

**Adagrad** (``keras.optimizers.Adagrad``), accumulator :math:`G` starting at
``initial_accumulator_value``: :math:`G \leftarrow G + g^2`,
:math:`w \leftarrow w - \eta g / \sqrt{G + \epsilon}` (the division as
:func:`divide_by_sqrt` evaluates it).

**RMSprop** (``keras.optimizers.RMSprop``), decay :math:`\rho`; the order of
the centered denominator and the division are what TensorFlow's graph
optimizer makes of Keras's code (:func:`divide_by_sqrt`):

.. math::

    v \leftarrow \rho v + (1-\rho) g^2, \quad
    \bar g \leftarrow \rho \bar g + (1-\rho) g \ (\text{centered}), \quad
    \Delta = \eta g / \sqrt{v - (\bar g^2 - \epsilon)}\ \ (\text{not centered: } \sqrt{v + \epsilon}), \quad
    \mu > 0:\ m \leftarrow \mu m + \Delta,\ w \leftarrow w - m; \quad \text{else } w \leftarrow w - \Delta

**Moving average of the weights** (``use_ema=True`` on any optimizer, Keras 3's
``BaseOptimizer``): after each update :math:`t` (1-based), before the
constraints, :math:`\bar w \leftarrow \mu_t \bar w + (1 - \mu_t) w` with
:math:`\mu_t = [t > 1]\,\mu` (``ema_momentum`` in the model's dtype; the first
update copies the weights); every ``ema_overwrite_frequency`` updates the
weights become :math:`\bar w`, and so they do at the end of ``fit``
(Keras's ``finalize_variable_values``). :math:`\bar w` is one more row of the
optimizer's slots (``state["moving_average"]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from numbers import Real
from typing import Callable, NamedTuple, get_type_hints

import numpy as np
from numba import njit, types
from numba.extending import overload

from gdcore._cache import remember
from gdcore._dispatch import switch
from gdcore._dtype import cast, jitable, libm_pow
from gdcore._validation import lookup, positive_float, representable, unit_interval
from gdcore import schedules
from gdcore.numerics import _plain, eigen, eigen_reductions


def divide_by_sqrt(x, y, lane):
    r""":math:`x / \sqrt y` as the profile evaluates it, by ``lane`` (module docstring).

    0: ``x / sqrt(y)``, as written. TensorFlow's graph optimizer rewrites the
    division into ``x * rsqrt(y)``: 1 (a float32 element in a whole packet):
    ``x * rsqrt_packet(y)`` (Eigen's estimate-and-refine, :func:`gdcore.numerics.eigen.rsqrt_packet`);
    2 (a float32 tail element, or float64): ``x * (1 / sqrt(y))``.
    """
    x, y, lane = np.asarray(x), np.asarray(y), np.asarray(lane)
    result = x / np.sqrt(y)
    tail = lane == 2
    result = np.where(tail, x * (cast(1, y) / np.sqrt(y)), result)
    if y.dtype == np.float32 and (lane == 1).any():
        result = np.where(lane == 1, x * eigen.rsqrt_packet(y), result)
    return result if result.ndim else result[()]


@overload(divide_by_sqrt, jit_options={"cache": True, "error_model": "numpy"})
def _divide_by_sqrt_numba(x, y, lane):
    if y == types.float32:
        def packet_aware(x, y, lane):
            if lane == 1:
                return x * eigen.rsqrt_packet(y)
            if lane == 2:
                return x * (cast(1, y) / np.sqrt(y))
            return x / np.sqrt(y)
        return packet_aware

    def float64(x, y, lane):
        if lane == 0:
            return x / np.sqrt(y)
        return x * (cast(1, y) / np.sqrt(y))
    return float64


@dataclass(frozen=True)
class Rule:
    """One update rule: its constants, its state and its two functions (module docstring).

    ``name`` is Keras's string identifier, ``keras`` the Keras class name,
    ``slots`` the state's names in the kernels (the paper's symbols) and
    ``keras_slots`` Keras's names for them; ``formula`` is the LaTeX that
    :mod:`gdcore.explain` renders and ``constants`` names what ``step``
    returns. ``id`` is the rule's position in :data:`RULES`.
    """

    name: str
    keras: str
    hyperparameters: type
    slots: tuple[str, ...]
    keras_slots: tuple[str, ...]
    step: Callable
    update: Callable
    formula: str
    constants: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()

    @cached_property  # a position in an immutable table: looked up once (== compares every field)
    def id(self) -> int:
        return RULES.index(self)


# --- SGD ------------------------------------------------------------------------


class SGDHyperparameters(NamedTuple):
    learning_rate: float
    momentum: float
    nesterov: bool


@jitable
def sgd_step(hyper, t):
    return ()


@jitable
def sgd_update(w, g, state, hyper, constants, lane):
    if hyper.momentum != 0:
        m = state[0] * hyper.momentum - g * hyper.learning_rate
        if hyper.nesterov:
            w = w + (m * hyper.momentum - g * hyper.learning_rate)
        else:
            w = w + m
        return w, (m,)
    return w - g * hyper.learning_rate, state


SGD_RULE = Rule("sgd", "SGD", SGDHyperparameters, ("momentum",), ("momentums",), sgd_step, sgd_update,
                r"w \leftarrow w - g\,\eta \quad(\mu = 0); \qquad m \leftarrow m\mu - g\eta,\ "
                r"w \leftarrow w + m \ \ (\text{Nesterov: } w \leftarrow w + (m\mu - g\eta))")


# --- Adam -----------------------------------------------------------------------


class AdamHyperparameters(NamedTuple):
    learning_rate: float
    beta_1: float  # as raised to the power t (Keras: rounded to float32 first)
    beta_2: float
    one_minus_beta_1: float
    one_minus_beta_2: float
    epsilon: float
    amsgrad: bool


@jitable
def adam_step(hyper, t):
    r""":math:`(\alpha_t,)`: :math:`\eta\sqrt{1-\beta_2^t}/(1-\beta_1^t)` in the dtype of the learning rate."""
    one = cast(1, hyper.learning_rate)
    beta_1_power = libm_pow(hyper.beta_1, t)
    beta_2_power = libm_pow(hyper.beta_2, t)
    return (hyper.learning_rate * np.sqrt(one - beta_2_power) / (one - beta_1_power),)


@jitable
def adam_update(w, g, state, hyper, constants, lane):
    m = state[0] + (g - state[0]) * hyper.one_minus_beta_1
    v = state[1] + (g * g - state[1]) * hyper.one_minus_beta_2
    v_hat = state[2]
    if hyper.amsgrad:
        v_hat = np.maximum(v_hat, v)
        w = w - (m * constants[0]) / (np.sqrt(v_hat) + hyper.epsilon)
    else:
        w = w - (m * constants[0]) / (np.sqrt(v) + hyper.epsilon)
    return w, (m, v, v_hat)


ADAM_RULE = Rule("adam", "Adam", AdamHyperparameters, ("m", "v", "v_hat"), ("momentums", "velocities", "velocity_hats"),
                 adam_step, adam_update,
                 r"\alpha_t = \eta\sqrt{1-\beta_2^t}/(1-\beta_1^t);\ m \leftarrow m + (g - m)(1-\beta_1),\ "
                 r"v \leftarrow v + (g^2 - v)(1-\beta_2),\ w \leftarrow w - m\alpha_t/(\sqrt{v} + \hat\epsilon)"
                 r"\ (\text{AMSGrad: } \hat v \leftarrow \max(\hat v, v) \text{ in place of } v)",
                 ("alpha_t",))


# --- RMSprop --------------------------------------------------------------------


class RMSpropHyperparameters(NamedTuple):
    learning_rate: float
    rho: float
    one_minus_rho: float
    momentum: float
    epsilon: float
    centered: bool


@jitable
def rmsprop_step(hyper, t):
    return ()


@jitable
def rmsprop_update(w, g, state, hyper, constants, lane):
    v = hyper.rho * state[0] + hyper.one_minus_rho * (g * g)
    m = state[1]
    average = state[2]
    if hyper.centered:
        average = hyper.rho * average + hyper.one_minus_rho * g
        # Keras writes (v - a^2) + epsilon; TensorFlow's graph optimizer pushes the constant down to v - (a^2 - epsilon).
        denominator = v - (average * average - hyper.epsilon)
    else:
        denominator = v + hyper.epsilon
    increment = divide_by_sqrt(hyper.learning_rate * g, denominator, lane)
    if hyper.momentum > 0:
        m = hyper.momentum * m + increment
        w = w - m
    else:
        w = w - increment
    return w, (v, m, average)


RMSPROP_RULE = Rule("rmsprop", "RMSprop", RMSpropHyperparameters, ("v", "m", "average"),
                    ("velocities", "momentums", "average_gradients"), rmsprop_step, rmsprop_update,
                    r"v \leftarrow \rho v + (1-\rho) g^2;\ \Delta = \eta g/\sqrt{v + \epsilon}"
                    r"\ (\text{centered: } \bar g \leftarrow \rho\bar g + (1-\rho)g,\ \sqrt{v - \bar g^2 + \epsilon});\ "
                    r"w \leftarrow w - \Delta\ (\mu > 0:\ m \leftarrow \mu m + \Delta,\ w \leftarrow w - m)")


# --- Adagrad --------------------------------------------------------------------


class AdagradHyperparameters(NamedTuple):
    learning_rate: float
    epsilon: float


@jitable
def adagrad_step(hyper, t):
    return ()


@jitable
def adagrad_update(w, g, state, hyper, constants, lane):
    accumulator = state[0] + g * g
    return w - divide_by_sqrt(hyper.learning_rate * g, accumulator + hyper.epsilon, lane), (accumulator,)


ADAGRAD_RULE = Rule("adagrad", "Adagrad", AdagradHyperparameters, ("accumulator",), ("accumulators",), adagrad_step,
                    adagrad_update, r"G \leftarrow G + g^2;\ w \leftarrow w - \eta g/\sqrt{G + \epsilon}")


RULES: tuple[Rule, ...] = (SGD_RULE, ADAM_RULE, RMSPROP_RULE, ADAGRAD_RULE)
_RULE_BY_HYPERPARAMETERS = {rule.hyperparameters: rule for rule in RULES}


class Hyperparameters(NamedTuple):
    """Every rule's constants in one type, and the rule's id: what the engines take (:func:`packed`).

    Numba compiles the fused loop once per type of its arguments; with one
    type for all rules it compiles once per dtype and profile, not once per
    optimizer, and the loop picks the rule's update by ``rule`` at run time
    (one branch per step). A rule's update reads only its own fields.
    """

    learning_rate: float
    momentum: float
    nesterov: bool
    beta_1: float
    beta_2: float
    one_minus_beta_1: float
    one_minus_beta_2: float
    epsilon: float
    amsgrad: bool
    rho: float
    one_minus_rho: float
    centered: bool
    rule: int


_PACKED_TYPES = get_type_hints(Hyperparameters)
_PACKED_FIELDS = tuple((name, kind) for name, kind in _PACKED_TYPES.items() if name != "rule")
_PACKED_INDEX = {name: index for index, (name, _) in enumerate(_PACKED_FIELDS)}


def packed(hyper) -> Hyperparameters:
    """A rule's own hyperparameter tuple as :class:`Hyperparameters` (the other rules' fields zero or False)."""
    if isinstance(hyper, Hyperparameters):
        return hyper
    rule = rule_of(hyper)
    zero = type(hyper.learning_rate)(0)
    fields = [False if kind is bool else zero for _, kind in _PACKED_FIELDS]
    for name, value in zip(hyper._fields, hyper):
        fields[_PACKED_INDEX[name]] = value
    return Hyperparameters(*fields, rule.id)


# --- one update over flat arrays, both engines -------------------------------------------


def rule_of(hyper) -> Rule:
    """The rule whose hyperparameter tuple ``hyper`` is (its own type, or :class:`Hyperparameters`); else an error."""
    if isinstance(hyper, Hyperparameters):
        return RULES[hyper.rule]
    rule = _RULE_BY_HYPERPARAMETERS.get(type(hyper))
    if rule is None:
        raise TypeError(f"no optimizer rule has hyperparameters of type {type(hyper).__name__}")
    return rule


class Options(NamedTuple):
    """What Keras 3's ``BaseOptimizer`` does around every rule's update (module docstring), in the model's dtype.

    ``learning_rates`` holds the rate of each update of a training call,
    update ``first_iteration + 1`` first (a schedule, tabulated); empty: the
    rule's constant ``learning_rate``. ``clip`` is ``CLIP_*``, with its
    threshold ``clip_value``; ``tensors`` (int64, (n, 2)) the start and stop of
    each weight tensor in the flat arrays (clipnorm clips each on its own);
    ``eigen_sum`` sums squares in Eigen's order (TensorFlow's ``reduce_sum``),
    else front to back. ``weight_decay`` 0 is none. ``ema``: a moving average
    of the weights is kept (:func:`moving_average`), in the slots' last row,
    with ``ema_momentum`` and ``ema_overwrite_frequency`` (0: never).
    """

    weight_decay: float
    clip: int
    clip_value: float
    learning_rates: np.ndarray
    first_iteration: int
    tensors: np.ndarray
    eigen_sum: bool
    ema: bool = False
    ema_momentum: float = 0.0
    ema_overwrite_frequency: int = 0


CLIP_NONE, CLIP_VALUE, CLIP_NORM, CLIP_GLOBAL_NORM = 0, 1, 2, 3
FROZEN = -1  # the lane of a parameter no update touches (a layer with trainable=False)


def with_learning_rate(hyper, learning_rate):
    """``hyper`` with its first field, the learning rate, replaced."""
    return hyper._replace(learning_rate=learning_rate)


@overload(with_learning_rate, jit_options={"cache": True})
def _with_learning_rate_numba(hyper, learning_rate):
    cls = hyper.instance_class
    return lambda hyper, learning_rate: cls(learning_rate, *hyper[1:])


def sum_of_squares(values, eigen_sum):
    r""":math:`\sum_i v_i^2` of a 1-D array: the squares rounded, then summed in Eigen's order or front to back."""
    squares = values * values
    # The compiled loops return a Python float to Python: back to the values' dtype (exact).
    return cast(eigen_reductions.sum_vector_loop(squares) if eigen_sum else _plain.sum_vector_loop(squares), values)


@overload(sum_of_squares, jit_options={"cache": True, "error_model": "numpy"})
def _sum_of_squares_numba(values, eigen_sum):
    def impl(values, eigen_sum):
        squares = values * values
        return eigen_reductions.sum_vector_loop(squares) if eigen_sum else _plain.sum_vector_loop(squares)
    return impl


@jitable
def clip_by_norm(g, clipnorm, eigen_sum):
    r"""Keras's ``_clip_by_norm`` of one tensor, in place: :math:`g \leftarrow (g\,c) / \max(\lVert g\rVert, c)`.

    :math:`\lVert g\rVert` is :math:`\sqrt{\sum g^2}` if the sum is positive, else the (zero) sum.
    """
    total = sum_of_squares(g, eigen_sum)
    norm = np.sqrt(total) if total > cast(0, total) else total
    g[:] = (g * clipnorm) / max(norm, clipnorm)


@jitable
def clip_by_global_norm(grads, tensors, clipnorm, eigen_sum):
    r"""Keras's ``clip_by_global_norm``, in place: :math:`g \leftarrow g \cdot c\min(1/N, 1/c) + (N - N)`.

    :math:`N = \sqrt{\sum_k s_k}`, :math:`s_k` each tensor's sum of squares,
    summed over the stacked :math:`s_k` as over any vector.
    """
    sums = np.empty(tensors.shape[0], dtype=grads.dtype)
    for k in range(tensors.shape[0]):
        sums[k] = sum_of_squares(grads[tensors[k, 0]:tensors[k, 1]], eigen_sum)
    norm = np.sqrt(cast(eigen_reductions.sum_vector_loop(sums) if eigen_sum else _plain.sum_vector_loop(sums), sums))
    one = cast(1, norm)
    scale = clipnorm * min(one / norm, one / clipnorm) + (norm - norm)
    grads[:] = grads * scale


@jitable
def averaged(average, w, momentum):
    r"""Keras's moving-average step of one weight: :math:`\mu\bar w + (1 - \mu) w`, each product rounded."""
    return momentum * average + (cast(1, momentum) - momentum) * w


@jitable
def _ema_momentum(iterations, options):
    """Keras's momentum of the average after update ``iterations + 1``: 0 for the first (the weights copied)."""
    return cast(iterations != 0, options.ema_momentum) * options.ema_momentum


@jitable
def _ema_overwrites(iterations, options):
    """Whether update ``iterations + 1`` ends with the weights replaced by their average."""
    return options.ema_overwrite_frequency > 0 and (iterations + 1) % options.ema_overwrite_frequency == 0


@jitable
def moving_average(params, average, iterations, lanes, options):
    """After update ``iterations + 1``: the moving average of every trainable weight, in place, and the weights
    overwritten by it when the update is a multiple of ``options.ema_overwrite_frequency`` (module docstring)."""
    momentum = _ema_momentum(iterations, options)
    overwrite = _ema_overwrites(iterations, options)
    for i in range(params.shape[0]):
        if lanes[i] != FROZEN:
            average[i] = averaged(average[i], params[i], momentum)
            if overwrite:
                params[i] = average[i]


def apply_update(hyper, params: np.ndarray, grads: np.ndarray, slots: np.ndarray, iterations: int,
                 lanes: np.ndarray, options=None) -> None:
    """One optimizer step on the flat arrays, in place (NumPy, vectorised): update ``iterations + 1``.

    ``lanes`` (int8, one per parameter) is the profile's :meth:`~gdcore.numerics.Profile.update_lanes`;
    ``options`` (:class:`Options`, or None for none) Keras's clipping, weight
    decay, learning-rate schedule and moving average, applied as Keras 3
    applies them: the gradients clipped, then every weight decayed, then the
    rule's update, then the moving average (the slots' last row).
    ``grads`` is clipped in place.

    In compiled code the same call resolves, while typing, to a loop over the
    parameters calling the rule's ``update`` on scalars.
    """
    rule = rule_of(hyper)
    if options is not None:
        hyper = _prepare(hyper, params, grads, iterations, options)
    constants = rule.step(hyper, cast(iterations + 1, hyper.learning_rate))
    state = tuple(slots[index] for index in range(len(rule.slots)))
    updated, state = rule.update(params, grads, state, hyper, constants, lanes)
    trainable = lanes != FROZEN  # a frozen parameter and its slots stay as they are
    params[:] = np.where(trainable, updated, params)
    for index, value in enumerate(state):
        slots[index] = np.where(trainable, value, slots[index])
    if options is not None and options.ema:
        average = slots[len(rule.slots)]
        average[:] = np.where(trainable, averaged(average, params, _ema_momentum(iterations, options)), average)
        if _ema_overwrites(iterations, options):
            params[:] = np.where(trainable, average, params)


@jitable
def _prepares(options):
    """Whether :func:`_prepare` has anything to do (a schedule, clipping or weight decay); else the compiled loop
    skips the call, whose array arguments cost reference counting every step."""
    return options.learning_rates.shape[0] > 0 or options.clip != CLIP_NONE or options.weight_decay != 0


@jitable
def _prepare(hyper, params, grads, iterations, options):
    """Keras's steps before the rule's update: the learning rate of this update, clipping, weight decay."""
    if options.learning_rates.shape[0] > 0:
        hyper = with_learning_rate(hyper, options.learning_rates[iterations - options.first_iteration])
    if options.clip == CLIP_VALUE:  # tf.clip_by_value: minimum with the upper bound, then maximum with the lower
        grads[:] = np.maximum(np.minimum(grads, options.clip_value), -options.clip_value)
    elif options.clip == CLIP_NORM:
        for k in range(options.tensors.shape[0]):
            clip_by_norm(grads[options.tensors[k, 0]:options.tensors[k, 1]], options.clip_value, options.eigen_sum)
    elif options.clip == CLIP_GLOBAL_NORM:
        clip_by_global_norm(grads, options.tensors, options.clip_value, options.eigen_sum)
    if options.weight_decay != 0:
        # Keras writes w - w * wd * lr; TensorFlow's graph optimizer multiplies the two scalars first.
        # Only the trainable tensors (options.tensors) decay, as Keras decays the variables it updates.
        rate = options.weight_decay * hyper.learning_rate
        for k in range(options.tensors.shape[0]):
            tensor = params[options.tensors[k, 0]:options.tensors[k, 1]]
            tensor[:] = tensor - tensor * rate
    return hyper


def _compiled_loop(rule: Rule):
    """The compiled parameter loop of ``rule`` (one per rule, kept apart in the on-disk cache by its name)."""
    step, update, n_slots = rule.step, rule.update, len(rule.slots)
    # The state tuple of element i, written out for the rule's number of slots.
    if n_slots == 1:
        def loop(hyper, params, grads, slots, iterations, lanes, options):
            if options is not None and _prepares(options):
                hyper = _prepare(hyper, params, grads, iterations, options)
            constants = step(hyper, cast(iterations + 1, hyper.learning_rate))
            for i in range(params.shape[0]):
                if lanes[i] == FROZEN:
                    continue
                params[i], state = update(params[i], grads[i], (slots[0, i],), hyper, constants, lanes[i])
                slots[0, i] = state[0]
            if options is not None and options.ema:
                moving_average(params, slots[1], iterations, lanes, options)
    elif n_slots == 2:
        def loop(hyper, params, grads, slots, iterations, lanes, options):
            if options is not None and _prepares(options):
                hyper = _prepare(hyper, params, grads, iterations, options)
            constants = step(hyper, cast(iterations + 1, hyper.learning_rate))
            for i in range(params.shape[0]):
                if lanes[i] == FROZEN:
                    continue
                params[i], state = update(params[i], grads[i], (slots[0, i], slots[1, i]), hyper, constants, lanes[i])
                slots[0, i], slots[1, i] = state
            if options is not None and options.ema:
                moving_average(params, slots[2], iterations, lanes, options)
    elif n_slots == 3:
        def loop(hyper, params, grads, slots, iterations, lanes, options):
            if options is not None and _prepares(options):
                hyper = _prepare(hyper, params, grads, iterations, options)
            constants = step(hyper, cast(iterations + 1, hyper.learning_rate))
            for i in range(params.shape[0]):
                if lanes[i] == FROZEN:
                    continue
                params[i], state = update(params[i], grads[i], (slots[0, i], slots[1, i], slots[2, i]), hyper,
                                          constants, lanes[i])
                slots[0, i], slots[1, i], slots[2, i] = state
            if options is not None and options.ema:
                moving_average(params, slots[3], iterations, lanes, options)
    else:
        raise NotImplementedError(f"optimizer rule {rule.name!r} has {n_slots} slots; the compiled loop handles 1 to 3")
    loop.__name__ = loop.__qualname__ = f"apply_{rule.name}_loop"
    return njit(cache=True, error_model="numpy", nogil=True, inline="always")(loop)


# The branch chain over ``hyper.rule`` calling each rule's compiled loop (:class:`Hyperparameters`).
_APPLY_RULE_LOOP = njit(cache=True, error_model="numpy", nogil=True, inline="always")(
    switch("apply_rule_loop", [_compiled_loop(rule) for rule in RULES],
           ["hyper", "params", "grads", "slots", "iterations", "lanes", "options"], "rule"))


@overload(apply_update, jit_options={"cache": True, "error_model": "numpy"}, inline="always")
def _apply_update_numba(hyper, params, grads, slots, iterations, lanes, options=None):
    if getattr(hyper, "instance_class", None) is not Hyperparameters:
        raise TypeError(f"the compiled update takes gdcore.optimizers.Hyperparameters (packed()), got {hyper}")
    loop = _APPLY_RULE_LOOP
    return lambda hyper, params, grads, slots, iterations, lanes, options=None: loop(
        hyper.rule, hyper, params, grads, slots, iterations, lanes, options)


# --- Keras-shaped objects -------------------------------------------------------


_NO_RATES = {np.float32: np.zeros(0, np.float32), np.float64: np.zeros(0, np.float64)}
# What optimizers of the same class and settings share (Optimizer._settings): packed constants, passed checks,
# options (by settings and summation, with the weight tensors they were made for).
_SHARED_HYPERPARAMETERS: dict = {}
_CHECKED_SETTINGS: dict = {}
_SHARED_OPTIONS: dict = {}


def _float32_first(value: float, dtype) -> np.generic:
    """``ops.cast(value, dtype)`` as TensorFlow does it: through a float32 tensor."""
    return np.dtype(dtype).type(np.float32(value))


class Optimizer:
    """State shared by all optimizers: the rule, ``iterations`` and the per-parameter slots.

    The state lives in a flat array of shape (slots, parameters), created by
    the first ``fit`` after ``compile``; it persists across ``fit`` calls, as
    in Keras. Compiling with a new optimizer starts from scratch.
    """

    rule: Rule

    def __init__(self, learning_rate, weight_decay: float | None = None, clipnorm: float | None = None,
                 clipvalue: float | None = None, global_clipnorm: float | None = None, use_ema: bool = False,
                 ema_momentum: float = 0.99, ema_overwrite_frequency: int | None = None):
        self.learning_rate = learning_rate
        self.iterations = 0
        self.slots: np.ndarray | None = None  # shape (len(rule.slots), n_params)
        self.weight_decay = None if weight_decay is None else positive_float(weight_decay, "weight_decay",
                                                                             allow_zero=True)
        given = {name: value for name, value in (("clipnorm", clipnorm), ("clipvalue", clipvalue),
                                                 ("global_clipnorm", global_clipnorm)) if value is not None}
        if len(given) > 1:
            raise ValueError(f"only one of clipnorm, clipvalue and global_clipnorm can be set, got "
                             f"{', '.join(f'{name}={value!r}' for name, value in given.items())}")
        for name in ("clipnorm", "clipvalue", "global_clipnorm"):
            setattr(self, name, None if name not in given else positive_float(given[name], name))
        # Keras checks the moving average's settings only when it is on, and takes a falsy frequency as none.
        self.use_ema = _flag(use_ema, "use_ema")
        if self.use_ema:
            ema_momentum = unit_interval(ema_momentum, "ema_momentum", closed_right=True)
            if ema_overwrite_frequency and (not isinstance(ema_overwrite_frequency, (int, np.integer)) or
                                            ema_overwrite_frequency < 1):
                raise ValueError("ema_overwrite_frequency must be an integer >= 1 or None, got "
                                 f"{ema_overwrite_frequency!r}")
        self.ema_momentum = ema_momentum
        self.ema_overwrite_frequency = ema_overwrite_frequency

    def __setattr__(self, name, value):
        # A public setting (not the training state) is a new configuration: what fit derives from the settings is
        # derived again (:meth:`_configuration`), instead of comparing every setting at every fit.
        if not name.startswith("_") and name not in ("slots", "iterations"):
            self.__dict__["_version"] = self.__dict__.get("_version", 0) + 1
        super().__setattr__(name, value)

    def _configuration(self, dtype) -> tuple:
        """A key that changes when a setting, ``dtype`` or the current learning rate (a schedule's, a callable's) does."""
        rate = self._learning_rate
        return np.dtype(dtype), self.__dict__.get("_version", 0), None if type(rate) is float else self.learning_rate

    @property
    def learning_rate(self) -> float:
        """The learning rate of the next update: the constant, or the schedule (or callable) evaluated now.

        As in Keras, a learning rate given as a schedule cannot be replaced by a float.
        """
        rate = self._learning_rate
        if isinstance(rate, schedules.LearningRateSchedule):
            return float(rate(self.iterations))
        if callable(rate):
            return positive_float(rate(), "learning_rate() (the callable's value)")
        return rate

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        if isinstance(getattr(self, "_learning_rate", None), schedules.LearningRateSchedule) and \
                not isinstance(value, schedules.LearningRateSchedule):
            raise TypeError("this optimizer's learning_rate is a LearningRateSchedule and cannot be set to a float; "
                            "create the optimizer with a float learning_rate to set it later")
        if isinstance(value, schedules.LearningRateSchedule) or (callable(value) and not isinstance(value, Real)):
            self._learning_rate = value
        else:
            self._learning_rate = positive_float(value, "learning_rate")

    @property
    def id(self) -> int:
        return self.rule.id

    def options(self, dtype, steps: int, tensors: np.ndarray, eigen_sum: bool) -> Options:
        """Keras's per-update options for the next ``steps`` updates (:class:`Options`), in ``dtype``.

        ``tensors``: the start and stop of each weight tensor in the flat
        parameters; ``eigen_sum``: the profile sums as TensorFlow does. All
        but the first iteration is the same from fit to fit while nothing
        changed (kept), and for optimizers of the same settings (shared);
        a schedule's rates are computed for each call.
        """
        if isinstance(self._learning_rate, schedules.LearningRateSchedule):
            return self._derive_options(dtype, steps, tensors, eigen_sum)
        configuration, eigen_sum = self._configuration(dtype), bool(eigen_sum)
        memo = self.__dict__.get("_options_memo")  # (configuration, tensors, eigen_sum, options)
        if memo is None or memo[0] != configuration or memo[1] is not tensors or memo[2] != eigen_sum:
            settings = self._settings(dtype)
            shared = _SHARED_OPTIONS.get((settings, eigen_sum)) if settings is not None else None
            if shared is not None and shared[0] is tensors:
                options = shared[1]
            else:
                options = self._derive_options(dtype, steps, tensors, eigen_sum)
                if settings is not None:
                    remember(_SHARED_OPTIONS, (settings, eigen_sum), (tensors, options))
            memo = self._options_memo = (configuration, tensors, eigen_sum, options)
        options = memo[3]
        return options if options.first_iteration == self.iterations else options._replace(first_iteration=self.iterations)

    def _derive_options(self, dtype, steps: int, tensors: np.ndarray, eigen_sum: bool) -> Options:
        kind = np.dtype(dtype).type
        clip, clip_value = CLIP_NONE, 0.0
        for code, name in ((CLIP_NORM, "clipnorm"), (CLIP_GLOBAL_NORM, "global_clipnorm"), (CLIP_VALUE, "clipvalue")):
            if getattr(self, name) is not None:
                clip, clip_value = code, getattr(self, name)
        if isinstance(self._learning_rate, schedules.LearningRateSchedule):
            rates = self._learning_rate.rates(self.iterations, steps, dtype)
        else:
            rates = _NO_RATES[kind]  # empty: nothing ever writes into it
        # Keras: ops.cast(self.weight_decay, dtype) goes through float32; the clip thresholds meet the gradients as
        # Python floats, converted straight to their dtype.
        weight_decay = _float32_first(self.weight_decay, dtype) if self.weight_decay else kind(0)
        # The moving average's momentum meets a tensor as a Python float: converted straight to the dtype.
        ema_momentum = kind(self.ema_momentum) if self.use_ema else kind(0)
        return Options(weight_decay, clip, kind(clip_value), rates, self.iterations,
                       np.asarray(tensors, dtype=np.int64).reshape(-1, 2), bool(eigen_sum), self.use_ema,
                       ema_momentum, int(self.ema_overwrite_frequency or 0) if self.use_ema else 0)

    def _base_config(self) -> dict:
        return {"weight_decay": self.weight_decay, "clipnorm": self.clipnorm, "clipvalue": self.clipvalue,
                "global_clipnorm": self.global_clipnorm, "use_ema": self.use_ema, "ema_momentum": self.ema_momentum,
                "ema_overwrite_frequency": self.ema_overwrite_frequency}

    def packed_hyperparameters(self, dtype) -> Hyperparameters:
        """:func:`packed` of :meth:`hyperparameters`, remembered for this configuration (a fit asks once per engine call).

        Shared too between optimizers of the same class and settings (:meth:`_settings`): a model built
        afresh for each fit (a sweep, a scikit-learn clone) does not derive its constants again.
        """
        key = self._configuration(dtype)
        cache = vars(self).setdefault("_hyper_cache", {})
        if key not in cache:
            cache.clear()
            settings = self._settings(dtype)
            shared = _SHARED_HYPERPARAMETERS.get(settings) if settings is not None else None
            if shared is None:
                shared = packed(self.hyperparameters(dtype))
                if settings is not None:
                    remember(_SHARED_HYPERPARAMETERS, settings, shared)
            cache[key] = shared
        return cache[key]

    def _settings(self, dtype):
        """A hashable key of everything the constants depend on (class, dtype, settings), or None.

        None when the learning rate is not a float (a schedule's or callable's rate changes as training goes).
        Derived once per configuration (:meth:`_configuration`).
        """
        configuration = self._configuration(dtype)
        memo = self.__dict__.get("_settings_memo")
        if memo is not None and memo[0] == configuration:
            return memo[1]
        key = None
        if type(self._learning_rate) is float:
            try:
                key = (type(self), np.dtype(dtype), *self.get_config().items())
                hash(key)
            except TypeError:  # an unhashable setting: no sharing
                key = None
        self._settings_memo = (configuration, key)
        return key

    def build(self, n_params: int, dtype) -> None:
        rows = len(self.rule.slots) + self.use_ema  # the moving average, if any, is the last row (Keras: zeros)
        if self.slots is None or self.slots.shape != (rows, n_params) or self.slots.dtype != dtype:
            self.slots = np.zeros((rows, n_params), dtype=dtype)
            initial = self.initial_slots(dtype)
            if any(value != 0 for value in initial):
                self.slots[:len(initial)] = np.asarray(initial, dtype=dtype)[:, None]
            self.iterations = 0

    def initial_slots(self, dtype) -> tuple:
        """Each slot's value before the first update (Keras's initializer of that variable): zeros by default."""
        return (0.0,) * len(self.rule.slots)

    def active_slots(self) -> tuple[str, ...]:
        """The slots this configuration uses (Keras creates only these variables)."""
        return self.rule.slots

    @property
    def state(self) -> dict[str, np.ndarray] | None:
        """The slots by name (``{"m": ..., "v": ...}``, and ``"moving_average"`` with ``use_ema``), views of
        :attr:`slots`; None before the first ``fit``."""
        if self.slots is None:
            return None
        return dict(zip(self.rule.slots + (("moving_average",) if self.use_ema else ()), self.slots))

    def apply_gradients(self, grads_and_vars) -> int:
        """Keras's ``apply_gradients``: one update of NumPy arrays, in place, from ``(gradient, variable)`` pairs.

        Returns :attr:`iterations` (as Keras returns its counter). See :meth:`apply`.
        """
        pairs = list(grads_and_vars)
        if pairs:
            grads, variables = zip(*pairs)
            self.apply(grads, variables)
        return self.iterations

    def apply(self, grads, trainable_variables=None) -> None:
        """Keras's ``apply``: one update of ``trainable_variables`` (writable float32 or float64 NumPy arrays of one
        dtype), in place, by ``grads`` (one per variable, of its shape), under the current numerics profile
        (:func:`gdcore.config.numerics`): the rule, clipping, weight decay, schedule and moving average as in ``fit``,
        each variable a weight tensor of its own. The first call builds the state for these variables; later calls
        may leave them out (``trainable_variables=None``), as in Keras.
        """
        from gdcore import config
        from gdcore.numerics import get_profile

        grads = list(grads)
        if not grads:
            return  # Keras: nothing to apply
        known = self.__dict__.get("_variables")
        if trainable_variables is None:
            if known is None:
                raise ValueError("apply(grads) without trainable_variables needs an optimizer already applied to "
                                 "variables: call apply(grads, trainable_variables) first")
            trainable_variables = known
        variables = list(trainable_variables)
        if len(grads) != len(variables):
            raise ValueError(f"apply got {len(grads)} gradient(s) for {len(variables)} variable(s); give one per variable")
        for index, variable in enumerate(variables):
            if not isinstance(variable, np.ndarray) or variable.dtype not in (np.float32, np.float64) or \
                    not variable.flags.writeable:
                raise TypeError(f"trainable_variables[{index}] must be a writable float32 or float64 NumPy array "
                                f"(updated in place), got {type(variable).__name__}"
                                f"{'' if not isinstance(variable, np.ndarray) else ' of ' + str(variable.dtype)}")
        dtype = variables[0].dtype
        if any(variable.dtype != dtype for variable in variables):
            raise TypeError(f"trainable_variables must share one dtype, got {sorted({str(v.dtype) for v in variables})}")
        flat_grads = []
        for index, (grad, variable) in enumerate(zip(grads, variables)):
            grad = np.asarray(grad, dtype=dtype)
            if grad.shape != variable.shape:
                raise ValueError(f"grads[{index}] has shape {grad.shape}, its variable {variable.shape}")
            flat_grads.append(grad.ravel())
        shapes = tuple(variable.shape for variable in variables)
        sizes = [variable.size for variable in variables]
        if self.slots is None or self.__dict__.get("_variable_shapes") != (shapes, dtype):
            if self.slots is not None and known is not None:
                raise ValueError(f"this optimizer was applied to variables of shapes {self._variable_shapes[0]} "
                                 f"({self._variable_shapes[1]}); got {shapes} ({dtype}): use a new optimizer")
            self.slots = None
            self.build(int(sum(sizes)), dtype)
        self._variables, self._variable_shapes = variables, (shapes, dtype)
        self.check(dtype)
        profile = get_profile(config.numerics())
        bounds = np.cumsum([0, *sizes])
        tensors = np.column_stack([bounds[:-1], bounds[1:]]).astype(np.int64)
        options = self._derive_options(dtype, 1, tensors, profile.name != "plain")
        params = np.concatenate([variable.ravel() for variable in variables])
        apply_update(self.hyperparameters(dtype), params, np.concatenate(flat_grads), self.slots, self.iterations,
                     profile.tensor_lanes(sizes, dtype), options)
        for variable, start, stop in zip(variables, bounds[:-1], bounds[1:]):
            variable[...] = params[start:stop].reshape(variable.shape)
        self.iterations += 1

    def finalize_variable_values(self, params: np.ndarray, lanes: np.ndarray) -> None:
        """Keras's end of ``fit``: with ``use_ema``, every trainable weight (``lanes`` not FROZEN) becomes its moving
        average, in place; nothing otherwise."""
        if self.use_ema and self.slots is not None and self.slots.shape[1] == params.shape[0]:
            trainable = lanes != FROZEN
            params[trainable] = self.slots[-1][trainable]

    def hyperparameters(self, dtype):
        """The rule's constants (its named tuple), rounded to ``dtype`` as Keras rounds them."""
        raise NotImplementedError

    def check(self, dtype) -> None:
        """Refuse constants that do not survive rounding to ``dtype`` (a learning rate that becomes 0 or inf)."""
        key = self._configuration(dtype)
        if self.__dict__.get("_checked") == key:
            return
        settings = self._settings(dtype)
        if settings is not None and settings in _CHECKED_SETTINGS:  # the same class and settings passed already
            self._checked = key
            return
        config = self.get_config()
        representable(self.learning_rate, dtype, "learning_rate")
        for name, value in {**config, **self._base_config()}.items():
            if name != "learning_rate" and isinstance(value, float):
                representable(value, dtype, name, allow_zero=True)
        self._checked = key
        if settings is not None:
            remember(_CHECKED_SETTINGS, settings, True)

    def get_config(self) -> dict:
        """The constructor's arguments (Keras's ``get_config``), the shared options (``weight_decay``, clipping) included."""
        raise NotImplementedError

    def keras_config(self) -> dict:
        """The keyword arguments of the Keras optimizer that trains the same way (a schedule as gdcore's object)."""
        config = self.get_config()
        if not isinstance(config["learning_rate"], (float, schedules.LearningRateSchedule)):
            raise ValueError(f"learning_rate={config['learning_rate']!r}: Keras calls a callable learning rate once, "
                             "when it traces the training step; pass a float or a schedule")
        return config

    def __repr__(self) -> str:
        config = {k: v for k, v in self.get_config().items() if BASE_DEFAULTS.get(k, object()) != v}
        args = ", ".join(f"{k}={v!r}" for k, v in config.items())
        return f"{type(self).__name__}({args})"


#: The settings every optimizer shares (Keras 3's BaseOptimizer's, in its config's order) and their defaults.
BASE_DEFAULTS = {"weight_decay": None, "clipnorm": None, "global_clipnorm": None, "clipvalue": None,
                 "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None}


def _flag(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum. Formula: module docstring."""

    rule = SGD_RULE

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 float32_momentum: bool = True, **options):
        super().__init__(learning_rate, **options)
        self.momentum = unit_interval(momentum, "momentum", closed_right=True)
        self.nesterov = _flag(nesterov, "nesterov")
        # Keras casts the momentum through float32 (ops.cast); scikit-learn's MLP uses it exactly.
        self.float32_momentum = _flag(float32_momentum, "float32_momentum")

    def active_slots(self) -> tuple[str, ...]:
        return self.rule.slots if self.momentum != 0 else ()

    def hyperparameters(self, dtype) -> SGDHyperparameters:
        kind = np.dtype(dtype).type
        momentum = _float32_first(self.momentum, dtype) if self.float32_momentum else kind(self.momentum)
        return SGDHyperparameters(kind(self.learning_rate), momentum, self.nesterov)

    def get_config(self) -> dict:
        return {"learning_rate": self._learning_rate, "momentum": self.momentum, "nesterov": self.nesterov,
                "float32_momentum": self.float32_momentum, **self._base_config()}

    def keras_config(self) -> dict:
        config = super().keras_config()
        if not config.pop("float32_momentum"):
            raise ValueError("SGD(float32_momentum=False) is scikit-learn's convention; Keras has no such option")
        return config


class Adam(Optimizer):
    """Adam with Keras's epsilon-hat and float32-rounded betas. Formula: module docstring."""

    rule = ADAM_RULE

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                 amsgrad: bool = False, float32_betas: bool = True, **options):
        super().__init__(learning_rate, **options)
        self.amsgrad = _flag(amsgrad, "amsgrad")
        self.beta_1 = unit_interval(beta_1, "beta_1")
        self.beta_2 = unit_interval(beta_2, "beta_2")
        self.epsilon = positive_float(epsilon, "epsilon", allow_zero=True)
        # Keras rounds beta to float32 before raising it to the power t; scikit-learn does not.
        self.float32_betas = _flag(float32_betas, "float32_betas")

    def hyperparameters(self, dtype) -> AdamHyperparameters:
        kind = np.dtype(dtype).type
        power_base = (lambda beta: _float32_first(beta, dtype)) if self.float32_betas else kind
        return AdamHyperparameters(kind(self.learning_rate), power_base(self.beta_1), power_base(self.beta_2),
                                   kind(1 - self.beta_1), kind(1 - self.beta_2), kind(self.epsilon), self.amsgrad)

    def active_slots(self) -> tuple[str, ...]:
        return self.rule.slots if self.amsgrad else self.rule.slots[:2]

    def get_config(self) -> dict:
        return {"learning_rate": self._learning_rate, "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad, "float32_betas": self.float32_betas,
                **self._base_config()}

    def keras_config(self) -> dict:
        config = super().keras_config()
        if not config.pop("float32_betas"):
            raise ValueError("Adam(float32_betas=False) is scikit-learn's convention; Keras has no such option")
        return config


class RMSprop(Optimizer):
    """RMSprop, Keras's default optimizer (``compile()`` with no optimizer). Formula: module docstring."""

    rule = RMSPROP_RULE

    def __init__(self, learning_rate: float = 0.001, rho: float = 0.9, momentum: float = 0.0, epsilon: float = 1e-7,
                 centered: bool = False, **options):
        super().__init__(learning_rate, **options)
        self.rho = unit_interval(rho, "rho")
        self.momentum = unit_interval(momentum, "momentum")
        self.epsilon = positive_float(epsilon, "epsilon", allow_zero=True)
        self.centered = _flag(centered, "centered")

    def active_slots(self) -> tuple[str, ...]:
        return ("v",) + (("m",) if self.momentum > 0 else ()) + (("average",) if self.centered else ())

    def hyperparameters(self, dtype) -> RMSpropHyperparameters:
        kind = np.dtype(dtype).type
        return RMSpropHyperparameters(kind(self.learning_rate), kind(self.rho), kind(1 - self.rho), kind(self.momentum),
                                      kind(self.epsilon), self.centered)

    def get_config(self) -> dict:
        return {"learning_rate": self._learning_rate, "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered, **self._base_config()}


class Adagrad(Optimizer):
    """Adagrad (``keras.optimizers.Adagrad``): per-parameter learning rates from the accumulated squared gradients.

    Formula: module docstring. The accumulator starts at
    ``initial_accumulator_value``, which Keras's ``Constant`` initializer casts
    through float32 (in float64, 0.1 starts as 0.10000000149011612).
    """

    rule = ADAGRAD_RULE

    def __init__(self, learning_rate: float = 0.001, initial_accumulator_value: float = 0.1, epsilon: float = 1e-7,
                 **options):
        super().__init__(learning_rate, **options)
        self.initial_accumulator_value = positive_float(initial_accumulator_value, "initial_accumulator_value",
                                                        allow_zero=True)
        self.epsilon = positive_float(epsilon, "epsilon", allow_zero=True)

    def initial_slots(self, dtype) -> tuple:
        return (_float32_first(self.initial_accumulator_value, dtype),)

    def hyperparameters(self, dtype) -> AdagradHyperparameters:
        kind = np.dtype(dtype).type
        return AdagradHyperparameters(kind(self.learning_rate), kind(self.epsilon))

    def get_config(self) -> dict:
        return {"learning_rate": self._learning_rate, "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon, **self._base_config()}


class AdamW(Adam):
    """Adam with decoupled weight decay (``keras.optimizers.AdamW``): Keras 3's Adam with ``weight_decay=0.004``.

    The decay is the one every optimizer applies (:class:`Options`): before
    the update, :math:`w \\leftarrow w - (w\\lambda)\\eta`, :math:`\\lambda`
    rounded through float32.
    """

    def __init__(self, learning_rate: float = 0.001, weight_decay: float = 0.004, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, amsgrad: bool = False, **options):
        if weight_decay is None:
            raise ValueError("AdamW needs a weight_decay (a float >= 0), got None; use Adam for none")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay=weight_decay, **options)


OPTIMIZERS = {cls.rule.name: cls for cls in (SGD, Adam, RMSprop, Adagrad)}
OPTIMIZERS["adamw"] = AdamW


def get(identifier) -> Optimizer:
    """An optimizer object from a name (Keras defaults) or an existing object."""
    if isinstance(identifier, Optimizer):
        return identifier
    return lookup(OPTIMIZERS, identifier, "optimizer")()
