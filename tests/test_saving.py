"""``gdcore.saving``: Keras 3's ``.keras`` and ``.weights.h5`` files, both ways, bit for bit.

Three kinds of test:

* round trips inside gdcore: save, load, train on; the loaded model's weights,
  optimizer state and every later update have the bits of a model never saved
  (``shuffle=False``: the generator that shuffles batches is gdcore's own and
  Keras's format has no place for it; pickle and deepcopy keep it);
* live Keras 3 (``tensorflow`` mark), both directions: Keras opens gdcore's
  file and predicts and trains on with the same bits; gdcore opens Keras's
  file, predicts as Keras does (``numerics="tensorflow"``) and writes back the
  same config and the same HDF5 bytes;
* damaged, foreign or unsupported files: a ValueError naming the file and
  what is wrong (or the setting gdcore cannot reproduce).
"""

import copy
import io
import json
import os
import pickle
import zipfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gdcore  # noqa: E402
from gdcore import saving  # noqa: E402
from gdcore.models import load_model  # noqa: E402

KINDS = ("sequential", "functional")
DTYPES = ("float32", "float64")
# Each optimizer with the options that give it the most state to carry.
OPTIMIZERS = {
    "sgd": lambda: gdcore.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    "adam": lambda: gdcore.optimizers.Adam(0.01),
    "rmsprop": lambda: gdcore.optimizers.RMSprop(0.01, momentum=0.5, centered=True),
    "adagrad": lambda: gdcore.optimizers.Adagrad(0.1),
}
EPOCHS, BATCH = 2, 16


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(40, 3))
    return x, (x.sum(axis=1, keepdims=True) ** 2) / 3


def _gdcore_model(kind, dtype, numerics="plain", hidden_activation="tanh"):
    init = gdcore.initializers.RandomNormal(0.0, 0.3, seed=11)
    if kind == "sequential":
        return gdcore.Sequential([gdcore.Input(shape=(3,), name="features"),
                                  gdcore.layers.Dense(5, activation=hidden_activation, kernel_initializer=init),
                                  gdcore.layers.Dense(1, name="out")], dtype=dtype, numerics=numerics, seed=1)
    inputs = gdcore.Input(shape=(3,), name="features")
    hidden = gdcore.layers.Dense(5, activation=hidden_activation, kernel_initializer=init)(inputs)
    return gdcore.Model(inputs, gdcore.layers.Dense(1, name="out")(hidden), name="chain", dtype=dtype,
                        numerics=numerics, seed=1)


def _trained(kind, dtype, optimizer, data, numerics="plain"):
    model = _gdcore_model(kind, dtype, numerics)
    model.compile(optimizer=OPTIMIZERS[optimizer](), loss="mse")
    model.fit(*data, epochs=EPOCHS, batch_size=BATCH, verbose=0, shuffle=False)
    return model


def _same_bits(mine, theirs, what):
    mine, theirs = list(mine), list(theirs)
    assert len(mine) == len(theirs), f"{what}: {len(mine)} arrays vs {len(theirs)}"
    for index, (a, b) in enumerate(zip(mine, theirs)):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape, f"{what}[{index}]: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
        assert a.tobytes() == b.tobytes(), f"{what}[{index}] differs: mine {a.ravel()[:4]} vs theirs {b.ravel()[:4]}"


def _resume_both_ways(keras, original, model, gdcore_file, x, y):
    """Keras resumes from gdcore's file and gdcore from Keras's (``model``): both go on as ``original`` does, to the bit."""
    reopened = keras.models.load_model(gdcore_file)
    for each in (original, reopened):
        each.fit(x, y, epochs=EPOCHS, batch_size=BATCH, verbose=0, shuffle=False)
    model.fit(x, y, epochs=EPOCHS, batch_size=BATCH, verbose=0, shuffle=False)
    _same_bits(reopened.get_weights(), original.get_weights(), "Keras, resumed from gdcore's file")
    _same_bits(model.get_weights(), original.get_weights(), "gdcore, resumed from Keras's file")


def _members(path) -> dict:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _write_members(path, members: dict) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)


def _edited(tmp_path, source, edit_config=None, edit_h5=None, name="edited.keras"):
    """A copy of the ``.keras`` file ``source``, its config and/or HDF5 file changed in place by the edit functions."""
    members = _members(source)
    if edit_config is not None:
        config = json.loads(members["config.json"])
        edit_config(config)
        members["config.json"] = json.dumps(config).encode()
    if edit_h5 is not None:
        buffer = io.BytesIO(members["model.weights.h5"])
        with h5py.File(buffer, "r+") as store:
            edit_h5(store)
        members["model.weights.h5"] = buffer.getvalue()
    path = tmp_path / name
    _write_members(path, members)
    return path


