"""engine="auto": the NumPy engine while the compiled loop is built in the background, the same bits either way."""

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import gdcore
from gdcore import _auto_engine, _numba_engine, _numpy_engine


def _seed_model(engine, dtype="float32", numerics="plain", optimizer="adam"):
    model = gdcore.Sequential([gdcore.Input(shape=(1,)), gdcore.layers.Dense(8, activation="sigmoid"),
                               gdcore.layers.Dense(1)], dtype=dtype, numerics=numerics, engine=engine, seed=3)
    model.compile(optimizer=optimizer, loss="mse", metrics=["mae"])
    return model


@pytest.fixture
def xy():
    x = np.linspace(-3, 3, 60)[:, None]
    return x, np.sin(x) + 0.1 * x


@pytest.fixture
def nothing_compiled(monkeypatch, tmp_path):
    """Pretend no entry point is compiled or cached, with a build that only sleeps; locks under ``tmp_path``."""
    monkeypatch.setattr(_auto_engine, "_call_compiled", lambda dispatcher, args: (False, None))
    monkeypatch.setattr(_auto_engine, "_loaded", lambda dispatcher, signature: False)
    monkeypatch.setattr(_auto_engine, "_BUILD_COMMAND", "import time; time.sleep(2)")
    monkeypatch.setattr(_auto_engine.tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(_auto_engine, "_builds", {})
    monkeypatch.setattr(_auto_engine, "_failed", set())
    monkeypatch.setattr(_auto_engine, "_said", set())
    monkeypatch.delenv("GDCORE_BACKGROUND_COMPILE", raising=False)
    return tmp_path


def _spy(monkeypatch, module, name):
    calls = []
    original = getattr(module, name)

    def spy(*args, **kwargs):
        calls.append(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return calls


def test_auto_is_the_default_engine():
    assert gdcore.Sequential().engine == "auto"


@pytest.mark.parametrize("n", [0, 1, 2, 3, 17, 1000])
def test_permutations_in_python_are_the_compiled_ones(n):
    seeds = np.random.default_rng(n).integers(0, 2**64, 7, dtype=np.uint64)
    expected = _numba_engine.permutations(seeds, n)
    got = _numba_engine.permutations_python(seeds, n)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def test_small_fit_runs_on_numpy_while_building_and_says_so_once(nothing_compiled, monkeypatch, xy, capfd):
    x, y = xy
    numpy_fits = _spy(monkeypatch, _numpy_engine, "fit_loop")
    model = _seed_model("auto")
    history = model.fit(x, y, epochs=5, batch_size=16, verbose=0, validation_data=(x, y))
    prediction = model.predict(x, verbose=0)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert numpy_fits == ["fit_loop", "fit_loop"]
    note = capfd.readouterr().err
    assert note.count("gdcore: compiling the training loop for float32, numerics='plain' in the background") == 1
    locks = [name for name in os.listdir(nothing_compiled / f"gdcore-build-{os.getuid()}") if name.endswith(".lock")]
    assert len(locks) == 4  # fit, evaluate, predict and the shuffle, each locked by the one build

    compiled = _seed_model("numba")
    expected = compiled.fit(x, y, epochs=5, batch_size=16, verbose=0, validation_data=(x, y))
    for key in expected.history:
        np.testing.assert_array_equal(history.history[key], expected.history[key], err_msg=key)
    np.testing.assert_array_equal(prediction, compiled.predict(x, verbose=0))


def test_one_build_per_entry_across_models(nothing_compiled, xy):
    x, y = xy
    for _ in range(3):
        _seed_model("auto").fit(x, y, epochs=1, verbose=0)
    processes = {id(process) for process in _auto_engine._builds.values()}
    assert len(processes) == 1


def test_large_fit_waits_for_the_build(nothing_compiled, monkeypatch, xy, capfd):
    x, y = xy
    model = _seed_model("auto")
    model.fit(x, y, epochs=1, verbose=0)  # small: starts the build, runs on NumPy
    monkeypatch.setattr(_auto_engine, "SMALL_SECONDS", 0.0)
    started = time.perf_counter()
    model.fit(x, y, epochs=1, verbose=0)
    waited = time.perf_counter() - started
    assert "waiting for the training loop for float32, numerics='plain'" in capfd.readouterr().err
    assert waited > 0.5  # the sleeping build took 2 s from its start
    assert not any(name.startswith("_fit") for name, _ in _auto_engine._builds)  # the build was seen to end


def test_background_build_can_be_turned_off(nothing_compiled, monkeypatch, xy, capfd):
    x, y = xy
    monkeypatch.setenv("GDCORE_BACKGROUND_COMPILE", "0")
    numpy_fits = _spy(monkeypatch, _numpy_engine, "fit_loop")
    _seed_model("auto").fit(x, y, epochs=1, verbose=0)
    assert numpy_fits == [] and not _auto_engine._builds
    assert "compiling the training loop for float32, numerics='plain' (a few minutes" in capfd.readouterr().err


def test_a_failed_build_is_reported_and_compiled_here(nothing_compiled, monkeypatch, xy, capfd):
    x, y = xy
    monkeypatch.setattr(_auto_engine, "_BUILD_COMMAND", "import sys; sys.exit('no compiler here')")
    model = _seed_model("auto")
    model.fit(x, y, epochs=1, verbose=0)
    for process in list(_auto_engine._builds.values()):
        process.wait()
    model.fit(x, y, epochs=1, verbose=0)
    err = capfd.readouterr().err
    assert "building the compiled loop in the background failed" in err and "no compiler here" in err


def test_a_stale_lock_is_taken_over(nothing_compiled, xy):
    entry = ("_fit_plain", ("not a real signature",))
    _auto_engine._DISPATCHERS.setdefault("_fit_plain", _numba_engine._ENTRIES[0][0])
    path = _auto_engine._lock_path(entry)
    with open(path, "w") as file:
        file.write("999999999")  # no such process
    assert not _auto_engine._building(entry)
    assert not os.path.exists(path)


@pytest.mark.slow
def test_fresh_cache_first_fit_then_compiled_after_the_build(tmp_path):
    """End to end with an empty Numba cache: the first fit returns at once; a later process loads the build."""
    script = textwrap.dedent("""
        import sys, time
        import numpy as np
        import gdcore
        from gdcore import _auto_engine
        x = np.linspace(-3, 3, 100)[:, None]
        model = gdcore.Sequential([gdcore.Input(shape=(1,)), gdcore.layers.Dense(8, activation="sigmoid"),
                                   gdcore.layers.Dense(1)], seed=0)
        model.compile(optimizer="adam", loss="mse")
        started = time.perf_counter()
        history = model.fit(x, np.sin(x), epochs=100, batch_size=20, verbose=0)
        model.evaluate(x, np.sin(x), verbose=0)
        print(time.perf_counter() - started, repr(history.history["loss"][-1]), sys.argv[1])
        if sys.argv[1] == "first":
            for process in set(_auto_engine._builds.values()):
                process.wait()
        else:
            from gdcore import _numba_engine
            print(len(_numba_engine._ENTRIES[model.profile.id][0].overloads))
    """)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), TMPDIR=str(tmp_path))
    first = subprocess.run([sys.executable, "-c", script, "first"], capture_output=True, text=True, env=env,
                           timeout=600)
    assert first.returncode == 0, first.stderr
    assert "in the background" in first.stderr
    second = subprocess.run([sys.executable, "-c", script, "second"], capture_output=True, text=True, env=env,
                            timeout=600)
    assert second.returncode == 0, second.stderr
    assert second.stderr == ""  # loaded from the cache the build filled: nothing to say
    seconds_first, loss_first, _ = first.stdout.split()
    lines = second.stdout.split("\n")
    _, loss_second, _ = lines[0].split()
    assert loss_first == loss_second  # the NumPy engine then the compiled loop: the same bits
    assert lines[1] == "1"
