r"""Keras 3's own files, both ways: the ``.keras`` archive and the ``.weights.h5`` file.

``model.save("m.keras")`` writes what Keras 3.15 writes for the same model, so
``keras.models.load_model`` opens it, predicts with the same weights (same
bits) and, compiled, goes on training from the same optimizer state;
:func:`load_model` opens what Keras wrote for a chain of Dense layers. The
format, as ``keras/src`` (3.15.1) writes it:

**The archive** (``saving/saving_lib.py``, ``_save_model_to_fileobj``): a zip
file, members stored uncompressed, in this order:

``metadata.json``
    ``{"keras_version": "3.15.1", "date_saved": "%Y-%m-%d@%H:%M:%S"}``
    (``_serialize_model_as_json``). Keras does not read it back.
``config.json``
    ``serialize_keras_object(model)`` inside an ``ObjectSharingScope``
    (``saving/serialization_lib.py``): ``{"module", "class_name", "config",
    "registered_name", "build_config", "compile_config"}``. A Sequential is
    ``("keras", "Sequential")`` with config ``name, trainable, dtype, layers,
    build_input_shape`` (``models/sequential.py``, ``get_config``; its layers
    include the ``InputLayer``, made by Keras when the model was built from a
    shape); a functional model is ``("keras.src.models.functional",
    "Functional")``, registered name ``"Functional"``, config ``name,
    trainable, layers, input_layers, output_layers``, each layer with its
    ``name`` and ``inbound_nodes`` (``models/functional.py``, ``get_config``),
    and ``build_config`` ``{"input_shape": null}``. A Dense layer's config is
    ``name, trainable, dtype`` (``layers/layer.py``, ``Layer.get_config``)
    then ``units, activation, use_bias, kernel_initializer, bias_initializer,
    kernel_regularizer, bias_regularizer, kernel_constraint, bias_constraint,
    quantization_config`` (``layers/core/dense.py``, ``get_config``), and
    ``build_config`` ``{"input_shape": [null, n_in]}`` once built; an
    ``InputLayer``'s is ``batch_shape, dtype, sparse, ragged, name, optional``
    (``layers/core/input_layer.py``). The dtype is a ``DTypePolicy`` object
    shared by every layer: the *first* place it is serialized carries no
    ``shared_object_id``, every later one does
    (``record_object_after_serialization``: the first config it records is
    copied away by the enclosing ``serialize_dict``), and so do initializer
    objects used twice. The compile config (``trainers/trainer.py``,
    ``compile``) holds the optimizer's full config (``optimizers/base_optimizer.py``,
    ``get_config``: ``name`` (snake case of the class, ``"rm_sprop"``),
    ``learning_rate`` read back from its variable, so ``0.0010000000474974513``
    in float32, the clipping / EMA / scaling settings, then the optimizer's
    own), the loss as it was given to ``compile``, ``loss_weights``,
    ``metrics``, ``weighted_metrics``, ``run_eagerly``, ``steps_per_execution``,
    ``jit_compile``; ``{}`` for a model never compiled.
``model.weights.h5``
    HDF5 (``H5IOStore``): each saveable's variables in a group
    ``<path>/vars`` whose attribute ``name`` is the object's name, datasets
    ``"0"``, ``"1"``, ... (``_save_state``, ``_walk_saveable``,
    ``_save_container_state``). Paths: ``""`` for the model itself (no
    datasets), ``layers/<snake case of the class>[_k]`` for the layers in
    ``model.layers`` order, numbered per class name, never by layer name
    (a Sequential's ``layers`` leave out its ``InputLayer``, a functional
    model's start with it: ``layers/input_layer``, empty), Dense: ``0``
    kernel, ``1`` bias (``save_own_variables``); ``optimizer``: ``0`` the
    iteration count (int64 scalar), ``1`` the learning rate (a floatx
    scalar), then, with ``use_ema``, the moving average of each trainable
    weight (the base optimizer's ``build``), then the slots
    (``base_optimizer.py``, ``__init__``, ``add_optimizer_variables``,
    ``save_own_variables``): one
    ``add_optimizer_variables`` call per group of :data:`KERAS_SLOT_GROUPS`,
    each looping over the trainable weights (kernel_0, bias_0, kernel_1, ...)
    and, for Adam's single call with two names, interleaving them
    (m kernel_0, v kernel_0, m bias_0, ...). An optimizer never applied has
    only the first two (SGD without momentum and moving average never has more).

**A ``.weights.h5`` file** (``save_weights_only``) is the same HDF5 file on
its own, optimizer included. Loading follows ``load_weights_only``: the
optimizer's variables are taken when there are as many as the model's
optimizer has (Keras warns and skips them otherwise).

What gdcore keeps that Keras's format has no place for: the ``numerics``
profile, the ``engine`` and the generator that shuffles ``fit``'s batches;
:func:`load_model` takes them as arguments (``numerics=``, ``engine=``,
``seed=``), and a loaded model's shuffling starts from that seed, not where
the saved model's generator was (``pickle``/``copy.deepcopy`` keep it).
What a Keras file has that gdcore does not keep: the optimizer's name (a
gdcore optimizer has none; it writes Keras's default, ``"adam"``, where Keras
may have written a session-unique ``"adam_1"``). Keras's ``Identity``
initializer writes ``{}`` (its ``gain`` is lost); gdcore writes
``{"gain": ...}``, which Keras reads.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import re
import warnings
import zipfile

import h5py
import numpy as np

from gdcore import _contract, activations, constraints, initializers, losses, optimizers, regularizers

KERAS_VERSION = "3.15.1"
CONFIG_MEMBER = "config.json"
METADATA_MEMBER = "metadata.json"
WEIGHTS_MEMBER = "model.weights.h5"

#: Keras's optimizer slots, by Keras class name: one tuple per ``add_optimizer_variables`` call in its ``build``
#: (sgd.py, adam.py, rmsprop.py, adagrad.py), by Keras's attribute names (a rule's ``keras_slots``); a slot the
#: configuration does not use is not created.
KERAS_SLOT_GROUPS = {
    "SGD": (("momentums",),),
    "Adam": (("momentums", "velocities"), ("velocity_hats",)),
    "RMSprop": (("velocities",), ("momentums",), ("average_gradients",)),
    "Adagrad": (("accumulators",),),
}
# Keras 3's base optimizer settings and their defaults: gdcore's own (optimizers.BASE_DEFAULTS) pass through
# keras_config(); the others must hold their default, the only value gdcore can honour.
_OPTIMIZER_BASE_DEFAULTS = {**optimizers.BASE_DEFAULTS, "loss_scale_factor": None, "gradient_accumulation_steps": None}
# Settings Keras has beyond gdcore's keras_config(), with the value gdcore implements.
_OPTIMIZER_EXTRAS: dict = {}
_DENSE_UNSUPPORTED = ("quantization_config", "lora_rank", "lora_alpha")
_COMPILE_DEFAULTS = {"loss_weights": None, "metrics": None, "weighted_metrics": None, "run_eagerly": False,
                     "steps_per_execution": 1}
_DTYPES = ("float32", "float64")


class _Unreadable(ValueError):
    """A file that is not what it claims to be; the message names the file."""


def _snake_case(name: str) -> str:
    """Keras's ``naming.to_snake_case``: ``"RMSprop"`` -> ``"rm_sprop"``, ``"InputLayer"`` -> ``"input_layer"``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _container_names(class_names) -> list[str]:
    """Keras's ``_get_unique_name`` over a container: ``dense``, ``dense_1``, ... counted per class."""
    used: dict[str, int] = {}
    names = []
    for class_name in class_names:
        name = _snake_case(class_name)
        if name in used:
            used[name] += 1
            names.append(f"{name}_{used[name]}")
        else:
            used[name] = 0
            names.append(name)
    return names


