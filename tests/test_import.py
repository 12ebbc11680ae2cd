"""Importing gdcore compiles nothing; the compiled kernels are cached on disk."""

import subprocess
import sys
import textwrap


def test_import_compiles_nothing():
    code = textwrap.dedent("""
        from numba.core import event
        recorder = event.RecordingListener()
        event.register("numba:compile", recorder)
        import gdcore, gdcore.plot
        assert recorder.buffer == [], [e.data.get("dispatcher") for _, e in recorder.buffer]
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_every_kernel_asks_for_the_disk_cache():
    from numba.core.registry import CPUDispatcher

    import gdcore
    from gdcore import _numba_engine
    from gdcore.numerics import _plain, _tensorflow, eigen

    modules = [_numba_engine, _plain, _tensorflow, eigen]
    dispatchers = [(module.__name__, name, value) for module in modules for name, value in vars(module).items()
                   if isinstance(value, CPUDispatcher)]
    assert len(dispatchers) > 10
    uncached = [(module, name) for module, name, value in dispatchers if type(value._cache).__name__ == "NullCache"]
    assert not uncached, uncached
    assert gdcore.__version__
