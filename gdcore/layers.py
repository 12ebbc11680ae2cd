"""Layers with Keras's names: ``Input`` (a symbolic tensor), ``InputLayer``, ``Dense`` and the activation layers.

As in Keras 3's functional API, ``Input(shape=(d,))`` returns a symbolic
:class:`KerasTensor`, and calling a layer on one returns another, remembering
which layer made it from which tensor; :class:`gdcore.Model` follows that
history back from its outputs to its inputs. Called on an array, a layer
computes its output (building itself on first use).

Names follow Keras: a layer without a ``name`` gets its class's snake-case name
made unique within the session (``dense``, ``dense_1``, ``re_lu``, ...), counters that
:func:`gdcore.backend.clear_session` resets.

The activation layers (``ReLU``, ``LeakyReLU``, ``ELU``, ``Activation``) have
no weights: a model folds each into the activation of the linear Dense layer
before it (:meth:`ActivationLayer.entry` is the table entry it runs). Keras's
fit runs the same ops either way (measured: a Dense layer with
``activation="sigmoid"`` and a linear Dense followed by
``Activation("sigmoid")`` train to the same bits, float32 and float64, for
sigmoid, tanh, elu, relu, leaky_relu, silu and gelu).
"""

from __future__ import annotations

import math

import numpy as np

from gdcore import activations, constraints, initializers, regularizers
from gdcore._naming import unique_name
from gdcore._validation import positive_int

# Dense arguments Keras has and gdcore does not (yet): refused by name, never ignored.
_UNSUPPORTED_DENSE = ("lora_rank", "lora_alpha", "quantization_config")


def _shape(shape, name: str = "shape") -> tuple[int]:
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        shape = tuple(shape)
    except TypeError:
        raise TypeError(f"{name} must be a tuple such as (n_features,), got {shape!r}") from None
    if len(shape) != 1:
        raise ValueError(f"{name} must be (n_features,) for a Dense network, got {shape!r}")
    return (positive_int(shape[0], f"{name}[0]"),)


class KerasTensor:
    """A symbolic tensor of the functional API: a shape ``(None, d)``, a dtype and where it came from.

    ``_keras_history`` is ``(layer, input_tensor)``: the layer that made it and
    the tensor that layer was called on (``None`` for the tensor of an ``Input``).
    """

    def __init__(self, shape, dtype, name, layer, source=None):
        self.shape, self.dtype, self.name = shape, dtype, name
        self._keras_history = (layer, source)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"


class Layer:
    """What every gdcore layer has: a name, built-ness, weights (Keras's layout) and a trainable flag."""

    def __init__(self, name: str | None = None, trainable: bool = True):
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string, got {type(name).__name__}")
        self.name = name if name is not None else unique_name(_snake(type(self).__name__))
        self.trainable = trainable
        self._model = None  # the model this layer belongs to (a layer belongs to one model)

    @property
    def trainable(self) -> bool:
        """Whether training updates this layer's weights (Keras's flag: set it before ``compile`` to freeze a layer).

        A frozen layer still computes its outputs and passes gradients down to
        the layers below; its own weights get no update, no optimizer slot
        (as Keras creates none), no weight decay and no part in the
        gradients' global norm.
        """
        return self._trainable

    @trainable.setter
    def trainable(self, value) -> None:
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"trainable must be True or False, got {value!r}")
        self._trainable = bool(value)

    @property
    def built(self) -> bool:
        return False

    def get_weights(self) -> list[np.ndarray]:
        return []

    @property
    def weights(self) -> list[np.ndarray]:
        return []

    @property
    def trainable_weights(self) -> list[np.ndarray]:
        """:attr:`weights` if the layer is trainable, else none (Keras's ``trainable_weights``)."""
        return self.weights if self.trainable else []

    @property
    def non_trainable_weights(self) -> list[np.ndarray]:
        return [] if self.trainable else self.weights

    def count_params(self) -> int:
        return 0


def _snake(name: str) -> str:
    out = ""
    for index, char in enumerate(name):
        if char.isupper() and index and not name[index - 1].isupper():
            out += "_"
        out += char.lower()
    return out