def _model_kind(model) -> str:
    from gdcore.models import Model, Sequential

    if isinstance(model, Sequential):
        return "Sequential"
    if isinstance(model, Model):
        return "Functional"
    raise TypeError(f"expected a gdcore Model or Sequential, got {type(model).__name__}")


# --- gdcore -> Keras: the config ---------------------------------------------------------------------


class _Sharing:
    """Keras's ``shared_object_id``: every serialization of an object after its first one carries ``id(object)``."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._seen: set[int] = set()

    def mark(self, obj, config: dict) -> dict:
        if self.enabled:
            if id(obj) in self._seen:
                config["shared_object_id"] = id(obj)
            self._seen.add(id(obj))
        return config


def _dtype_policy(model, sharing: _Sharing) -> dict:
    # A gdcore model has one dtype for every layer: Keras's global DTypePolicy object, shared.
    config = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": model.dtype.name},
              "registered_name": None}
    return sharing.mark(model.dtype, config)


def _initializer_config(initializer, sharing: _Sharing):
    if initializer is None:
        return None
    config = {"module": "keras.initializers", "class_name": type(initializer).__name__,
              "config": _json_ready(initializer.get_config()), "registered_name": None}
    return sharing.mark(initializer, config)


def _regularizer_config(regularizer, sharing: _Sharing):
    if regularizer is None:
        return None
    return sharing.mark(regularizer, regularizers.serialize(regularizer))


def _constraint_config(constraint, sharing: _Sharing):
    if constraint is None:
        return None
    return sharing.mark(constraint, constraints.serialize(constraint))


def _json_ready(value):
    """NumPy scalars as Python numbers, tuples kept (Keras's get_config keeps tuples; JSON writes them as lists)."""
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_json_ready(item) for item in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _input_dtype(model) -> str:
    layer = model._input_layer
    dtype = getattr(layer, "dtype", None) if layer is not None else None
    return model.dtype.name if dtype is None else np.dtype(dtype).name


def _input_name(model) -> str:
    # A Sequential built from a shape gets an InputLayer from Keras (auto-named); gdcore names it "input_layer".
    return model._input_layer.name if model._input_layer is not None else "input_layer"


def _input_layer_config(model) -> dict:
    return {"module": "keras.layers", "class_name": "InputLayer",
            "config": {"batch_shape": (model._batch_dim, *model.input_shape), "dtype": _input_dtype(model), "sparse": False,
                       "ragged": False, "name": _input_name(model), "optional": False},
            "registered_name": None}


def _dense_config(model, layer, sharing: _Sharing) -> dict:
    if layer.activation_layer is not None:
        raise ValueError(f"Dense layer {layer.name!r} has activation={layer.activation_layer!r}, a layer: gdcore does not "
                         "write such an activation in Keras's format yet; put the activation layer after the Dense "
                         "layer instead (the same model)")
    config = {"name": layer.name, "trainable": layer.trainable, "dtype": _dtype_policy(model, sharing)}
    if layer.activity_regularizer is not None:  # Layer.get_config writes it after the dtype, only when there is one
        config["activity_regularizer"] = _regularizer_config(layer.activity_regularizer, sharing)
    config.update({"units": layer.units, "activation": layer.activation.name, "use_bias": layer.use_bias,
                   "kernel_initializer": _initializer_config(layer.kernel_initializer, sharing),
                   "bias_initializer": _initializer_config(layer.bias_initializer, sharing),
                   "kernel_regularizer": _regularizer_config(layer.kernel_regularizer, sharing),
                   "bias_regularizer": _regularizer_config(layer.bias_regularizer, sharing),
                   "kernel_constraint": _constraint_config(layer.kernel_constraint, sharing),
                   "bias_constraint": _constraint_config(layer.bias_constraint, sharing), "quantization_config": None})
    entry = {"module": "keras.layers", "class_name": "Dense", "config": config, "registered_name": None}
    if layer.input_dim is not None and model.built:
        entry["build_config"] = {"input_shape": (model._batch_dim, layer.input_dim)}
    return entry


def _activation_layer_config(model, layer, sharing: _Sharing) -> dict:
    """An activation layer's entry as Keras 3 writes it: its options in its ``get_config``'s order, no build config
    (ELU's ``alpha`` comes from Layer's constructor arguments, before ``trainable``)."""
    config = {"name": layer.name}
    if type(layer).__name__ == "ELU":
        config["alpha"] = layer.alpha
    config.update({"trainable": layer.trainable, "dtype": _dtype_policy(model, sharing)})
    config.update({key: value for key, value in layer.get_config().items()
                   if key not in ("name", "trainable", "alpha")})
    return {"module": "keras.layers", "class_name": type(layer).__name__, "config": config, "registered_name": None}


def _layer_config(model, layer, sharing: _Sharing) -> dict:
    from gdcore.layers import ActivationLayer

    if isinstance(layer, ActivationLayer):
        return _activation_layer_config(model, layer, sharing)
    return _dense_config(model, layer, sharing)


def _output_units(model, layer) -> int:
    """The units of the Dense layer whose output ``layer`` produces (itself, or the one it is folded into)."""
    return getattr(layer, "units", None) or next(dense.units for dense in model.dense_layers if dense.folded is layer)


def _keras_tensor(shape, dtype: str, source: str) -> dict:
    return {"class_name": "__keras_tensor__",
            "config": {"shape": shape, "dtype": dtype, "keras_history": [source, 0, 0]}}


def _inner_config(model, sharing: _Sharing) -> dict:
    kind = _model_kind(model)
    if kind == "Sequential":
        layers = [_input_layer_config(model)] if model.input_shape is not None else []
        layers += [_layer_config(model, layer, sharing) for layer in model.layers]
        # Sequential.get_config serializes the layers first, then its own dtype (the policy's later occurrence).
        config = {"name": model.name, "trainable": True, "dtype": _dtype_policy(model, sharing), "layers": layers}
        if model.input_shape is not None:
            config["build_input_shape"] = (model._batch_dim, *model.input_shape)
        return config
    source, shape, dtype = _input_name(model), (model._batch_dim, *model.input_shape), _input_dtype(model)
    layers = [{**_input_layer_config(model), "name": source, "inbound_nodes": []}]
    chain = model.layers[1:]
    for layer in chain:
        node = {"args": [_keras_tensor(shape, dtype, source)], "kwargs": {}}
        layers.append({**_layer_config(model, layer, sharing), "name": layer.name, "inbound_nodes": [node]})
        source, shape, dtype = layer.name, (model._batch_dim, _output_units(model, layer)), model.dtype.name
    return {"name": model.name, "trainable": True, "layers": layers, "input_layers": [_input_name(model), 0, 0],
            "output_layers": [chain[-1].name, 0, 0]}


def _keras_float(value, dtype) -> float:
    """A hyperparameter as Keras reports it from a variable of ``dtype`` (float32: 0.001 -> 0.0010000000474974513)."""
    return float(np.dtype(dtype).type(value))


def _optimizer_config(model) -> dict:
    optimizer = model.optimizer
    try:
        own = optimizer.keras_config()
    except ValueError as error:
        raise ValueError(f"model {model.name!r} cannot be written in Keras's format: {error}") from None
    if not isinstance(own["learning_rate"], float):
        raise ValueError(f"model {model.name!r} cannot be written in Keras's format: its learning rate is a "
                         f"{type(own['learning_rate']).__name__}; gdcore writes only a constant learning rate")
    own = {key: (float(value) if isinstance(value, np.floating) else value) for key, value in own.items()}
    learning_rate = _keras_float(own.pop("learning_rate"), model.dtype)
    config = {"name": _snake_case(type(optimizer).__name__), "learning_rate": learning_rate, **_OPTIMIZER_BASE_DEFAULTS,
              **own, **_OPTIMIZER_EXTRAS.get(optimizer.rule.keras, {})}
    return {"module": "keras.optimizers", "class_name": type(optimizer).__name__, "config": config,
            "registered_name": None}


def _compile_config(model) -> dict:
    if not model.compiled or model.optimizer is None or model.loss is None:
        return {}
    from gdcore import metrics

    entries = [(metrics.keras_config(metric, model.dtype), weighted)
               for (_, metric), weighted in zip(model._metrics, model._metric_weighted)]
    return {"optimizer": _optimizer_config(model), "loss": _loss_config(model.loss), **_COMPILE_DEFAULTS,
            "metrics": [entry for entry, weighted in entries if not weighted] or None,
            "weighted_metrics": [entry for entry, weighted in entries if weighted] or None, "jit_compile": False}


def _loss_config(loss):
    """A loss as Keras's ``compile_config`` holds it: the name, or the serialized object when it has options."""
    if not (loss.from_logits or loss.label_smoothing or loss.reduction != "sum_over_batch_size" or loss.config_name):
        return loss.name
    # Keras 3's Loss.get_config: the name and the reduction (a loss's dtype is not written, nor read back by Keras)
    if loss.targets == "values":
        return {"module": "keras.losses", "class_name": loss.keras,
                "config": {"name": loss.keras_name, "reduction": loss.reduction}, "registered_name": None}
    config = {"name": loss.keras_name, "reduction": loss.reduction, "from_logits": loss.from_logits}
    if loss.targets != "sparse":
        config.update({"label_smoothing": loss.label_smoothing, "axis": -1})
    return {"module": "keras.losses", "class_name": loss.keras, "config": config, "registered_name": None}


def _serialized_model(model) -> dict:
    """``serialize_keras_object(model)`` as Keras writes it into ``config.json``."""
    sharing = _Sharing(enabled=True)
    kind = _model_kind(model)
    if kind == "Sequential":
        entry = {"module": "keras", "class_name": "Sequential", "config": _inner_config(model, sharing),
                 "registered_name": None}
        if model.built:
            entry["build_config"] = {"input_shape": (model._batch_dim, *model.input_shape)}
    else:
        entry = {"module": "keras.src.models.functional", "class_name": "Functional",
                 "config": _inner_config(model, sharing), "registered_name": "Functional",
                 "build_config": {"input_shape": None}}
    entry["compile_config"] = _compile_config(model)
    return entry


def model_config(model) -> dict:
    """Keras's ``model.get_config()`` for the same model: the layers and their settings (no sharing ids)."""
    return _inner_config(model, _Sharing(enabled=False))


# --- gdcore -> Keras: the variables ------------------------------------------------------------------


def _weight_tensors(model) -> list[tuple[int, int, tuple]]:
    """``(start, stop, shape)`` of each trainable weight tensor in the flat parameter array, Keras's order (the
    variables Keras's optimizer builds its slots for)."""
    return [(start, start + int(np.prod(shape)), shape) for layer, _, start, shape in
            _contract.weight_tensors(model.layout) if model.dense_layers[layer].trainable]


def _slot_variables(model) -> list[tuple[str, int, int, tuple]]:
    """``(slot, start, stop, shape)`` of each slot variable after iterations and learning rate, Keras's order.

    One ``add_optimizer_variables`` call per group of :data:`KERAS_SLOT_GROUPS`
    (slots the configuration does not use are not created), each looping over
    the weight tensors and, within a tensor, over the group's slots.
    """
    rule = model.optimizer.rule
    groups = KERAS_SLOT_GROUPS.get(rule.keras)
    if groups is None or sorted(name for group in groups for name in group) != sorted(rule.keras_slots):
        raise ValueError(f"optimizer {rule.keras}: its slots {rule.keras_slots} have no Keras variable layout in "
                         "gdcore.saving.KERAS_SLOT_GROUPS")
    slot_of = dict(zip(rule.keras_slots, rule.slots))
    active = set(model.optimizer.active_slots())
    # With use_ema, Keras's base optimizer adds the moving averages before the rule's own slots.
    averages = [(_AVERAGE, start, stop, shape) for start, stop, shape in _weight_tensors(model)
                if model.optimizer.use_ema]
    return averages + [(slot_of[name], start, stop, shape) for group in groups
                       for start, stop, shape in _weight_tensors(model) for name in group if slot_of[name] in active]


_AVERAGE = "moving_average"  # the slots' last row (gdcore.optimizers: use_ema)


def _slot_rows(optimizer) -> dict[str, int]:
    """Each slot's row in ``optimizer.slots``."""
    return {slot: position for position, slot in enumerate(optimizer.rule.slots)} | {_AVERAGE: len(optimizer.rule.slots)}


def _optimizer_variables(model) -> list[np.ndarray]:
    """``optimizer.variables`` of the Keras twin: iterations, learning rate, then the slots (module docstring)."""
    optimizer = model.optimizer
    variables = [np.asarray(np.int64(optimizer.iterations)), np.asarray(model.dtype.type(optimizer.learning_rate))]
    if optimizer.slots is None or not model.built:
        return variables
    row = _slot_rows(optimizer)
    for slot, start, stop, shape in _slot_variables(model):
        variables.append(np.ascontiguousarray(optimizer.slots[row[slot], start:stop].reshape(shape)))
    return variables


def _layer_entries(model) -> list[tuple[str, str, list[np.ndarray]]]:
    """``(h5 path, name attribute, arrays)`` for each layer in Keras's ``model.layers``."""
    layers = model.layers
    paths = _container_names(type(layer).__name__ for layer in layers)
    entries = []
    for path, layer in zip(paths, layers):
        arrays = [np.ascontiguousarray(array) for array in getattr(layer, "weights", [])]
        entries.append((f"layers/{path}", layer.name, arrays))
    return entries


def _write_weights(model, target) -> None:
    """The HDF5 file Keras's ``_save_state`` writes, created in the same order, into ``target`` (a path or BytesIO)."""
    with h5py.File(target, mode="w") as store:
        store.create_group("vars").attrs["name"] = model.name
        for path, name, arrays in _layer_entries(model):
            group = store.create_group(path).create_group("vars")
            group.attrs["name"] = name
            for index, array in enumerate(arrays):
                group[str(index)] = array
        if model.compiled and model.optimizer is not None:
            group = store.create_group("optimizer").create_group("vars")
            group.attrs["name"] = _snake_case(model.optimizer.rule.keras)
            for index, array in enumerate(_optimizer_variables(model)):
                group[str(index)] = array


def _weights_h5(model) -> bytes:
    """The weights file as bytes; HDF5 lays out a file in memory (a ``.keras`` member) unlike one on disk."""
    buffer = io.BytesIO()
    _write_weights(model, buffer)
    return buffer.getvalue()


def _check_target(path: str, overwrite: bool, extension: str, what: str) -> None:
    if not str(path).endswith(extension):
        raise ValueError(f"{what}: the filename must end in `{extension}`, got filepath={path!r}")
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{what}: {path!r} exists and overwrite=False")


def _write(filepath, data: bytes, overwrite: bool, extension: str, what: str) -> None:
    if hasattr(filepath, "write"):
        filepath.write(data)
        return
    path = os.fspath(filepath)
    _check_target(path, overwrite, extension, what)
    with open(path, "wb") as file:
        file.write(data)


def save_model(model, filepath: str | os.PathLike | io.IOBase, overwrite: bool = True, **kwargs) -> None:
    """Write ``model`` to a Keras ``.keras`` archive: config, weights and (compiled) optimizer state.

    Keras's ``model.save``: ``filepath`` ends in ``.keras`` (or is a binary
    file object); ``overwrite=False`` refuses an existing file (Keras would
    ask on the terminal). ``zipped`` and ``include_optimizer`` take Keras's
    defaults only.
    """
    for setting, allowed in (("zipped", (None, True)), ("include_optimizer", (True,))):
        if setting in kwargs and kwargs.pop(setting) not in allowed:
            raise NotImplementedError(f"save({setting}=...) other than {allowed[-1]} is not supported")
    if kwargs:
        raise TypeError(f"save got unsupported arguments {sorted(kwargs)}")
    _model_kind(model)
    if not model.built:
        warnings.warn("You are saving a model that has not yet been built. It might not contain any weights yet.",
                      stacklevel=3)
    config_json = json.dumps(_serialized_model(model))
    metadata_json = json.dumps({"keras_version": KERAS_VERSION,
                                "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")})
    weights = _weights_h5(model)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:  # the calls Keras makes, so the members' headers are Keras's
        with zf.open(METADATA_MEMBER, "w") as member:
            member.write(metadata_json.encode())
        with zf.open(CONFIG_MEMBER, "w") as member:
            member.write(config_json.encode())
        zf.writestr(WEIGHTS_MEMBER, weights)
    _write(filepath, archive.getvalue(), overwrite, ".keras", "save")