def _without_sharing_ids(value):
    if isinstance(value, dict):
        return {key: _without_sharing_ids(item) for key, item in value.items() if key != "shared_object_id"}
    if isinstance(value, list):
        return [_without_sharing_ids(item) for item in value]
    return value


def _sharing_ids_by_order(value, seen=None):
    """The config with each ``shared_object_id`` (an ``id()``, new every run) replaced by its order of appearance."""
    seen = {} if seen is None else seen
    if isinstance(value, dict):
        return {key: (seen.setdefault(item, len(seen)) if key == "shared_object_id" else
                      _sharing_ids_by_order(item, seen)) for key, item in value.items()}
    if isinstance(value, list):
        return [_sharing_ids_by_order(item, seen) for item in value]
    return value


# --- gdcore -> file -> gdcore ------------------------------------------------------------------------


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_keeps_every_bit_and_training_goes_on_as_if_never_saved(tmp_path, data, kind, dtype, optimizer):
    model = _trained(kind, dtype, optimizer, data)
    model.save(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras")

    assert type(loaded) is type(model) and loaded.name == model.name and loaded.dtype == model.dtype
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert [layer.activation for layer in loaded.dense_layers] == [layer.activation for layer in model.dense_layers]
    assert loaded._input_layer.name == "features"
    assert loaded.get_config() == model.get_config()
    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.loss is model.loss
    assert loaded.optimizer.iterations == model.optimizer.iterations == EPOCHS * 3
    _same_bits(loaded.get_weights(), model.get_weights(), "weights")
    _same_bits(loaded.optimizer.slots[[model.optimizer.rule.slots.index(s) for s in model.optimizer.active_slots()]],
               model.optimizer.slots[[model.optimizer.rule.slots.index(s) for s in model.optimizer.active_slots()]],
               "slots")

    for each in (model, loaded):
        each.fit(*data, epochs=EPOCHS, batch_size=BATCH, verbose=0, shuffle=False)
    _same_bits(loaded.get_weights(), model.get_weights(), "weights after 2 more epochs")
    assert loaded.history.history == model.history.history
    assert loaded.optimizer.iterations == model.optimizer.iterations


@pytest.mark.parametrize("optimizer", [gdcore.optimizers.SGD(0.05), gdcore.optimizers.RMSprop(0.01)],
                         ids=["sgd-no-momentum", "rmsprop-plain"])
def test_optimizers_with_fewer_variables_keep_their_iterations(tmp_path, data, optimizer):
    # Plain SGD has no slot at all: Keras writes iterations and learning rate only, even after training.
    model = _gdcore_model("sequential", "float32")
    model.compile(optimizer=optimizer, loss="mae")
    model.fit(*data, epochs=1, batch_size=BATCH, verbose=0, shuffle=False)
    model.save(tmp_path / "m.keras")
    with h5py.File(io.BytesIO(_members(tmp_path / "m.keras")["model.weights.h5"])) as store:
        assert len(store["optimizer/vars"]) == 2 + 4 * len(optimizer.active_slots())
    loaded = load_model(tmp_path / "m.keras")
    assert loaded.optimizer.iterations == 3 and loaded.loss.name == "mean_absolute_error"
    for each in (model, loaded):
        each.fit(*data, epochs=1, batch_size=BATCH, verbose=0, shuffle=False)
    _same_bits(loaded.get_weights(), model.get_weights(), "weights after one more epoch")


def test_models_not_trained_not_compiled_or_not_built_round_trip(tmp_path, data):
    compiled = _gdcore_model("functional", "float64")
    compiled.compile(optimizer="adam", loss="mse")
    compiled.save(tmp_path / "compiled.keras")
    loaded = load_model(tmp_path / "compiled.keras")
    assert loaded.optimizer.slots is None and loaded.optimizer.iterations == 0
    assert loaded.optimizer.learning_rate == 0.001 and loaded.dtype == np.float64

    plain = _gdcore_model("sequential", "float32")
    plain.save(tmp_path / "plain.keras")
    assert json.loads(_members(tmp_path / "plain.keras")["config.json"])["compile_config"] == {}
    loaded = load_model(tmp_path / "plain.keras")
    assert not loaded.compiled
    _same_bits(loaded.get_weights(), plain.get_weights(), "weights")
    assert not load_model(tmp_path / "compiled.keras", compile=False).compiled

    unbuilt = gdcore.Sequential([gdcore.layers.Dense(2, activation="relu"), gdcore.layers.Dense(1)])
    with pytest.warns(UserWarning, match="not yet been built"):
        unbuilt.save(tmp_path / "unbuilt.keras")
    loaded = load_model(tmp_path / "unbuilt.keras")
    assert not loaded.built and [layer.units for layer in loaded.dense_layers] == [2, 1]
    loaded.compile(optimizer="sgd", loss="mse")
    loaded.fit(*data, epochs=1, verbose=0)  # builds on first fit, as before saving


def test_saving_options_follow_keras(tmp_path, data):
    model = _trained("sequential", "float32", "adam", data)
    with pytest.raises(ValueError, match=r"must end in `\.keras`"):
        model.save(tmp_path / "m.h5")
    model.save(tmp_path / "m.keras")
    with pytest.raises(FileExistsError, match="overwrite=False"):
        model.save(tmp_path / "m.keras", overwrite=False)
    with pytest.raises(NotImplementedError, match="include_optimizer"):
        model.save(tmp_path / "n.keras", include_optimizer=False)
    with pytest.raises(ValueError, match=r"must end in `\.weights\.h5`"):
        model.save_weights(tmp_path / "w.h5")
    buffer = io.BytesIO()
    saving.save_model(model, buffer)  # a file object, as Keras accepts
    buffer.seek(0)
    _same_bits(load_model(buffer).get_weights(), model.get_weights(), "weights through a file object")
    scikit_adam = gdcore.Sequential([gdcore.Input(shape=(3,)), gdcore.layers.Dense(1)])
    scikit_adam.compile(optimizer=gdcore.optimizers.Adam(float32_betas=False), loss="mse")
    with pytest.raises(ValueError, match="float32_betas"):
        scikit_adam.save(tmp_path / "s.keras")


def test_weights_files_round_trip_with_the_optimizer_state_as_keras_loads_it(tmp_path, data):
    model = _trained("sequential", "float64", "adam", data)
    model.save_weights(tmp_path / "w.weights.h5")

    fresh = _gdcore_model("sequential", "float64")
    fresh.compile(optimizer=gdcore.optimizers.Adam(0.01), loss="mse")
    with pytest.warns(UserWarning, match="Skipping variable loading for optimizer"):
        fresh.load_weights(tmp_path / "w.weights.h5")  # its optimizer has no slots yet: Keras skips them too
    _same_bits(fresh.get_weights(), model.get_weights(), "weights")
    assert fresh.optimizer.iterations == 0

    trained = _trained("sequential", "float64", "adam", (data[0][::-1], data[1][::-1]))
    trained.load_weights(tmp_path / "w.weights.h5")
    assert trained.optimizer.iterations == model.optimizer.iterations
    _same_bits(trained.optimizer.slots, model.optimizer.slots, "slots")
    for each in (model, trained):
        each.fit(*data, epochs=1, batch_size=BATCH, verbose=0, shuffle=False)
    _same_bits(trained.get_weights(), model.get_weights(), "weights after one more epoch")

    # A .keras file's weights load too; a float64 file into a float32 model is cast, as Keras's assign casts.
    model.save(tmp_path / "m.keras")
    single = _gdcore_model("sequential", "float32")
    single.load_weights(tmp_path / "m.keras")
    _same_bits(single.get_weights(), [w.astype(np.float32) for w in model.get_weights()], "cast weights")
    with pytest.raises(ValueError, match=r"has shape \(3, 5\), the model expects \(3, 4\)"):
        other = gdcore.Sequential([gdcore.Input(shape=(3,)), gdcore.layers.Dense(4), gdcore.layers.Dense(1)])
        other.load_weights(tmp_path / "w.weights.h5")


# --- pickle and deepcopy ----------------------------------------------------------------------------


@pytest.mark.parametrize("copier", [lambda m: pickle.loads(pickle.dumps(m)), copy.deepcopy], ids=["pickle", "deepcopy"])
@pytest.mark.parametrize("numerics", ["plain", "tensorflow"])
def test_pickle_and_deepcopy_keep_every_bit_and_the_shuffle_generator(data, copier, numerics):
    model = _trained("functional", "float32", "rmsprop", data, numerics=numerics)
    model.fit(*data, epochs=1, batch_size=BATCH, verbose=0)  # shuffled: the generator has moved
    twin = copier(model)
    assert twin.profile.name == numerics and twin.optimizer._model is twin
    for layer in twin.dense_layers:  # the layers' kernel and bias are views of the copy's flat parameters again
        assert np.shares_memory(layer.kernel, twin.params) and np.shares_memory(layer.bias, twin.params)
        assert layer.activation is gdcore.activations.get(layer.activation.name)
    _same_bits(twin.get_weights(), model.get_weights(), "weights")
    _same_bits([twin.optimizer.slots], [model.optimizer.slots], "slots")
    for each in (model, twin):
        each.fit(*data, epochs=2, batch_size=BATCH, verbose=0, shuffle=True)
    _same_bits(twin.get_weights(), model.get_weights(), "weights after 2 shuffled epochs")
    assert not np.shares_memory(twin.params, model.params)


# --- damaged and foreign files ----------------------------------------------------------------------


@pytest.fixture
def good_file(tmp_path, data):
    model = _trained("sequential", "float32", "adam", data)
    model.save(tmp_path / "good.keras")
    return tmp_path / "good.keras"


def _truncated(tmp_path, good):
    path = tmp_path / "truncated.keras"
    path.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    return path


def _flipped_h5_byte(tmp_path, good):
    # The central directory survives; a byte of the stored weights does not: the CRC check fails.
    content = bytearray(good.read_bytes())
    content[content.find(b"\x89HDF") + 600] ^= 0xFF
    path = tmp_path / "flipped.keras"
    path.write_bytes(bytes(content))
    return path


def _without(member):
    def make(tmp_path, good):
        path = tmp_path / "missing.keras"
        _write_members(path, {name: content for name, content in _members(good).items() if name != member})
        return path
    return make


def _replaced(member, content):
    def make(tmp_path, good):
        path = tmp_path / "replaced.keras"
        _write_members(path, {**_members(good), member: content})
        return path
    return make


def _h5_edit(edit):
    return lambda tmp_path, good: _edited(tmp_path, good, edit_h5=edit)


def _not_a_zip(tmp_path, good):
    path = tmp_path / "text.keras"
    path.write_text("this is not a model")
    return path


DAMAGE = {
    "not-a-zip": (_not_a_zip, "not a zip archive"),
    "truncated": (_truncated, "not a zip archive"),
    "corrupt-member": (_flipped_h5_byte, "model.weights.h5 is damaged or truncated"),
    "no-config": (_without("config.json"), "has no config.json"),
    "no-weights": (_without("model.weights.h5"), "has no model.weights.h5"),
    "config-not-json": (_replaced("config.json", b"{'not': json"), "config.json is not valid JSON"),
    "weights-not-hdf5": (_replaced("model.weights.h5", b"\x00" * 64), "is not an HDF5 file"),
    "missing-layer-group": (_h5_edit(lambda store: store.__delitem__("layers/dense_1")),
                            "has no group layers/dense_1/vars for layer 'out'"),
    "kernel-shape": (_h5_edit(lambda store: (store["layers/dense/vars"].__delitem__("0"), store[
        "layers/dense/vars"].create_dataset("0", data=np.zeros((3, 4), "f4")))),
                     r"layers/dense/vars/0 \(kernel of layer 'dense'\) has shape \(3, 4\), the model expects \(3, 5\)"),
    "kernel-dtype": (_h5_edit(lambda store: (store["layers/dense/vars"].__delitem__("1"),
                                             store["layers/dense/vars"].create_dataset("1", data=np.zeros(5, "f8")))),
                     r"\(bias of layer 'dense'\) is float64, the model is float32"),
    "missing-dataset": (_h5_edit(lambda store: store["layers/dense/vars"].__delitem__("1")),
                        "holds 1 arrays for layer 'dense'"),
    "optimizer-count": (_h5_edit(lambda store: store["optimizer/vars"].__delitem__("9")),
                        "optimizer/vars holds 9 variables; Adam with this configuration has 2 .* and 10 after"),
    "foreign-layer-weights": (_h5_edit(lambda store: store.create_group("layers/conv2d/vars").create_dataset(
        "0", data=np.zeros(3))), "holds weights for 'layers/conv2d', a layer this model does not have"),
    "soft-link": (_h5_edit(lambda store: store["layers/dense/vars"].__setitem__("2", h5py.SoftLink("/vars"))),
                  "is a SoftLink; Keras refuses linked objects"),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_or_foreign_file_is_a_value_error_naming_the_file_and_the_fault(tmp_path, good_file, damage):
    make, fault = DAMAGE[damage]
    path = make(tmp_path, good_file)
    with pytest.raises(ValueError, match=fault) as error:
        load_model(path)
    assert path.name in str(error.value)


def test_wrong_names_and_missing_files(tmp_path, good_file):
    with pytest.raises(ValueError, match=r"expected a `\.keras` file"):
        load_model(tmp_path / "model.h5")
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "absent.keras")
    model = _gdcore_model("sequential", "float32")
    with pytest.raises(ValueError, match=r"expected a `\.weights\.h5` or `\.keras` file"):
        model.load_weights(tmp_path / "legacy.h5")
    path = tmp_path / "legacy.weights.h5"
    with h5py.File(path, "w") as store:  # Keras 2's layout
        store.attrs["layer_names"] = [b"dense"]
        store.create_group("model_weights")
    with pytest.raises(ValueError, match="Keras 2 \\(legacy .h5\\) weights file") as error:
        model.load_weights(path)
    assert "legacy.weights.h5" in str(error.value)
    with pytest.raises(TypeError, match="unsupported arguments"):
        load_model(good_file, numerics="plain", extra=1)


def _layer(config, index):
    return config["config"]["layers"][index]["config"]


def _optimizer(config):
    return config["compile_config"]["optimizer"]["config"]


UNSUPPORTED = {
    "layer-class": (lambda c: c["config"]["layers"][1].update(class_name="Conv2D"),
                    "layer 'dense' is a Conv2D; gdcore loads Dense layers"),
    "activation": (lambda c: _layer(c, 1).update(activation="mish"), "Dense layer 'dense': unknown activation "
                   "'mish'"),
    "no-bias": (lambda c: _layer(c, 2).update(use_bias=False),  # the weights file still holds a bias
                r"layers/dense_1/vars holds 2 arrays for layer 'out'; this Dense layer has 1 \(kernel: use_bias=False\)"),
    "lora": (lambda c: _layer(c, 1).update(lora_rank=4), "Dense layer 'dense' has lora_rank=4; gdcore has no lora_rank"),
    "regularizer-class": (lambda c: _layer(c, 1).update(kernel_regularizer={"class_name": "OrthogonalRegularizer",
                                                                            "config": {"factor": 0.01}}),
                          "layer 'dense''s kernel_regularizer .* unknown regularizer class 'OrthogonalRegularizer'"),
    "unknown-dense-setting": (lambda c: _layer(c, 1).update(sparsity=0.5),
                              r"Dense layer 'dense' has settings gdcore does not know: \['sparsity'\]"),
    "frozen-layer": (lambda c: _layer(c, 1).update(trainable=False),  # its slots are still in the file
                     r"optimizer/vars holds 10 variables; Adam with this configuration has 2 \(iterations, learning rate\) "
                     "before its first update and 6 after"),
    "initializer": (lambda c: _layer(c, 1).update(kernel_initializer={"module": "keras.initializers",
                                                                       "class_name": "STFTInitializer", "config": {}}),
                    "kernel_initializer .* is not supported"),
    "mixed-precision": (lambda c: _layer(c, 1)["dtype"]["config"].update(name="mixed_float16"),
                        "dtype policy 'mixed_float16'"),
    "model-class": (lambda c: c.update(class_name="MyModel", module="my_package"),
                    "the model is a my_package.MyModel"),
    "optimizer": (lambda c: c["compile_config"]["optimizer"].update(class_name="Nadam"),
                  "optimizer keras.optimizers.Nadam is not supported"),
    "loss-scale": (lambda c: _optimizer(c).update(loss_scale_factor=2.0), "optimizer Adam has loss_scale_factor=2.0"),
    "accumulation": (lambda c: _optimizer(c).update(gradient_accumulation_steps=2),
                     "optimizer Adam has gradient_accumulation_steps=2"),
    "schedule": (lambda c: _optimizer(c).update(learning_rate={"class_name": "ExponentialDecay", "config": {}}),
                 "learning-rate schedules are not supported"),
    "metrics": (lambda c: c["compile_config"].update(metrics=[{"module": "keras.metrics", "class_name": "AUC",
                                                               "config": {}}]),
                "metric class keras.metrics.AUC is not supported"),
    "metric-name": (lambda c: c["compile_config"].update(metrics=["auc"]), "unknown metric 'auc'"),
    "loss": (lambda c: c["compile_config"].update(loss="huber"), "unknown loss 'huber'"),
    "loss-reduction": (lambda c: c["compile_config"].update(loss={"module": "keras.losses", "class_name":
                                                                  "MeanSquaredError", "config": {"name": "mse",
                                                                                                 "reduction": "avg"}}),
                       "reduction='avg'; valid: 'sum_over_batch_size'"),
    "branch": (lambda c: c["config"]["layers"].insert(2, {**c["config"]["layers"][1], "name": "branch", "config": {
        **_layer(c, 1), "name": "branch"}}), r"layers \['branch'\] are not on the path from the input to the output"),
}


@pytest.mark.parametrize("setting", UNSUPPORTED)
def test_whatever_gdcore_cannot_reproduce_is_an_error_naming_it(tmp_path, data, setting):
    model = _trained("functional" if setting == "branch" else "sequential", "float32", "adam", data)
    model.save(tmp_path / "m.keras")
    edit, message = UNSUPPORTED[setting]
    path = _edited(tmp_path, tmp_path / "m.keras", edit_config=edit)
    with pytest.raises(ValueError, match=message) as error:
        load_model(path)
    assert "edited.keras" in str(error.value)


def test_compile_false_does_not_read_the_compile_config(tmp_path, data):
    model = _trained("sequential", "float32", "adam", data)
    model.save(tmp_path / "m.keras")
    path = _edited(tmp_path, tmp_path / "m.keras", edit_config=UNSUPPORTED["optimizer"][0])
    assert not load_model(path, compile=False).compiled


# --- live Keras ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras():
    pytest.importorskip("tensorflow")
    from reference.keras_driver import import_keras

    return import_keras()


def _keras_optimizer(keras, name):
    # Named as Keras names its first one: a gdcore optimizer has no name, and writes Keras's default.
    return {"sgd": lambda: keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True, name="sgd"),
            "adam": lambda: keras.optimizers.Adam(0.01, name="adam"),
            "rmsprop": lambda: keras.optimizers.RMSprop(0.01, momentum=0.5, centered=True, name="rm_sprop"),
            "adagrad": lambda: keras.optimizers.Adagrad(0.1, name="adagrad")}[name]()