class InputLayer(Layer):
    """The input of a model: its shape per sample (``keras.layers.InputLayer``)."""

    def __init__(self, shape=None, batch_size=None, dtype=None, name=None, **kwargs):
        if kwargs:
            raise TypeError(f"InputLayer got unsupported arguments {sorted(kwargs)}")
        super().__init__(name=name if name is not None else unique_name("input_layer"))
        if shape is None:
            raise ValueError("Input needs a shape, such as shape=(1,) for one feature per sample")
        self.shape = _shape(shape)
        # Keras keeps a fixed batch size in the input's shape (summary, configs) and still fits arrays in
        # batches of any size (verified against Keras 3.15), so it changes no computation here either.
        self.batch_size = None if batch_size is None else positive_int(batch_size, "batch_size")
        self.dtype = dtype
        self.output = KerasTensor(self.compute_output_shape(), dtype or "float32", unique_name("keras_tensor"), self)

    def compute_output_shape(self):
        return (self.batch_size, *self.shape)

    def __repr__(self) -> str:
        batch = f", batch_size={self.batch_size}" if self.batch_size is not None else ""
        return f"InputLayer(shape={self.shape}{batch}, name={self.name!r})"


def Input(shape=None, batch_size=None, dtype=None, name=None, **kwargs) -> KerasTensor:
    """The symbolic input of a model, as ``keras.Input(shape=(d,), batch_size=None, name=...)``: a :class:`KerasTensor`.

    ``batch_size`` fixes the batch dimension of the shapes Keras shows (``summary``, configs), as
    ``keras.Input`` does; like Keras, ``fit``/``evaluate``/``predict`` on arrays still take any ``batch_size``.
    """
    return InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name, **kwargs).output