def save_weights(model, filepath: str | os.PathLike | io.IOBase, overwrite: bool = True) -> None:
    """Write the weights (and a compiled model's optimizer state) to a Keras ``.weights.h5`` file.

    As Keras does, h5py writes the file on disk itself (the bytes differ from
    an HDF5 file built in memory); here into a temporary file beside it, renamed
    once complete.
    """
    _model_kind(model)
    if not model.built:
        raise ValueError("save_weights: the model is not built yet; give it an Input(shape=...) or call fit first")
    if hasattr(filepath, "write"):
        filepath.write(_weights_h5(model))
        return
    path = os.fspath(filepath)
    _check_target(path, overwrite, ".weights.h5", "save_weights")
    partial = f"{path}.partial"
    try:
        _write_weights(model, partial)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


# --- Keras -> gdcore: reading ------------------------------------------------------------------------


def _display(filepath) -> str:
    return repr(os.fspath(filepath)) if not hasattr(filepath, "read") else repr(getattr(filepath, "name", filepath))


class _Variables:
    """The ``<path>/vars`` groups of a Keras HDF5 weights file, read with Keras's safety checks."""

    def __init__(self, data: bytes, where: str):
        self.where = where
        try:
            self.file = h5py.File(io.BytesIO(data), mode="r")
        except OSError as error:
            raise _Unreadable(f"{where} is not an HDF5 file ({error})") from None

    def close(self):
        self.file.close()

    def _child(self, parent, name: str, kind, path: str):
        link = parent.get(name, getlink=True)
        if link is None:
            return None
        if not isinstance(link, h5py.HardLink):
            raise _Unreadable(f"{self.where}: {path!r} is a {type(link).__name__}; Keras refuses linked objects")
        child = parent[name]
        if not isinstance(child, kind):
            raise _Unreadable(f"{self.where}: {path!r} is a {type(child).__name__}, expected an HDF5 {kind.__name__}")
        return child

    def keys(self, path: str = "") -> list[str]:
        group = self.file if not path else self._group(path)
        return [] if group is None else list(group.keys())

    def _group(self, path: str):
        group = self.file
        for part in path.split("/"):
            group = self._child(group, part, h5py.Group, path)
            if group is None:
                return None
        return group

    def get(self, path: str) -> dict[str, np.ndarray] | None:
        """The datasets of ``<path>/vars`` by name (``"0"``, ``"1"``, ...), or None if the group is missing."""
        vars_path = f"{path}/vars" if path else "vars"
        group = self._group(vars_path)
        if group is None:
            return None
        arrays = {}
        for name in group.keys():
            dataset = self._child(group, name, h5py.Dataset, f"{vars_path}/{name}")
            if dataset.external or dataset.is_virtual:
                raise _Unreadable(f"{self.where}: {vars_path}/{name} is an external or virtual dataset; Keras "
                                  "refuses it")
            try:
                arrays[name] = np.asarray(dataset[()])
            except OSError as error:
                raise _Unreadable(f"{self.where}: {vars_path}/{name} cannot be read ({error})") from None
        expected = [str(index) for index in range(len(arrays))]
        if sorted(arrays, key=lambda key: (len(key), key)) != expected:
            raise _Unreadable(f"{self.where}: {vars_path} holds datasets {sorted(arrays)}; Keras numbers them "
                              f"{expected}")
        return arrays