# One line per case: (model kind, dtype, optimizer); each optimizer once, each kind and dtype twice.
LIVE = [("sequential", "float32", "adam"), ("functional", "float64", "rmsprop"), ("functional", "float32", "sgd"),
        ("sequential", "float64", "adagrad")]


@pytest.mark.tensorflow
@pytest.mark.parametrize("kind, dtype, optimizer", LIVE)
def test_keras_opens_gdcore_file_and_trains_on_with_the_same_bits(tmp_path, keras, data, kind, dtype, optimizer):
    from reference.keras_driver import keras_dtype

    x, y = data[0].astype(dtype), data[1].astype(dtype)
    model = _trained(kind, dtype, optimizer, (x, y), numerics="tensorflow")
    model.save(tmp_path / "gdcore.keras")
    with keras_dtype(dtype):
        twin = keras.models.load_model(tmp_path / "gdcore.keras")
        _same_bits(twin.get_weights(), model.get_weights(), "Keras's weights vs gdcore's")
        assert int(twin.optimizer.iterations) == model.optimizer.iterations
        _same_bits(twin.predict(x, verbose=0), model.predict(x, verbose=0), "predictions")
        twin.save(tmp_path / "keras.keras")
        mine, theirs = _members(tmp_path / "gdcore.keras"), _members(tmp_path / "keras.keras")
        with zipfile.ZipFile(tmp_path / "gdcore.keras") as a, zipfile.ZipFile(tmp_path / "keras.keras") as b:
            assert [(i.filename, i.compress_type, i.external_attr) for i in a.infolist()] == \
                [(i.filename, i.compress_type, i.external_attr) for i in b.infolist()]
        assert mine["model.weights.h5"] == theirs["model.weights.h5"]  # the same HDF5 file, byte for byte
        # Keras's re-loaded model no longer shares one dtype-policy object, so its own file has no sharing ids.
        assert _without_sharing_ids(json.loads(mine["config.json"])) == json.loads(theirs["config.json"])
        assert json.loads(mine["metadata.json"]).keys() == json.loads(theirs["metadata.json"]).keys()
        twin.fit(x, y, epochs=EPOCHS, batch_size=BATCH, verbose=0, shuffle=False)
    model.fit(x, y, epochs=EPOCHS, batch_size=BATCH, verbose=0, shuffle=False)
    _same_bits(twin.get_weights(), model.get_weights(), "weights after both trained on")