class Dense(Layer):
    r"""A fully connected layer: :math:`y = f(x W + b)`, or :math:`y = f(x W)` with ``use_bias=False``.

    ``kernel`` has shape (n_in, units) and ``bias`` shape (units,), Keras's
    layout; once the layer belongs to a built model both are views into the
    model's flat parameter array, so reading them shows the current weights.
    With ``use_bias=False`` the layer has no bias at all, as in Keras
    (``bias`` is None; weights, files and counts hold the kernel alone).
    ``kernel_regularizer``/``bias_regularizer`` (a name such as ``"l2"`` or a
    :mod:`gdcore.regularizers` object) add their penalty to the loss and its
    gradient while the layer is trainable, as Keras does.
    ``activity_regularizer`` adds the penalty of the layer's output (after
    its activation) divided by the batch size, trainable or not;
    ``kernel_constraint``/``bias_constraint`` (a name such as ``"max_norm"`` or
    a :mod:`gdcore.constraints` object) project the tensor after each update
    while the layer is trainable.
    """

    # also for layers pickled before these options existed
    kernel_regularizer = bias_regularizer = activity_regularizer = kernel_constraint = bias_constraint = None
    folded = None  # the activation layer a model folded into this one (its activation then runs here)

    def __init__(self, units: int, activation=None, use_bias: bool = True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, name: str | None = None,
                 input_shape=None, input_dim=None, trainable: bool = True, dtype=None, **kwargs):
        for setting in _UNSUPPORTED_DENSE:
            if kwargs.get(setting) is not None:
                raise NotImplementedError(f"Dense({setting}=...) is not supported yet")
        unknown = sorted(set(kwargs) - set(_UNSUPPORTED_DENSE))
        if unknown:
            raise TypeError(f"Dense got unexpected arguments {unknown}")
        if not isinstance(use_bias, (bool, np.bool_)):
            raise ValueError(f"use_bias must be True or False, got {use_bias!r}")
        if dtype is not None:
            raise NotImplementedError("Dense(dtype=...) is not supported: the model's dtype applies to every layer")
        super().__init__(name=name, trainable=trainable)
        self.units = positive_int(units, "units")
        # Keras 2 style: the first layer may carry the input shape instead of an Input.
        if input_dim is not None:
            input_shape = (input_dim,) if input_shape is None else input_shape
        self.input_shape = None if input_shape is None else _shape(input_shape, "input_shape")
        # Keras takes any callable; gdcore's activation layers are those whose gradient it reproduces
        # (Dense(activation=LeakyReLU(0.1)) runs the table's leaky_relu with slope 0.1).
        self.activation_layer = activation if isinstance(activation, ActivationLayer) else None
        self.activation = activation.entry() if self.activation_layer is not None else activations.get(activation)
        if self.activation.row_wise and units == 1:
            raise ValueError(f"activation={self.activation.name!r} on a Dense layer of units=1 always outputs 1 (it "
                             "normalises over the units); use units >= 2, or activation='sigmoid' for one output")
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.use_bias = bool(use_bias)
        self.kernel_regularizer = regularizers.get(kernel_regularizer, "kernel_regularizer")
        self.bias_regularizer = regularizers.get(bias_regularizer, "bias_regularizer")
        self.activity_regularizer = regularizers.get(activity_regularizer, "activity_regularizer")
        self.kernel_constraint = constraints.get(kernel_constraint, "kernel_constraint")
        self.bias_constraint = constraints.get(bias_constraint, "bias_constraint")
        if self.bias_constraint is not None:
            self.bias_constraint.axis_code(1)  # a bias has one axis: axis=1 is an error now, not at the first fit
        self.input_dim: int | None = None
        self.kernel: np.ndarray | None = None
        self.bias: np.ndarray | None = None

    @property
    def built(self) -> bool:
        return self.kernel is not None

    @property
    def effective_activation(self) -> activations.Activation:
        """The activation the model runs after this layer's product: its own, or that of the activation layer
        folded into it."""
        return self.folded.entry() if self.folded is not None else self.activation

    @property
    def effective_parameters(self) -> tuple[float, float, float]:
        """:attr:`effective_activation`'s parameters as the layout keeps them (``Activation.parameter_values``)."""
        return self._parameters_of(self.folded if self.folded is not None else self.activation_layer)

    def _parameters_of(self, layer) -> tuple[float, float, float]:
        """The parameters of ``layer``'s entry as it sets them, or of this layer's activation's defaults (None)."""
        if layer is None:
            return self.activation.parameter_values()
        return layer.entry().parameter_values(layer.parameters())

    def __call__(self, inputs):
        if isinstance(inputs, (list, tuple)) and len(inputs) == 1 and isinstance(inputs[0], KerasTensor):
            inputs = inputs[0]
        if isinstance(inputs, KerasTensor):
            if len(inputs.shape) != 2 or inputs.shape[1] is None:
                raise ValueError(f"layer {self.name!r} needs inputs of shape (None, n_features), got {inputs.shape}")
            if self.input_dim is not None and self.input_dim != inputs.shape[1]:
                raise ValueError(f"layer {self.name!r} takes {self.input_dim} inputs, got a tensor of shape {inputs.shape}")
            self.input_dim = inputs.shape[1]
            return KerasTensor((inputs.shape[0], self.units), inputs.dtype, unique_name("keras_tensor"), self, inputs)
        return self._eager(inputs)

    def _eager(self, inputs):
        """The layer applied to an array (built on first use, in float32 unless it belongs to a model)."""
        from gdcore._validation import as_features
        from gdcore.numerics import get_profile

        dtype = self.kernel.dtype if self.kernel is not None else np.dtype("float32")
        x = as_features(inputs, "inputs", self.input_dim, dtype=dtype)
        if self.kernel is None:
            self.input_dim = x.shape[1]
            self.kernel = np.asarray(self.kernel_initializer((self.input_dim, self.units), dtype, None), dtype)
            if self.use_bias:
                self.bias = np.asarray(self.bias_initializer((self.units,), dtype, None), dtype)
        profile = self._model.profile if self._model is not None else get_profile("plain")
        z = profile.dense(x, self.kernel, self.bias) if self.use_bias else profile.matmul(x, self.kernel)
        return profile.activate(self.activation, z, fused=self.use_bias,
                                parameters=self._parameters_of(self.activation_layer))

    def compute_output_shape(self):
        return (None, self.units)

    @property
    def weights(self) -> list[np.ndarray]:
        """``[kernel, bias]`` (``[kernel]`` without a bias), the arrays themselves; empty before the layer is built."""
        if self.kernel is None:
            return []
        return [self.kernel, self.bias] if self.use_bias else [self.kernel]

    def get_weights(self) -> list[np.ndarray]:
        """``[kernel, bias]`` (``[kernel]`` with ``use_bias=False``) as copies."""
        if self.kernel is None:
            raise ValueError(f"layer {self.name!r} is not built yet: its weights do not exist")
        return [array.copy() for array in self.weights]

    def set_weights(self, weights) -> None:
        """Load ``[kernel, bias]`` (``[kernel]`` with ``use_bias=False``; shapes as :meth:`get_weights`)."""
        from gdcore.models import check_weights

        if self.kernel is None:
            raise ValueError(f"layer {self.name!r} is not built yet: its weights do not exist")
        targets = self.weights
        for value, target in zip(check_weights(weights, targets, f"layer {self.name!r}"), targets):
            target[:] = value

    def count_params(self) -> int:
        if self.input_dim is None:
            raise ValueError(f"layer {self.name!r} is not built yet: its input size is unknown")
        return self.input_dim * self.units + self.units * self.use_bias

    def get_config(self) -> dict:
        return {"name": self.name, "trainable": self.trainable, "units": self.units,
                "activation": self.activation_layer if self.activation_layer is not None else self.activation.name,
                "use_bias": self.use_bias,
                "kernel_initializer": self.kernel_initializer, "bias_initializer": self.bias_initializer,
                "kernel_regularizer": self.kernel_regularizer, "bias_regularizer": self.bias_regularizer,
                "activity_regularizer": self.activity_regularizer, "kernel_constraint": self.kernel_constraint,
                "bias_constraint": self.bias_constraint}

    def __getstate__(self) -> dict:
        # pickle and deepcopy copy a view as an array of its own: in a built model, kernel and bias are kept as
        # the model's flat parameter array (the same object the model holds, so restored once) and offsets, and
        # made views of it again. The activation goes by name, so the table's entry comes back.
        state = dict(self.__dict__)
        state["activation"] = self.activation.name
        params = getattr(self._model, "params", None)
        if self.kernel is not None and params is not None and np.shares_memory(self.kernel, params):
            offsets = [(array.__array_interface__["data"][0] - params.__array_interface__["data"][0]) //
                       params.itemsize for array in (self.kernel, self.bias) if array is not None]
            state["kernel"] = state["bias"] = None
            state["_views_of"] = (params, offsets[0], offsets[1] if self.use_bias else None)
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        state["activation"] = activations.get(state["activation"])
        views = state.pop("_views_of", None)
        self.__dict__.update(state)
        if views is not None:
            params, kernel, bias = views
            self.kernel = params[kernel : kernel + self.input_dim * self.units].reshape(self.input_dim, self.units)
            self.bias = params[bias : bias + self.units] if bias is not None else None

    def __repr__(self) -> str:
        return f"Dense({self.units}, activation={self.activation.name!r}, name={self.name!r})"


