"""The ``"tensorflow"`` profile on TensorFlow's other CPU code paths, simulated on this machine.

TensorFlow runs float32 products on oneDNN's AVX-512 kernels, on oneDNN's
AVX2 kernels, or on Eigen, depending on the CPU (:mod:`gdcore.numerics.machine`).
The rest of the suite checks the path of the machine it runs on; here each
other path this CPU can reach is entered through the variables TensorFlow and
oneDNN read at start-up (``TF_ENABLE_ONEDNN_OPTS``, ``ONEDNN_MAX_CPU_ISA``), in
a fresh process, and a representative part of the live suites runs there:
the float32 per-operation rules of ``tests/test_numerics_tensorflow.py`` and
float32 end-to-end Keras training from ``tests/test_tensorflow_training.py``.
A path this CPU cannot reach (AVX-512 on an AVX2-only CPU) is skipped, naming
the missing feature.
"""

import os
import subprocess
import sys

import pytest

from gdcore.numerics import machine

pytest.importorskip("tensorflow")

pytestmark = [pytest.mark.tensorflow, pytest.mark.slow]

TESTS = os.path.dirname(__file__)

# path -> (environment that reaches it, CPU features it needs)
PATHS = {
    "onednn-avx512": ({"TF_ENABLE_ONEDNN_OPTS": "1", "ONEDNN_MAX_CPU_ISA": "ALL"}, ("avx512f", "avx512bw", "avx512vl",
                                                                                   "avx512dq")),
    "onednn-avx2": ({"TF_ENABLE_ONEDNN_OPTS": "1", "ONEDNN_MAX_CPU_ISA": "AVX2"}, ("avx2", "fma")),
    "eigen-avx512": ({"TF_ENABLE_ONEDNN_OPTS": "0", "ONEDNN_MAX_CPU_ISA": "ALL"}, ("avx512f", "avx512bw", "avx512vl",
                                                                                "avx512dq")),
    "eigen-avx2": ({"TF_ENABLE_ONEDNN_OPTS": "0", "ONEDNN_MAX_CPU_ISA": "AVX2"}, ("avx2", "fma")),
    "eigen-gebp": ({"TF_ENABLE_ONEDNN_OPTS": "0", "TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL": "0"}, ()),
}

# A representative part of each live suite: every float32 rule on a few shapes, and training end to end.
SELECTIONS = {
    "rules": ("test_numerics_tensorflow.py", "float32 and (B1- or B2- or B11- or B20- or B100- or B1000- or B385- "
                                             "or B2000- or sigmoid or tanh)"),
    "training": ("test_tensorflow_training.py", "float32 and (seed or sigmoid16 or tanh8 or relu8 or 3features)"),
}


@pytest.mark.parametrize("selection", list(SELECTIONS))
@pytest.mark.parametrize("path", list(PATHS))
def test_profile_holds_on_another_path(path, selection):
    environ, needs = PATHS[path]
    here = machine.cpu_info()
    missing = [feature for feature in needs if feature not in here.features]
    if missing:
        pytest.skip(f"this CPU cannot run TensorFlow's {path} path: no {', '.join(missing)}")
    if path == here.float32_products and not os.environ.get("GDCORE_TEST_NATIVE_PATH_AGAIN"):
        pytest.skip(f"{path} is this machine's own path: the rest of the suite checks it")
    env = {**os.environ, **environ}
    simulated = machine.derive(*machine.read_cpuid(), environ=env, schedulable_cpus=here.intra_op_threads)
    assert simulated.float32_products == path, f"{environ} leads to {simulated.float32_products}, not {path}"
    file, expression = SELECTIONS[selection]
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", os.path.join(TESTS, file),
               "-k", expression]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    summary = result.stdout.strip().splitlines()[-1:] or [""]
    assert result.returncode == 0, f"{path} ({environ}): {summary[0]}\n{result.stdout[-4000:]}"
    assert " passed" in summary[0], summary[0]