def _keras_model(keras, kind, dtype, optimizer, loss):
    if kind == "sequential":
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(5, activation="sigmoid"),
                                  keras.layers.Dense(1)])
    else:
        inputs = keras.Input((3,))
        model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Dense(5, activation="relu")(inputs)))
    model.compile(optimizer=_keras_optimizer(keras, optimizer), loss=loss, jit_compile=False)
    return model


@pytest.mark.tensorflow
@pytest.mark.parametrize("kind, dtype, optimizer", LIVE)
def test_gdcore_opens_keras_file_predicts_as_keras_and_writes_it_back_unchanged(tmp_path, keras, data, kind, dtype,
                                                                                 optimizer):
    from reference.keras_driver import keras_dtype

    x, y = data[0].astype(dtype), data[1].astype(dtype)
    with keras_dtype(dtype):
        original = _keras_model(keras, kind, dtype, optimizer, "mean_squared_error")
        original.fit(x, y, epochs=EPOCHS, batch_size=BATCH, verbose=0, shuffle=False)
        original.save(tmp_path / "keras.keras")
        model = load_model(tmp_path / "keras.keras", numerics="tensorflow")
        assert model.name == original.name and model.dtype == np.dtype(dtype)
        assert [layer.name for layer in model.layers] == [layer.name for layer in original.layers]
        assert type(model) is (gdcore.Sequential if kind == "sequential" else gdcore.Model)
        assert json.loads(json.dumps(model.get_config())) == json.loads(json.dumps(original.get_config()))
        _same_bits(model.get_weights(), original.get_weights(), "weights")
        state = [model.optimizer.iterations, model.dtype.type(model.optimizer.learning_rate)]
        _same_bits(saving._optimizer_variables(model), [np.asarray(v) for v in original.optimizer.variables],
                   f"optimizer variables (iterations, learning rate: {state})")
        _same_bits(model.predict(x, verbose=0), original.predict(x, verbose=0), "predictions")

        model.save(tmp_path / "gdcore.keras")
        theirs, mine = _members(tmp_path / "keras.keras"), _members(tmp_path / "gdcore.keras")
        assert mine["model.weights.h5"] == theirs["model.weights.h5"]
        assert _sharing_ids_by_order(json.loads(mine["config.json"])) == \
            _sharing_ids_by_order(json.loads(theirs["config.json"]))
        _resume_both_ways(keras, original, model, tmp_path / "gdcore.keras", x, y)