class ActivationLayer(Layer):
    """A layer with no weights that applies an activation: folded into the linear Dense layer before it.

    ``entry()`` is the :data:`gdcore.activations.ACTIVATIONS` entry the layer
    runs; options the table cannot express yet raise NotImplementedError
    naming them, when the layer is created.
    """

    def __init__(self, name: str | None = None, trainable: bool = True, dtype=None, **kwargs):
        unknown = sorted(kwargs)
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected arguments {unknown}")
        if dtype is not None:
            raise NotImplementedError(f"{type(self).__name__}(dtype=...) is not supported: the model's dtype applies "
                                      "to every layer")
        super().__init__(name=name, trainable=trainable)
        self._entry = self._resolve()

    def _resolve(self) -> activations.Activation:
        raise NotImplementedError

    def entry(self) -> activations.Activation:
        """The activation table's entry this layer runs."""
        return self._entry

    def parameters(self) -> tuple | None:
        """The values of the entry's parameters (``Activation.parameters``) this layer sets; None: its defaults."""
        return None

    @property
    def built(self) -> bool:
        return True

    def __call__(self, inputs):
        if isinstance(inputs, (list, tuple)) and len(inputs) == 1 and isinstance(inputs[0], KerasTensor):
            inputs = inputs[0]
        if isinstance(inputs, KerasTensor):
            return KerasTensor(inputs.shape, inputs.dtype, unique_name("keras_tensor"), self, inputs)
        from gdcore.numerics import get_profile

        z = np.asarray(inputs)
        z = z.astype(np.float32) if z.dtype.kind != "f" else z
        profile = self._model.profile if self._model is not None else get_profile("plain")
        flat = z.reshape(z.shape[0], -1) if z.ndim != 2 else z
        parameters = self._entry.parameter_values(self.parameters())
        return profile.activate(self._entry, flat, parameters=parameters).reshape(z.shape)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {"name": self.name, "trainable": self.trainable}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _number(value, argument: str, layer: str, allow_none: bool = False, allow_inf: bool = False):
    """A float option of an activation layer, as Keras compares it (a bool or a string is an error).

    NaN, and infinity unless ``allow_inf``, are errors here where Keras accepts them: a NaN cap or threshold
    silently zeroes (or NaNs) the layer's output, an infinite slope makes training diverge.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{layer}({argument}=...) must be a number{' or None' if allow_none else ''}, got {value!r}")
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise ValueError(f"{layer}({argument}=...) must be a finite number{' or None' if allow_none else ''}, "
                         f"got {value!r}")
    return value


class ReLU(ActivationLayer):
    r"""Keras's ``keras.layers.ReLU(max_value=None, negative_slope=0.0, threshold=0.0)``.

    :math:`f(z) = \min(z, m)` for :math:`z > t`, :math:`s (z - t)` below
    (Keras's ``keras.activations.relu``). Keras's layer refuses a negative
    ``max_value``, ``negative_slope`` or ``threshold`` (ValueError, as here).
    Every combination: the defaults run ``relu``, ``max_value=6`` alone
    ``relu6`` (Keras runs ``tf.nn.relu6`` then), a ``negative_slope`` alone
    ``leaky_relu`` with that slope (``tf.nn.leaky_relu``), and any other
    combination ``relu_options``, the ops Keras composes for it.
    """

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        # Keras 3's checks and messages (keras/src/layers/activations/relu.py).
        max_value = _number(max_value, "max_value", "ReLU", allow_none=True, allow_inf=True)
        if max_value is not None and max_value < 0.0:
            raise ValueError(f"max_value of a ReLU layer cannot be a negative value. Received: max_value={max_value}")
        if negative_slope is None or _number(negative_slope, "negative_slope", "ReLU") < 0.0:
            raise ValueError("negative_slope of a ReLU layer cannot be None or a negative value. "
                             f"Received: negative_slope={negative_slope}")
        if threshold is None or _number(threshold, "threshold", "ReLU") < 0.0:
            raise ValueError(f"threshold of a ReLU layer cannot be None or a negative value. Received: threshold={threshold}")
        self.max_value, self.negative_slope, self.threshold = max_value, negative_slope, threshold
        super().__init__(**kwargs)

    def _resolve(self) -> activations.Activation:
        # keras.activations.relu picks its ops from the options (ReLU.static_call in keras/src/activations).
        slope, cap, threshold = self.negative_slope, self.max_value, self.threshold
        if slope == 0 and threshold == 0 and cap is None:
            return activations.RELU
        if slope == 0 and threshold == 0 and cap == 6:
            return activations.RELU6
        if cap is None and threshold == 0:
            return activations.LEAKY_RELU
        return activations.RELU_OPTIONS

    def parameters(self) -> tuple | None:
        if self._entry is activations.LEAKY_RELU:
            return (float(self.negative_slope),)
        if self._entry is activations.RELU_OPTIONS:
            cap = np.inf if self.max_value is None else float(self.max_value)
            return float(self.negative_slope), cap, float(self.threshold)
        return None

    def get_config(self) -> dict:
        return {**super().get_config(), "max_value": self.max_value, "negative_slope": self.negative_slope,
                "threshold": self.threshold}


class LeakyReLU(ActivationLayer):
    r"""Keras's ``keras.layers.LeakyReLU(negative_slope=0.3)``: :math:`z` for :math:`z > 0`, else :math:`s z`.

    The layer's default slope (0.3) is not the function's (``leaky_relu``,
    0.2). Keras refuses a negative or None slope (ValueError, as here). The
    table's ``leaky_relu`` with this slope, rounded to float32 as
    TensorFlow's ``LeakyRelu`` takes it.
    """

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:  # Keras 3 still takes its old name, with a deprecation warning
            import warnings

            negative_slope = kwargs.pop("alpha")
            warnings.warn("Argument `alpha` is deprecated. Use `negative_slope` instead.", stacklevel=2)
        if negative_slope is None or _number(negative_slope, "negative_slope", "LeakyReLU") < 0:
            raise ValueError("The negative_slope value of a Leaky ReLU layer cannot be None or negative value. "
                             f"Expected a float. Received: negative_slope={negative_slope}")
        self.negative_slope = negative_slope
        super().__init__(**kwargs)

    def _resolve(self) -> activations.Activation:
        return activations.LEAKY_RELU

    def parameters(self) -> tuple:
        return (float(self.negative_slope),)

    def get_config(self) -> dict:
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(ActivationLayer):
    r"""Keras's ``keras.layers.ELU(alpha=1.0)``: :math:`z` for :math:`z > 0`, else :math:`\alpha (e^z - 1)`.

    Supported: ``alpha=1`` (the table's ``elu``); other values are not yet.
    """

    def __init__(self, alpha=1.0, **kwargs):
        self.alpha = _number(alpha, "alpha", "ELU")
        super().__init__(**kwargs)

    def _resolve(self) -> activations.Activation:
        if self.alpha == 1:
            return activations.ELU
        raise NotImplementedError(f"ELU(alpha={self.alpha!r}) is not supported yet: gdcore's activation table has "
                                  "elu with alpha=1 only")

    def get_config(self) -> dict:
        return {**super().get_config(), "alpha": self.alpha}


class Activation(ActivationLayer):
    """Keras's ``keras.layers.Activation(activation)``: a name of :mod:`gdcore.activations` or a table entry.

    Also Keras's functions (``gdcore.activations.relu``) and the table's kernels, found by identity.
    An unknown name is a ValueError listing the known ones.
    """

    def __init__(self, activation, **kwargs):
        if activation is None:
            raise ValueError("Activation(activation=None): give an activation's name, such as 'relu'")
        if callable(activation) and not isinstance(activation, (str, activations.Activation)):
            entry = activations._FUNCTIONS.get(activation) or next(
                (a for a in activations.ACTIVATIONS if a.forward is activation), None)
            if entry is None:
                raise NotImplementedError(f"Activation({activation!r}): gdcore runs the activations of its table "
                                          f"({', '.join(activations.BY_NAME)}), by name or entry; other functions "
                                          "are not supported")
            activation = entry
        self._requested = activations.get(activation)
        super().__init__(**kwargs)

    def _resolve(self) -> activations.Activation:
        return self._requested

    @property
    def activation(self) -> activations.Activation:
        return self._entry

    def get_config(self) -> dict:
        return {**super().get_config(), "activation": self._entry.name}

    def __repr__(self) -> str:
        return f"Activation({self._entry.name!r}, name={self.name!r})"


def __getattr__(name):
    # ``keras.layers.Dropout`` and the other Keras layers: an error naming the layer and what gdcore has.
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(f"keras.layers.{name} is not supported by gdcore: its layers are Input, InputLayer, Dense "
                         "and the activation layers ReLU, LeakyReLU, ELU, Activation (chains of Dense layers)")
