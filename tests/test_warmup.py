"""``python -m gdcore.warmup``: the training loop compiled and cached ahead of the first fit."""

import subprocess
import sys

import pytest

from gdcore import warmup


def test_warm_up_runs_every_entry_point_in_fresh_processes():
    result = subprocess.run([sys.executable, "-m", "gdcore.warmup", "--processes", "2"], capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("arguments, message", [
    ({"dtypes": ("float16",)}, "dtypes: each must be one of"),
    ({"profiles": ("jax",)}, "profiles: each must be one of"),
])
def test_warm_up_names_a_bad_argument(arguments, message):
    with pytest.raises(ValueError, match=message):
        warmup.warm_up(**arguments)