@pytest.mark.tensorflow
def test_keras_losses_as_compile_wrote_them(tmp_path, keras, data):
    x, y = data[0].astype("float32"), data[1].astype("float32")
    for loss, name in ((keras.losses.MeanAbsoluteError(), "mean_absolute_error"),
                       (keras.losses.mean_squared_error, "mean_squared_error"), ("mae", "mean_absolute_error")):
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss=loss)
        model.save(tmp_path / "m.keras")
        assert load_model(tmp_path / "m.keras").loss.name == name


@pytest.mark.tensorflow
def test_compiled_metrics_travel_both_ways(tmp_path, keras):
    """Strings, metric objects (with options) and metric functions, as Keras 3 writes them in compile_config."""
    x = np.random.default_rng(0).normal(size=(12, 2)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")

    def keras_metrics():
        return ["accuracy", "mae", keras.metrics.BinaryAccuracy(threshold=0.3, name="ba3"),
                keras.metrics.RootMeanSquaredError(), keras.metrics.binary_accuracy]

    original = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, activation="sigmoid")])
    original.compile(optimizer="sgd", loss="binary_crossentropy", metrics=keras_metrics(),
                     weighted_metrics=["mae", keras.metrics.BinaryAccuracy()])
    original.save(tmp_path / "keras.keras")
    model = load_model(tmp_path / "keras.keras")
    assert model.metrics_names == ["loss", "accuracy", "mae", "ba3", "root_mean_squared_error", "binary_accuracy",
                                   "weighted_mae", "weighted_binary_accuracy"]
    assert [m.threshold for _, m in model._metrics if m.name == "ba3"] == [0.3]
    theirs = original.fit(x, y, epochs=1, batch_size=4, verbose=0, shuffle=False).history
    mine = model.fit(x, y, epochs=1, batch_size=4, verbose=0, shuffle=False).history
    assert list(mine) == list(theirs)
    model.save(tmp_path / "gdcore.keras")
    config = json.loads(zipfile.ZipFile(tmp_path / "gdcore.keras").read("config.json"))
    for setting in ("metrics", "weighted_metrics"):
        assert config["compile_config"][setting] == original.get_compile_config()[setting]
    reopened = keras.saving.load_model(tmp_path / "gdcore.keras")
    assert list(reopened.fit(x, y, epochs=1, batch_size=4, verbose=0, shuffle=False).history) == list(theirs)