class _Archive:
    """A ``.keras`` zip archive, opened for reading: its config and its weights file."""

    def __init__(self, filepath):
        self.where = _display(filepath)
        try:
            if hasattr(filepath, "read"):
                data = filepath.read()
            else:
                with open(filepath, "rb") as file:
                    data = file.read()
            self.zip = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile as error:
            raise _Unreadable(f"{self.where} is not a .keras file: not a zip archive ({error})") from None

    def read(self, member: str) -> bytes:
        names = self.zip.namelist()
        if member not in names:
            alternative = " (weights in NumPy's .npz format are not supported)" if "model.weights.npz" in names else ""
            raise _Unreadable(f"{self.where} has no {member}: its members are {names}{alternative}; a .keras file "
                              f"holds {METADATA_MEMBER}, {CONFIG_MEMBER} and {WEIGHTS_MEMBER}")
        info = self.zip.getinfo(member)
        # Keras's _reject_zip_bomb: a member that declares far more than it stores is refused before it is read.
        if info.file_size > 1 << 32 and info.file_size > 100 * info.compress_size:
            raise _Unreadable(f"{self.where}: member {member} declares {info.file_size} bytes but stores "
                              f"{info.compress_size}; refusing a potential decompression bomb")
        try:
            return self.zip.read(member)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
            raise _Unreadable(f"{self.where}: member {member} is damaged or truncated ({error})") from None

    def config(self) -> dict:
        try:
            config = json.loads(self.read(CONFIG_MEMBER))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise _Unreadable(f"{self.where}: {CONFIG_MEMBER} is not valid JSON ({error})") from None
        if not isinstance(config, dict):
            raise _Unreadable(f"{self.where}: {CONFIG_MEMBER} holds a {type(config).__name__}, not a model config")
        return config

    def variables(self) -> _Variables:
        return _Variables(self.read(WEIGHTS_MEMBER), f"{self.where} ({WEIGHTS_MEMBER})")


