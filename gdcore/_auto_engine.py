"""``engine="auto"``: the compiled loop when it is built, the NumPy engine while it is built in the background.

Numba compiles gdcore's fused loop on its first use, a few minutes per dtype and
numerics profile (every optimizer shares it), and caches it on disk; later processes
load it in about a second. A student's first cell should not wait those
minutes. So, for each call, this engine asks whether the compiled entry point
for exactly these argument types is loaded in this process or in the disk
cache (loading it if so, never compiling):

- yes: it runs the compiled loop;
- no, and the call is small (:func:`_small`, a few seconds on the NumPy
  engine): it starts one subprocess that compiles that signature into the
  disk cache, says so once, and runs this call on the NumPy engine; a later
  call switches to the compiled loop as soon as the subprocess is done;
- no, and the call is large: it waits for such a subprocess if one is
  running (in this process or another: a lock file per signature), else
  compiles here, saying so once.

The two engines give the same bits (``tests/test_engines.py``), so the
results never depend on which one ran. ``GDCORE_BACKGROUND_COMPILE=0`` turns
the background build off (large and small calls then compile here).
The disk-cache lookup uses Numba's cache index; should that ever fail, this
engine behaves as ``engine="numba"``.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from gdcore import _numba_engine, _numpy_engine

# NumPy-engine seconds per step, and per step and batch row x parameter (the "plain" profile, measured; the
# "tensorflow" profile's emulated products cost about twice as much).
_SECONDS_PER_STEP = 5e-4
_SECONDS_PER_ROW_PARAMETER = 5e-9
# A call estimated to take longer than this on the NumPy engine waits for the compiled loop instead.
SMALL_SECONDS = 10.0
# A lock older than this is from a build that died without removing it.
_STALE_LOCK_SECONDS = 30 * 60

_DISPATCHERS = {dispatcher.py_func.__name__: dispatcher
                for entries in _numba_engine._ENTRIES.values() for dispatcher in entries}
_DISPATCHERS["permutations"] = _numba_engine.permutations

_builds: dict[tuple, subprocess.Popen] = {}  # entry -> the subprocess of this process building it
_failed: set[tuple] = set()
_said: set[str] = set()


def _enabled() -> bool:
    return os.environ.get("GDCORE_BACKGROUND_COMPILE", "1") != "0"


def _say(kind: str, message: str) -> None:
    """One line on stderr, once per process and kind."""
    if kind not in _said:
        _said.add(kind)
        print(f"gdcore: {message}", file=sys.stderr, flush=True)


# --- is it compiled? ------------------------------------------------------------------
#
# The fast question first: call the entry point with compiling refused. Numba's dispatcher finds a compiled
# version for the arguments' types in C and runs it; only when it has none does it call its
# ``_compile_for_args``, which then raises instead of compiling (nothing has run). Typing the arguments in
# Python (``_signature``) costs a millisecond, so only that slow path does it.


class _NotCompiled(Exception):
    pass


_refusing = threading.local()


def _refuse_compiling(dispatcher) -> None:
    compile_for_args = dispatcher._compile_for_args

    def refusing(*args, **kwargs):
        if getattr(_refusing, "on", False):
            raise _NotCompiled
        return compile_for_args(*args, **kwargs)

    dispatcher._compile_for_args = refusing


def _call_compiled(dispatcher, args):
    """``(True, result)`` if ``dispatcher`` has a compiled version for ``args`` (it ran), else ``(False, None)``."""
    _refusing.on = True
    try:
        return True, dispatcher(*args)
    except _NotCompiled:
        return False, None
    finally:
        _refusing.on = False


for _dispatcher in _DISPATCHERS.values():
    _refuse_compiling(_dispatcher)


def _signature(dispatcher, args) -> tuple:
    return tuple(dispatcher.typeof_pyval(value) for value in args)


def _loaded(dispatcher, signature) -> bool | None:
    """Whether ``dispatcher`` has ``signature`` compiled, loading it from the disk cache if there; None: unknown.

    Never compiles: the index of Numba's on-disk cache is read first, and only
    a signature found there is handed to ``compile`` (which then loads it).
    """
    if signature in dispatcher.overloads:
        return True
    try:
        cache = dispatcher._cache
        dispatcher.targetctx.refresh()
        key = cache._index_key(signature, dispatcher.targetctx.codegen())
        if key not in cache._cache_file._load_index():
            return False
    except Exception:  # a Numba without these internals: behave as engine="numba"
        return None
    dispatcher.compile(signature)
    return True


# --- building in the background -----------------------------------------------------------
#
# An entry is (entry point name, signature). Each entry being built has a lock file holding the pid of the
# subprocess building it, which removes the lock once that entry is in the disk cache; so any process (a
# notebook, a test worker, a sweep's workers) can tell whether it is being built, and no two build it at once.


def _lock_path(entry) -> str:
    name, signature = entry
    where = _DISPATCHERS[name]._cache._cache_path
    digest = hashlib.sha1(f"{where}\n{name}\n{signature}".encode()).hexdigest()[:24]
    folder = os.path.join(tempfile.gettempdir(), f"gdcore-build-{os.getuid() if hasattr(os, 'getuid') else 0}")
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, digest + ".lock")


def _lock_holder(path: str) -> int | None:
    """The pid of a live build holding the lock at ``path``, else None (a stale lock is removed)."""
    try:
        with open(path) as file:
            pid = int(file.read().strip() or 0)
        age = time.time() - os.path.getmtime(path)
    except (OSError, ValueError):
        return None
    if pid == 0 and age < 10:  # just created: its pid is being written
        return -1
    try:
        os.kill(pid, 0)
        alive = pid > 0
    except PermissionError:
        alive = True
    except OSError:
        alive = False
    if alive and age < _STALE_LOCK_SECONDS:
        return pid
    try:
        os.remove(path)
    except OSError:
        pass
    return None


def _building(entry) -> bool:
    """Whether ``entry`` is being built (by a subprocess of this process or of another)."""
    process = _builds.get(entry)
    if process is not None and process.poll() is not None:
        del _builds[entry]
        if process.returncode != 0:
            _failed.add(entry)
            try:
                with open(process.args[-1] + ".log", errors="replace") as file:
                    tail = file.read()[-2000:]
            except OSError:
                tail = ""
            _say("failed", f"building the compiled loop in the background failed; it is compiled here instead:\n"
                           f"{tail}")
            return False
    return _lock_holder(_lock_path(entry)) is not None


def _start(entries, what: str) -> bool:
    """Build the entries not yet being built in one subprocess; whether the first one is being built now."""
    if not _enabled() or entries[0] in _failed:
        return False
    locks = []
    for entry in entries:
        if _building(entry):
            continue
        path = _lock_path(entry)
        try:
            locks.append((entry, path, os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)))
        except OSError:  # taken meanwhile, or no temporary folder: either way not ours to build
            continue
    if locks:
        job = locks[0][1].removesuffix(".lock")
        with open(job + ".job", "wb") as file:
            pickle.dump([(entry, path) for entry, path, _ in locks], file)
        with open(job + ".log", "wb") as log:
            process = subprocess.Popen([sys.executable, "-c", _BUILD_COMMAND, job], stdin=subprocess.DEVNULL,
                                       stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        for entry, _, descriptor in locks:
            os.write(descriptor, str(process.pid).encode())
            os.close(descriptor)
            _builds[entry] = process
        _say("background", f"compiling the training loop for {what} in the background (a few minutes, once per "
                           "install); meanwhile small runs use the NumPy engine, with the same results")
    return _building(entries[0])


_BUILD_COMMAND = "import sys; from gdcore._auto_engine import _build; _build(sys.argv[1])"


def _wait(entry) -> None:
    while _building(entry):
        time.sleep(0.2)


def _build(job: str) -> None:
    """The subprocess: compile each entry of ``job`` into the disk cache, releasing its lock when done."""
    with open(job + ".job", "rb") as file:
        entries = pickle.load(file)
    try:
        for (name, signature), path in entries:
            _DISPATCHERS[name].compile(signature)
            os.remove(path)
    finally:
        for _, path in entries:
            if os.path.exists(path):
                os.remove(path)
        os.remove(job + ".job")


# --- the engine ----------------------------------------------------------------------------


def _run(name: str, args, describe, is_small, run_numpy, more_jobs=lambda: []):
    """Entry point ``name`` on ``args`` compiled if ready, else per the module docstring.

    ``describe()``: what is compiled, for the messages; ``is_small()``: whether the NumPy engine may run the call
    meanwhile; ``more_jobs()``: further entries (entry point name, signature) to build with it. Each is called
    only when the entry is not compiled yet: a warm call pays for none of them.
    """
    dispatcher = _DISPATCHERS[name]
    ran, result = _call_compiled(dispatcher, args)
    if ran:
        return result
    what, small = describe(), is_small()
    signature = _signature(dispatcher, args)
    entry = (name, signature)
    running = _building(entry)
    if not running and _loaded(dispatcher, signature) is not False:
        return dispatcher(*args)
    if small and (running or _start([entry, *more_jobs()], what)):
        return run_numpy()
    if _building(entry):
        _say("waiting", f"waiting for the training loop for {what} to finish compiling (a few minutes, once "
                        "per install)")
        _wait(entry)
    elif not _loaded(dispatcher, signature):
        _say("compiling", f"compiling the training loop for {what} (a few minutes, once per install)")
    return dispatcher(*args)


def _describe(profile, dtype) -> str:
    return f"{np.dtype(dtype).name}, numerics={profile.name!r}"


def _seconds(profile, steps: int, rows: int, parameters: int) -> float:
    """The NumPy engine's time for ``steps`` steps of ``rows`` rows (the module's measured constants)."""
    factor = 2.0 if profile.name == "tensorflow" else 1.0
    return factor * steps * (_SECONDS_PER_STEP + _SECONDS_PER_ROW_PARAMETER * rows * parameters)


def fit_loop(profile, epochs, network, loss, metrics, optimizer, log, window, on_step=None):
    """:func:`gdcore._numba_engine.fit_loop` when compiled, else per the module docstring."""
    if on_step is not None:
        return _numpy_engine.fit_loop(profile, epochs, network, loss, metrics, optimizer, log, window, on_step)
    fit, evaluate, predict = _numba_engine._ENTRIES[profile.id]

    def more_jobs():  # what the model's evaluate and predict will call, and the shuffle
        sums = np.zeros((1 + metrics.ids.shape[0], 2), epochs.x.dtype)
        return [(evaluate.py_func.__name__, _signature(evaluate, _numba_engine.plain_evaluate_arguments(
                    profile, epochs.val, network, loss, metrics, sums))),
                (predict.py_func.__name__, _signature(predict, _numba_engine.plain_predict_arguments(
                    profile, epochs.val, network))),
                ("permutations", _signature(_numba_engine.permutations, (np.zeros(1, np.uint64), 1)))]

    def small():
        n, batch = epochs.x.shape[0], epochs.batch_size
        steps = min(window.max_steps, epochs.orders.shape[0] * -(-n // batch))
        return _seconds(profile, steps, batch, network.params.size) < SMALL_SECONDS

    return _run(fit.py_func.__name__,
                _numba_engine.plain_fit_arguments(profile, epochs, network, loss, metrics, optimizer, log, window),
                lambda: _describe(profile, epochs.x.dtype), small,
                lambda: _numpy_engine.fit_loop(profile, epochs, network, loss, metrics, optimizer, log, window),
                more_jobs)


def evaluate_loop(profile, batches, network, loss, metrics, sums):
    """:func:`gdcore._numba_engine.evaluate_loop` when compiled, else per the module docstring."""
    entry = _numba_engine._ENTRIES[profile.id][1]
    small = lambda: _seconds(profile, 1, batches.x.shape[0], network.params.size) < SMALL_SECONDS  # noqa: E731
    _run(entry.py_func.__name__, _numba_engine.plain_evaluate_arguments(profile, batches, network, loss, metrics, sums),
         lambda: _describe(profile, batches.x.dtype), small,
         lambda: _numpy_engine.evaluate_loop(profile, batches, network, loss, metrics, sums))


def predict_loop(profile, batches, network):
    """:func:`gdcore._numba_engine.predict_loop` when compiled, else per the module docstring."""
    entry = _numba_engine._ENTRIES[profile.id][2]
    small = lambda: _seconds(profile, 1, batches.x.shape[0], network.params.size) < SMALL_SECONDS  # noqa: E731
    return _run(entry.py_func.__name__, _numba_engine.plain_predict_arguments(profile, batches, network),
                lambda: _describe(profile, batches.x.dtype), small, lambda: _numpy_engine.predict_loop(profile, batches, network))


def permutations(seeds, n):
    """:func:`gdcore._numba_engine.permutations` if compiled (the training loop's build compiles it), else
    :func:`~gdcore._numba_engine.permutations_python` for up to a million positions."""
    dispatcher = _numba_engine.permutations
    ran, result = _call_compiled(dispatcher, (seeds, n))
    if ran:
        return result
    if len(seeds) * n <= 1_000_000 and _loaded(dispatcher, _signature(dispatcher, (seeds, n))) is False:
        return _numba_engine.permutations_python(seeds, n)
    return dispatcher(seeds, n)