@pytest.mark.tensorflow
def test_weights_files_both_ways(tmp_path, keras, data):
    from reference.keras_driver import keras_dtype

    x, y = data
    with keras_dtype("float64"):
        original = _keras_model(keras, "sequential", "float64", "adam", "mse")
        original.fit(x, y, epochs=1, batch_size=BATCH, verbose=0, shuffle=False)
        original.save_weights(tmp_path / "keras.weights.h5")
        hidden, out = (layer.name for layer in original.layers)  # the groups' name attributes are in the bytes
        model = gdcore.Sequential([gdcore.Input(shape=(3,)), gdcore.layers.Dense(5, activation="sigmoid", name=hidden),
                                   gdcore.layers.Dense(1, name=out)], dtype="float64", numerics="tensorflow",
                                  name=original.name)
        model.compile(optimizer=gdcore.optimizers.Adam(0.01), loss="mse")
        model.fit(x[:8], y[:8], verbose=0)  # builds the optimizer, so that its state is loaded (Keras's rule)
        model.load_weights(tmp_path / "keras.weights.h5")
        _same_bits(model.get_weights(), original.get_weights(), "weights")
        _same_bits(saving._optimizer_variables(model), [np.asarray(v) for v in original.optimizer.variables],
                   "optimizer variables")
        model.save_weights(tmp_path / "gdcore.weights.h5")
        assert (tmp_path / "gdcore.weights.h5").read_bytes() == (tmp_path / "keras.weights.h5").read_bytes()
        other = _keras_model(keras, "sequential", "float64", "adam", "mse")
        with pytest.warns(UserWarning, match="Skipping variable loading for optimizer"):  # Keras's rule, as gdcore's
            other.load_weights(tmp_path / "gdcore.weights.h5")
        _same_bits(other.get_weights(), original.get_weights(), "Keras's weights from gdcore's file")