def _model_options(kwargs: dict, what: str) -> dict:
    options = {key: kwargs.pop(key) for key in ("numerics", "engine", "seed") if key in kwargs}
    if kwargs.pop("custom_objects", None):
        raise NotImplementedError(f"{what}(custom_objects=...): gdcore has no custom objects to load")
    safe_mode = kwargs.pop("safe_mode", True)
    if not isinstance(safe_mode, (bool, np.bool_)):
        raise TypeError(f"safe_mode must be True or False, got {safe_mode!r}")
    if kwargs:
        raise TypeError(f"{what} got unsupported arguments {sorted(kwargs)}; gdcore's own are numerics, engine, seed")
    return options


class _Spec:
    """What a file says about one Dense layer, checked."""

    def __init__(self, name, units, activation, kernel_initializer, bias_initializer, dtype, n_in, use_bias=True,
                 trainable=True, options=None):
        self.name, self.units, self.activation = name, units, activation
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        self.dtype, self.n_in, self.use_bias, self.trainable = dtype, n_in, use_bias, trainable
        self.options = options or {}  # the regularizers and constraints, by Dense's argument names

    def layer(self):
        from gdcore.layers import Dense

        return Dense(self.units, activation=self.activation, use_bias=self.use_bias, trainable=self.trainable,
                     kernel_initializer=self.kernel_initializer, bias_initializer=self.bias_initializer,
                     name=self.name, **self.options)


class _ActivationSpec:
    """What a file says about one activation layer (``ReLU``, ``LeakyReLU``, ``ELU``, ``Activation``), checked."""

    units = n_in = None

    def __init__(self, class_name, name, dtype, trainable, options):
        self.class_name, self.name, self.dtype, self.trainable, self.options = class_name, name, dtype, trainable, options

    def layer(self):
        from gdcore import layers

        return getattr(layers, self.class_name)(name=self.name, trainable=self.trainable, **self.options)


# Keras's activation layers gdcore folds into the Dense layer before them, with their options (get_config's keys).
_ACTIVATION_LAYERS = {"ReLU": ("max_value", "negative_slope", "threshold"), "LeakyReLU": ("negative_slope",),
                      "ELU": ("alpha",), "Activation": ("activation",)}


def _require(condition: bool, where: str, message: str) -> None:
    if not condition:
        raise ValueError(f"{where}: {message}")


def _entry(entry, where: str, what: str) -> tuple[str, dict]:
    """``(class_name, config)`` of a serialized object."""
    _require(isinstance(entry, dict) and isinstance(entry.get("class_name"), str) and
             isinstance(entry.get("config"), dict), where, f"{what} is not a serialized Keras object: {entry!r}")
    return entry["class_name"], entry["config"]


def _policy_dtype(policy, where: str, what: str) -> str:
    if isinstance(policy, dict):
        class_name, config = _entry(policy, where, f"{what}'s dtype policy")
        _require(class_name in ("DTypePolicy", "FloatDTypePolicy"), where,
                 f"{what} has dtype policy {class_name}; gdcore supports DTypePolicy float32 or float64")
        policy = config.get("name")
    _require(policy in _DTYPES, where, f"{what} has dtype policy {policy!r}; gdcore computes in float32 or float64, "
             "one dtype for every layer")
    return policy


def _unknown_keys(config: dict, known, where: str, what: str) -> None:
    unknown = sorted(set(config) - set(known))
    _require(not unknown, where, f"{what} has settings gdcore does not know: {unknown}")


def _input_spec(entry, where: str) -> tuple[str, int, str, int | None]:
    """``(name, n_features, dtype, batch_size)`` of an InputLayer entry."""
    _, config = _entry(entry, where, "InputLayer")
    _unknown_keys(config, ("batch_shape", "batch_input_shape", "dtype", "sparse", "ragged", "name", "optional"),
                  where, f"InputLayer {config.get('name')!r}")
    shape = config.get("batch_shape", config.get("batch_input_shape"))
    _require(isinstance(shape, list) and len(shape) == 2 and isinstance(shape[1], int) and shape[1] > 0 and
             (shape[0] is None or isinstance(shape[0], int) and not isinstance(shape[0], bool) and shape[0] > 0), where,
             f"InputLayer {config.get('name')!r} has batch_shape {shape!r}; gdcore takes (batch_size or None, "
             "n_features)")
    for setting in ("sparse", "ragged", "optional"):
        _require(not config.get(setting, False), where,
                 f"InputLayer {config.get('name')!r} has {setting}=True; gdcore supports dense inputs only")
    dtype = config.get("dtype") or "float32"
    _require(dtype in _DTYPES, where, f"InputLayer {config.get('name')!r} has dtype {dtype!r}; gdcore takes "
             "float32 or float64 inputs")
    return config.get("name"), shape[1], dtype, shape[0]


def _initializer(value, where: str, what: str):
    try:
        if isinstance(value, dict):
            class_name, config = _entry(value, where, what)
            return initializers.get({"class_name": class_name, "config": config})
        return initializers.get(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: {what} {value!r} is not supported: {error}") from None


def _layer_option(table, value, where: str, what: str):
    """A regularizer or constraint (``table``: :mod:`gdcore.regularizers` or :mod:`gdcore.constraints`) from its entry."""
    try:
        if isinstance(value, dict):
            class_name, config = _entry(value, where, what)
            return table.deserialize({"class_name": class_name, "config": config}, what)
        return table.get(value, what)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: {what} {value!r} is not supported: {error}") from None


def _activation_spec(class_name: str, config: dict, where: str) -> _ActivationSpec:
    name = config.get("name")
    options = _ACTIVATION_LAYERS[class_name]
    _unknown_keys(config, ("name", "trainable", "dtype", *options), where, f"{class_name} layer {name!r}")
    _require(isinstance(name, str), where, f"a {class_name} layer has name {name!r}")
    trainable = config.get("trainable", True)
    _require(isinstance(trainable, bool), where, f"{class_name} layer {name!r} has trainable={trainable!r}")
    dtype = _policy_dtype(config.get("dtype", "float32"), where, f"{class_name} layer {name!r}")
    spec = _ActivationSpec(class_name, name, dtype, trainable, {key: config[key] for key in options if key in config})
    try:
        spec.layer()  # the layer's own checks: Keras's ValueErrors, gdcore's NotImplementedErrors
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: {class_name} layer {name!r}: {error}") from None
    return spec


def _layer_spec(entry, where: str):
    """A Dense layer's or an activation layer's spec from its entry."""
    class_name, config = _entry(entry, where, "a layer")
    if class_name in _ACTIVATION_LAYERS:
        return _activation_spec(class_name, config, where)
    return _dense_spec(entry, where)


def _dense_spec(entry, where: str) -> _Spec:
    class_name, config = _entry(entry, where, "a layer")
    name = config.get("name")
    _require(class_name == "Dense", where, f"layer {name!r} is a {class_name}; gdcore loads Dense layers and the "
             f"activation layers {', '.join(_ACTIVATION_LAYERS)} (after an InputLayer) only")
    known = ("name", "trainable", "dtype", "units", "activation", "use_bias", "kernel_initializer", "bias_initializer",
             "kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint", "bias_constraint",
             *_DENSE_UNSUPPORTED)
    _unknown_keys(config, known, where, f"Dense layer {name!r}")
    _require(isinstance(name, str), where, f"a Dense layer has name {name!r}")
    for setting in _DENSE_UNSUPPORTED:
        _require(not config.get(setting), where, f"Dense layer {name!r} has {setting}={config.get(setting)!r}; "
                 f"gdcore has no {setting}")
    trainable = config.get("trainable", True)
    _require(isinstance(trainable, bool), where, f"Dense layer {name!r} has trainable={trainable!r}")
    use_bias = config.get("use_bias", True)
    _require(isinstance(use_bias, bool), where, f"Dense layer {name!r} has use_bias={use_bias!r}")
    units = config.get("units")
    _require(isinstance(units, int) and not isinstance(units, bool) and units > 0, where,
             f"Dense layer {name!r} has units={units!r}")
    activation = config.get("activation", "linear")
    _require(isinstance(activation, str) or activation is None, where,
             f"Dense layer {name!r} has activation {activation!r}; gdcore supports "
             f"{', '.join(activations.BY_NAME)}")
    try:
        activation = activations.get(activation).name
    except ValueError as error:
        raise ValueError(f"{where}: Dense layer {name!r}: {error}") from None
    kernel = _initializer(config.get("kernel_initializer", "glorot_uniform"), where,
                          f"layer {name!r}'s kernel_initializer")
    bias = _initializer(config.get("bias_initializer", "zeros"), where, f"layer {name!r}'s bias_initializer")
    options = {setting: _layer_option(regularizers, config.get(setting), where, f"layer {name!r}'s {setting}")
               for setting in ("kernel_regularizer", "bias_regularizer", "activity_regularizer")}
    options.update({setting: _layer_option(constraints, config.get(setting), where, f"layer {name!r}'s {setting}")
                    for setting in ("kernel_constraint", "bias_constraint")})
    dtype = _policy_dtype(config.get("dtype", "float32"), where, f"Dense layer {name!r}")
    build = entry.get("build_config") or {}
    input_shape = build.get("input_shape") if isinstance(build, dict) else None
    n_in = input_shape[-1] if isinstance(input_shape, list) and input_shape else None
    return _Spec(name, units, activation, kernel, bias, dtype, n_in, use_bias, trainable, options)


def _tensor_source(tensor, where: str, layer: str) -> str:
    class_name, config = _entry(tensor, where, f"layer {layer!r}'s input")
    history = config.get("keras_history")
    _require(class_name == "__keras_tensor__" and isinstance(history, list) and len(history) == 3 and
             history[2] == 0, where, f"layer {layer!r}'s input {tensor!r} is not a Keras tensor of this model")
    return history[0]


def _single_tensor_ref(value, where: str, what: str) -> str:
    while isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        value = value[0]
    if isinstance(value, dict) and len(value) == 1:
        value = next(iter(value.values()))
    _require(isinstance(value, list) and len(value) == 3 and isinstance(value[0], str), where,
             f"{what} is {value!r}; gdcore supports one input and one output")
    return value[0]


def _functional_chain(config: dict, where: str) -> tuple[tuple, list[_Spec]]:
    _unknown_keys(config, ("name", "trainable", "layers", "input_layers", "output_layers"), where, "the model config")
    entries = config.get("layers")
    _require(isinstance(entries, list) and entries, where, "the functional model lists no layers")
    by_name = {}
    for entry in entries:
        _entry(entry, where, "a layer")
        name = entry.get("name", entry["config"].get("name"))
        _require(isinstance(name, str) and name not in by_name, where, f"layer name {name!r} is missing or repeated")
        by_name[name] = entry
    input_name = _single_tensor_ref(config.get("input_layers"), where, "input_layers")
    output_name = _single_tensor_ref(config.get("output_layers"), where, "output_layers")
    _require(input_name in by_name and by_name[input_name]["class_name"] == "InputLayer", where,
             f"the model's input {input_name!r} is not an InputLayer of the file")
    chain, name = [], output_name
    while name != input_name:
        _require(name in by_name, where, f"layer {name!r} is used but not defined")
        entry = by_name[name]
        _require(name not in [spec.name for spec in chain], where, f"layer {name!r} appears twice on the path")
        spec = _layer_spec(entry, where)
        nodes = entry.get("inbound_nodes")
        _require(isinstance(nodes, list) and len(nodes) == 1, where,
                 f"layer {name!r} is called {len(nodes) if isinstance(nodes, list) else nodes!r} times in the model; "
                 "gdcore models are a chain with each layer called once")
        node = nodes[0]
        _require(isinstance(node, dict) and isinstance(node.get("args"), list) and len(node["args"]) == 1 and
                 not node.get("kwargs"), where, f"layer {name!r} has inbound node {node!r}; gdcore supports one "
                 "tensor argument and no keyword arguments")
        chain.append(spec)
        name = _tensor_source(node["args"][0], where, spec.name)
    unused = sorted(set(by_name) - {input_name} - {spec.name for spec in chain})
    _require(not unused, where, f"layers {unused} are not on the path from the input to the output; gdcore models "
             "are a single chain")
    _require(bool(chain), where, "the model has no layer between its input and its output")
    return _input_spec(by_name[input_name], where), chain[::-1]


def _sequential_chain(config: dict, where: str) -> tuple[tuple | None, list[_Spec]]:
    _unknown_keys(config, ("name", "trainable", "dtype", "layers", "build_input_shape"), where, "the model config")
    entries = config.get("layers")
    _require(isinstance(entries, list), where, "the Sequential model has no list of layers")
    inputs = None
    if entries and isinstance(entries[0], dict) and entries[0].get("class_name") == "InputLayer":
        inputs, entries = _input_spec(entries[0], where), entries[1:]
    shape = config.get("build_input_shape")
    if inputs is None and isinstance(shape, list) and len(shape) == 2 and isinstance(shape[1], int):
        inputs = ("input_layer", shape[1], None, shape[0] if isinstance(shape[0], int) else None)
    return inputs, [_layer_spec(entry, where) for entry in entries]


def _build_model(config: dict, options: dict, where: str):
    """A gdcore model from a ``config.json``: names, dtype, layers, initializers; weights not yet loaded."""
    from gdcore.layers import Input
    from gdcore.models import Model, Sequential

    class_name, inner = _entry(config, where, CONFIG_MEMBER)
    _unknown_keys(config, ("module", "class_name", "config", "registered_name", "build_config", "compile_config"),
                  where, "the serialized model")
    module = config.get("module")
    if class_name == "Sequential" and module in ("keras", "keras.models", "keras.src.models.sequential"):
        inputs, specs = _sequential_chain(inner, where)
    elif class_name in ("Functional", "Model") and module in ("keras.src.models.functional", "keras",
                                                              "keras.models", "keras.src.models.model"):
        inputs, specs = _functional_chain(inner, where)
    else:
        raise ValueError(f"{where}: the model is a {module}.{class_name}; gdcore loads keras.Sequential and "
                         "functional keras.Model chains of Dense layers")
    _require(inner.get("trainable", True) is True, where, "the model has trainable=False; every gdcore model trains")
    _require(any(spec.units is not None for spec in specs), where, "the model has no Dense layer")
    dtypes = {spec.dtype for spec in specs}
    if class_name == "Sequential" and "dtype" in inner:
        dtypes.add(_policy_dtype(inner["dtype"], where, "the model"))
    _require(len(dtypes) == 1, where, f"the layers use dtype policies {sorted(dtypes)}; gdcore needs one dtype")
    dtype = dtypes.pop()
    n_in = inputs[1] if inputs is not None else specs[0].n_in
    for spec in specs:
        if spec.units is None:  # an activation layer: no weights, its input's width
            continue
        _require(spec.n_in in (None, n_in) or n_in is None, where,
                 f"layer {spec.name!r} was built for {spec.n_in} inputs but gets {n_in}")
        n_in = spec.units
    name = inner.get("name")
    _require(isinstance(name, str), where, f"the model has name {name!r}")
    input_tensor = (Input(shape=(inputs[1],), batch_size=inputs[3], name=inputs[0], dtype=inputs[2])
                    if inputs is not None else None)
    layers = [spec.layer() for spec in specs]
    if class_name == "Sequential":
        return Sequential(([input_tensor] if input_tensor is not None else []) + layers, dtype=dtype, name=name,
                          **options)
    tensor = input_tensor
    for layer in layers:
        tensor = layer(tensor)
    return Model(input_tensor, tensor, name=name, dtype=dtype, **options)


def _check_float(array: np.ndarray, model, exact: bool, where: str, what: str) -> None:
    """A weight or slot array from a file: the model's dtype (``exact``, ``load_model``) or any float, cast as Keras's
    ``assign`` casts (``load_weights``)."""
    _require(array.dtype == model.dtype if exact else array.dtype.kind == "f", where,
             f"{what} is {array.dtype}, the model is {model.dtype}")


def _load_layers(model, variables: _Variables, exact: bool) -> None:
    """Every Dense layer's kernel and bias from ``layers/dense[_k]/vars``, checked against the model (Keras's paths).

    ``exact``: the arrays must have the model's dtype (a ``.keras`` file's
    weights have its dtype policy's); otherwise any float is cast.
    """
    where = variables.where
    top = set(variables.keys()) - {"vars", "layers", "optimizer"}
    _require(not top, where, f"holds groups {sorted(top)} that a Dense model does not write")
    if (own := variables.get("")) is not None:
        _require(not own, where, f"the model's own vars group holds datasets {sorted(own)}; a Dense model has none")
    paths = [f"layers/{path}" for path in _container_names(["Dense"] * len(model.dense_layers))]
    known = set(paths)
    for name in variables.keys("layers"):
        path = f"layers/{name}"
        if path not in known:
            extra = variables.get(path)
            _require(not extra, where, f"holds weights for {path!r}, a layer this model does not have "
                     f"(layers here: {', '.join(layer.name for layer in model.dense_layers)})")
    if not model.built:
        stray = [path for path in paths if variables.get(path)]
        _require(not stray, where, f"holds weights in {stray} but the config describes a model that is not built")
        return
    weights = []
    for path, layer in zip(paths, model.dense_layers):
        arrays = variables.get(path)
        _require(arrays is not None, where, f"has no group {path}/vars for layer {layer.name!r} (a Keras weights "
                 f"file holds one per layer: {', '.join(paths)})")
        targets = layer.weights
        _require(len(arrays) == len(targets), where, f"{path}/vars holds {len(arrays)} arrays for layer "
                 f"{layer.name!r}; this Dense layer has {len(targets)} "
                 f"({'kernel, bias' if layer.use_bias else 'kernel: use_bias=False'})")
        for index, target in enumerate(targets):
            array = arrays[str(index)]
            _require(array.shape == target.shape, where, f"{path}/vars/{index} ({('kernel', 'bias')[index]} of "
                     f"layer {layer.name!r}) has shape {array.shape}, the model expects {target.shape}")
            _check_float(array, model, exact, where, f"{path}/vars/{index} ({('kernel', 'bias')[index]} of layer "
                         f"{layer.name!r})")
            weights.append(array)
    try:
        model.set_weights(weights)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


def _load_optimizer(model, variables: _Variables, strict: bool) -> None:
    """Iterations, learning rate and slots from ``optimizer/vars`` (module docstring).

    ``strict`` (``load_model``): a count that does not fit is an error.
    Otherwise (``load_weights``) Keras's rule: taken only when the model's
    optimizer has exactly as many variables, else a warning.
    """
    where, optimizer = variables.where, model.optimizer
    arrays = variables.get("optimizer")
    if arrays is None:
        _require(not strict, where, "has no optimizer/vars group for the compiled model's optimizer")
        return
    slots = _slot_variables(model) if model.built else []
    if not strict:
        have = 2 + (len(slots) if optimizer.slots is not None else 0)
        if len(arrays) != have:
            warnings.warn(f"Skipping variable loading for optimizer {_snake_case(optimizer.rule.keras)!r}, because it "
                          f"has {have} variables whereas the saved optimizer has {len(arrays)} variables.",
                          stacklevel=4)
            return
    _require(len(arrays) in (2, 2 + len(slots)), where,
             f"optimizer/vars holds {len(arrays)} variables; {type(optimizer).__name__} with this configuration has 2 "
             f"(iterations, learning rate) before its first update and {2 + len(slots)} after")
    iterations, learning_rate = arrays["0"], arrays["1"]
    _require(iterations.shape == () and iterations.dtype.kind in "iu" and int(iterations) >= 0, where,
             f"optimizer/vars/0 (iterations) is {iterations!r}; expected a non-negative integer scalar")
    _require(learning_rate.shape == () and learning_rate.dtype.kind == "f" and np.isfinite(learning_rate) and
             learning_rate > 0, where, f"optimizer/vars/1 (learning rate) is {learning_rate!r}; expected a positive "
             "float scalar")
    has_slots = len(arrays) == 2 + len(slots) and model.built
    _require(has_slots or not slots or int(iterations) == 0, where,
             f"optimizer/vars has no slots but {int(iterations)} iterations")
    # Keras casts its learning-rate variable to the weights' dtype; in float32 the shortest decimal of that value
    # gives gdcore the same constant, as the user wrote it (0.0010000000474974513 -> 0.001).
    value = float(learning_rate)
    optimizer.learning_rate = float(str(np.float32(value))) if model.dtype == np.float32 else value
    if not has_slots:
        optimizer.slots, optimizer.iterations = None, 0
        return
    optimizer.slots = None
    optimizer.build(model.params.size, model.dtype)
    row = _slot_rows(optimizer)
    for position, (slot, start, stop, shape) in enumerate(slots, start=2):
        array = arrays[str(position)]
        _require(array.shape == shape, where, f"optimizer/vars/{position} ({slot}) has shape {array.shape}, "
                 f"expected {shape}")
        _check_float(array, model, strict, where, f"optimizer/vars/{position} ({slot})")
        optimizer.slots[row[slot], start:stop] = array.ravel()
    optimizer.iterations = int(iterations)


def _optimizer_from_config(entry, dtype: str, where: str):
    if isinstance(entry, str):
        try:
            return optimizers.get(entry)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
    class_name, config = _entry(entry, where, "the optimizer")
    classes = {rule.keras: optimizers.OPTIMIZERS[rule.name] for rule in optimizers.RULES} | {"AdamW": optimizers.AdamW}
    _require(class_name in classes and entry.get("module", "keras.optimizers") in ("keras.optimizers", None), where,
             f"optimizer {entry.get('module')}.{class_name} is not supported; gdcore has {', '.join(classes)}")
    cls = classes[class_name]
    own = [key for key in cls(learning_rate=1.0).keras_config() if key != "learning_rate"]  # the base settings too
    extras = _OPTIMIZER_EXTRAS.get(class_name, {})
    _unknown_keys(config, ("name", "learning_rate", *_OPTIMIZER_BASE_DEFAULTS, *own, *extras), where,
                  f"optimizer {class_name}")
    for setting, default in {**_OPTIMIZER_BASE_DEFAULTS, **extras}.items():
        if setting in own:
            continue  # gdcore has it: passed on below
        _require(config.get(setting, default) == default, where,
                 f"optimizer {class_name} has {setting}={config.get(setting)!r}; gdcore supports only {default!r}")
    learning_rate = config.get("learning_rate", 0.001)
    _require(isinstance(learning_rate, (int, float)) and not isinstance(learning_rate, bool), where,
             f"optimizer {class_name} has learning_rate={learning_rate!r}; gdcore needs a constant float "
             "(learning-rate schedules are not supported)")
    if dtype == "float32":
        learning_rate = float(str(np.float32(learning_rate)))
    try:
        return cls(learning_rate=float(learning_rate), **{key: config[key] for key in own if key in config})
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: optimizer {class_name}: {error}") from None


def _loss_from_config(entry, where: str):
    name = entry
    if isinstance(entry, dict):
        class_name = entry.get("class_name")
        config = entry.get("config")
        if class_name == "function" and isinstance(config, str):
            name = config
        elif isinstance(config, dict) and entry.get("module") in ("keras.losses", None):
            _unknown_keys(config, ("name", "reduction", "dtype", "from_logits", "label_smoothing", "axis",
                                   "ignore_class"), where, f"loss {class_name}")
            _require(config.get("axis", -1) == -1 and config.get("ignore_class") is None, where,
                     f"loss {class_name} has axis={config.get('axis')!r}, ignore_class={config.get('ignore_class')!r}; "
                     "gdcore reduces over the last axis and ignores no class")
            reduction = config.get("reduction", "sum_over_batch_size")
            _require((reduction is None or isinstance(reduction, str)) and reduction in losses.REDUCTION_IDS, where,
                     f"loss {class_name} has reduction={reduction!r}; valid: "
                     f"{', '.join(map(repr, losses.REDUCTIONS))}")
            _require(config.get("dtype") in (None, "float32", "float64"), where,
                     f"loss {class_name} has dtype={config.get('dtype')!r}; gdcore computes in float32 or float64")
            name = class_name
            options = {key: config[key] for key in ("from_logits", "label_smoothing") if config.get(key)}
            if reduction != "sum_over_batch_size":
                options["reduction"] = reduction
            known = losses.BY_NAME.get(class_name.lower()) if isinstance(class_name, str) else None
            if known is not None and config.get("name") not in (None, known.keras_name):
                options["name"] = config["name"]
            if config.get("dtype") is not None:
                options["dtype"] = config["dtype"]
            if options:
                constructor = getattr(losses, class_name, None)
                _require(constructor is not None and (class_name.endswith("Crossentropy") or set(options) <=
                                                      {"reduction", "name", "dtype"} and class_name.endswith("Error")),
                         where,
                         f"loss {class_name} with options {options} is not supported")
                try:
                    return constructor(**options)
                except (TypeError, ValueError) as error:
                    raise ValueError(f"{where}: loss {class_name}: {error}") from None
        else:
            raise ValueError(f"{where}: loss {entry!r} is not supported; supported: "
                             f"{', '.join(sorted(losses.BY_NAME))}")
    _require(name is not None, where, "the model was compiled without a loss; gdcore needs one")
    try:
        return losses.get(name)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: {error}") from None


def _compile_from_config(model, config, where: str) -> None:
    _require(isinstance(config, dict), where, f"compile_config is {config!r}")
    _unknown_keys(config, ("optimizer", "loss", *_COMPILE_DEFAULTS, "jit_compile"), where, "compile_config")
    for setting, default in _COMPILE_DEFAULTS.items():
        value = config.get(setting, default)
        _require(value == default or setting in ("metrics", "weighted_metrics") or
                 (setting == "loss_weights" and not value),
                 where, f"the model was compiled with {setting}={value!r}; gdcore supports only {default!r}")
    optimizer = _optimizer_from_config(config.get("optimizer", "rmsprop"), model.dtype.name, where)
    model.compile(optimizer=optimizer, loss=_loss_from_config(config.get("loss"), where),
                  metrics=_metrics_from_config(config.get("metrics"), where),
                  weighted_metrics=_metrics_from_config(config.get("weighted_metrics"), where))


def _metrics_from_config(entries, where: str):
    from gdcore import metrics

    if not entries:
        return None
    _require(isinstance(entries, list), where, f"compile_config metrics is {entries!r}; gdcore reads a list")
    try:
        return [metrics.from_keras_config(entry) for entry in entries]
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: {error}") from None


def load_model(filepath: str | os.PathLike | io.IOBase, compile: bool = True, **kwargs):
    """A gdcore model from a Keras ``.keras`` file (Keras's or gdcore's): a chain of Dense layers.

    Restores the model's and layers' names, the dtype (from the dtype
    policy), the initializers, the weights and, with ``compile=True``, the
    optimizer (config and state: iterations, learning rate, slots) and the
    loss. ``numerics``, ``engine`` and ``seed`` are passed to the new model
    (not stored in Keras's format). Anything gdcore cannot reproduce is a
    ValueError naming it; a damaged or foreign file is a ValueError naming
    the file and what is wrong.
    """
    options = _model_options(kwargs, "load_model")
    if not hasattr(filepath, "read") and not os.fspath(filepath).endswith(".keras"):
        raise ValueError(f"load_model: expected a `.keras` file, got filepath={os.fspath(filepath)!r} (weights files "
                         "are read by model.load_weights)")
    archive = _Archive(filepath)
    config = archive.config()
    where = f"{archive.where} ({CONFIG_MEMBER})"
    model = _build_model(config, options, where)
    compile_config = config.get("compile_config") if compile else None
    if compile_config:
        _compile_from_config(model, compile_config, where)
    variables = archive.variables()
    try:
        _load_layers(model, variables, exact=True)
        if model.compiled:
            _load_optimizer(model, variables, strict=True)
    finally:
        variables.close()
    return model


def load_weights(model, filepath: str | os.PathLike | io.IOBase, **kwargs) -> None:
    """Load weights (and, as Keras does, a matching optimizer state) from a ``.weights.h5`` or ``.keras`` file.

    Layers are matched by position (``layers/dense``, ``layers/dense_1``,
    ...), as Keras matches them, not by name. The optimizer's variables are
    taken when the compiled model's optimizer has as many as the file (it
    has its slots once it has trained); otherwise they are skipped with
    Keras's warning.
    """
    if kwargs.pop("skip_mismatch", False):
        raise NotImplementedError("load_weights(skip_mismatch=True) is not supported: a mismatch is an error")
    if kwargs:
        raise TypeError(f"load_weights got unsupported arguments {sorted(kwargs)}")
    _model_kind(model)
    if not model.built:
        raise ValueError("load_weights: the model is not built yet; give it an Input(shape=...) or call fit first")
    where = _display(filepath)
    name = os.fspath(filepath) if not hasattr(filepath, "read") else str(getattr(filepath, "name", ""))
    if name.endswith(".keras"):
        variables = _Archive(filepath).variables()
    elif name.endswith(".weights.h5") or hasattr(filepath, "read"):
        if hasattr(filepath, "read"):
            data = filepath.read()
        else:
            with open(filepath, "rb") as file:
                data = file.read()
        variables = _Variables(data, where)
    else:
        raise ValueError(f"load_weights: expected a `.weights.h5` or `.keras` file, got filepath={name!r} "
                         "(Keras 2's legacy .h5 files are not supported)")
    try:
        if "model_weights" in variables.keys() or "layer_names" in variables.file.attrs:
            raise _Unreadable(f"{where} is a Keras 2 (legacy .h5) weights file; gdcore reads Keras 3's .weights.h5")
        _load_layers(model, variables, exact=False)
        if model.compiled and model.optimizer is not None:
            _load_optimizer(model, variables, strict=False)
    finally:
        variables.close()