@pytest.mark.tensorflow
def test_initializer_configs_are_keras_configs(keras):
    for cls in sorted(set(gdcore.initializers.INITIALIZERS.values()), key=lambda cls: cls.__name__):
        mine = saving._initializer_config(cls(), saving._Sharing(enabled=False))
        restored = keras.initializers.deserialize(mine)  # Keras reads every one, Identity's gain included
        assert type(restored).__name__ == cls.__name__
        if cls.__name__ != "Identity":  # Keras's own Identity writes {} and loses its gain
            assert keras.initializers.serialize(getattr(keras.initializers, cls.__name__)()) == mine


@pytest.mark.parametrize("optimizer", [lambda: gdcore.optimizers.AdamW(0.01, weight_decay=0.02, clipnorm=1.0),
                                       lambda: gdcore.optimizers.Adam(0.01, amsgrad=True, clipvalue=0.5)],
                         ids=["adamw-clipnorm", "adam-amsgrad-clipvalue"])
def test_optimizer_options_survive_a_keras_file(optimizer, tmp_path):
    """AdamW, amsgrad's extra slot and the clipping options are written and read back; training resumes the same."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 1))
    y = 3 * x + 1
    model = gdcore.Sequential([gdcore.Input((1,)), gdcore.layers.Dense(4, activation="tanh"), gdcore.layers.Dense(1)],
                              seed=0)
    model.compile(optimizer=optimizer(), loss="mse")
    model.fit(x, y, epochs=2, batch_size=10, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras")
    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.iterations == 8 and np.array_equal(loaded.optimizer.slots, model.optimizer.slots)
    for each in (model, loaded):
        each.fit(x, y, epochs=1, batch_size=10, verbose=0, shuffle=False)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), loaded.get_weights()))


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype, option", [("float32", "use_bias"), ("float64", "use_bias"), ("float32", "trainable"),
                                           ("float64", "trainable"), ("float32", "regularizers"),
                                           ("float64", "regularizers")])
def test_layer_options_travel_both_ways(tmp_path, keras, data, dtype, option):
    # use_bias=False: Keras's layer has one variable (its kernel) and its optimizer one slot per kind for it.
    # A frozen layer (trainable=False, set before compile): its weights are in the file, no optimizer slot for them.
    # Regularizers: Keras's configs (L1's float32 factor, the string's defaults, a shared object's id), and training
    # resumed from either file with the penalties in the loss.
    from reference.keras_driver import keras_dtype

    x, y = data[0].astype(dtype), data[1].astype(dtype)
    with keras_dtype(dtype):
        if option == "use_bias":
            hidden, out = (keras.layers.Dense(5, activation="sigmoid", use_bias=False),
                           keras.layers.Dense(1, use_bias=False))
        elif option == "regularizers":
            shared = keras.regularizers.L1(0.01)
            hidden = keras.layers.Dense(5, activation="sigmoid", kernel_regularizer=keras.regularizers.L1L2(0.01, 0.02),
                                        bias_regularizer=shared)
            out = keras.layers.Dense(1, kernel_regularizer="l2", bias_regularizer=shared)
        else:
            hidden, out = keras.layers.Dense(5, activation="sigmoid"), keras.layers.Dense(1)
            hidden.trainable = False
        original = keras.Sequential([keras.Input((3,)), hidden, out])
        original.compile(optimizer=keras.optimizers.Adam(0.01, name="adam"), loss="mse", jit_compile=False)
        original.fit(x, y, epochs=EPOCHS, batch_size=BATCH, verbose=0, shuffle=False)
        original.save(tmp_path / "keras.keras")
        model = load_model(tmp_path / "keras.keras", numerics="tensorflow")
        if option == "regularizers":
            assert [(layer.kernel_regularizer, layer.bias_regularizer) for layer in model.dense_layers] == [
                (gdcore.regularizers.L1L2(0.01, 0.02), gdcore.regularizers.L1(0.01)),
                (gdcore.regularizers.L2(0.01), gdcore.regularizers.L1(0.01))]
        else:
            assert [getattr(layer, option) for layer in model.dense_layers] == [False, option == "trainable"]
        assert json.loads(json.dumps(model.get_config())) == json.loads(json.dumps(original.get_config()))
        _same_bits(model.get_weights(), original.get_weights(), "weights")
        _same_bits(saving._optimizer_variables(model), [np.asarray(v) for v in original.optimizer.variables],
                   "optimizer variables")
        model.save(tmp_path / "gdcore.keras")
        assert _members(tmp_path / "gdcore.keras")["model.weights.h5"] == \
            _members(tmp_path / "keras.keras")["model.weights.h5"]
        model.save_weights(tmp_path / "gdcore.weights.h5")
        original.save_weights(tmp_path / "keras.weights.h5")
        assert (tmp_path / "gdcore.weights.h5").read_bytes() == (tmp_path / "keras.weights.h5").read_bytes()
        _resume_both_ways(keras, original, model, tmp_path / "gdcore.keras", x, y)
