"""gdcore.numerics.machine: the machine-dependent choices TensorFlow's libraries make, derived the same way.

The derivation is tested on CPUs described by their CPUID leaves (this
project's development machines and the bit layouts of the Intel and AMD
manuals), so that every path runs here whatever CPU the suite lands on; the
live tests then check that, on this machine, TensorFlow itself agrees: whether
it enabled oneDNN, which ISA oneDNN picked (from oneDNN's own verbose output),
and the L1 size the Linux kernel reports.
"""

import os
import re
import subprocess
import sys

import pytest

from gdcore.numerics import machine
from gdcore.numerics.machine import derive, eigen_cache_sizes, features, onednn_isa

XCR0_AVX512 = 0xE7  # x87, SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM saved by the OS
XCR0_AVX = 0x07


def _vendor_leaf(vendor: str, max_leaf: int):
    raw = vendor.encode()
    ebx, edx, ecx = (int.from_bytes(raw[i : i + 4], "little") for i in (0, 4, 8))
    return (max_leaf, ebx, ecx, edx)


def _leaf4(level: int, kind: int, ways: int, sets: int, line: int = 64, partitions: int = 1):
    """A CPUID leaf 4 entry: kind 1 data, 2 instruction, 3 unified."""
    eax = kind | (level << 5)
    ebx = ((ways - 1) << 22) | ((partitions - 1) << 12) | (line - 1)
    return (eax, ebx, sets - 1, 0)


def _bits(*positions):
    return sum(1 << p for p in positions)


LEAF1_ECX_AVX_FMA_OSXSAVE = _bits(0, 9, 12, 19, 20, 27, 28)  # sse3 ssse3 fma sse4.1 sse4.2 osxsave avx
LEAF1_EDX_SSE = _bits(25, 26)
LEAF7_EBX_AVX2 = _bits(5)
LEAF7_EBX_AVX512_CORE = _bits(16, 17, 30, 31)  # F, DQ, BW, VL


def intel(l1d_ways, l2_kib, leaf7=(0, 0, 0, 0), leaf71=(0, 0, 0, 0)):
    """An Intel CPU with leaf 4: an L1d of ``l1d_ways`` x 64 sets x 64 B, an L2 of ``l2_kib``, a 32 MiB L3."""
    return {
        (0, 0): _vendor_leaf("GenuineIntel", 0x1F),
        (1, 0): (0x606A6, 0, LEAF1_ECX_AVX_FMA_OSXSAVE, LEAF1_EDX_SSE),
        (4, 0): _leaf4(1, 1, l1d_ways, 64),
        (4, 1): _leaf4(1, 2, 8, 64),
        (4, 2): _leaf4(2, 3, 16, l2_kib * 1024 // (16 * 64)),
        (4, 3): _leaf4(3, 3, 16, 32 * 1024 * 1024 // (16 * 64)),
        (4, 4): (0, 0, 0, 0),
        (7, 0): leaf7,
        (7, 1): leaf71,
        (0xB, 0): (0, 1, 0x100, 0),  # topology: 1 thread per core (SMT level),
        (0xB, 1): (0, 8, 0x201, 0),  # 8 logical processors in the package (core level)
        (0x80000000, 0): (0x80000008, 0, 0, 0),
    }


# This project's development machine: Intel Xeon (Sapphire Rapids), 48 KiB L1d, AVX-512, AMX (read by read_cpuid).
SAPPHIRE_RAPIDS = {
    (0x0, 0): (0x20, 0x756E6547, 0x6C65746E, 0x49656E69),
    (0x1, 0): (0xC06F2, 0x20800, 0xFFFA3203, 0x1F8BFBFF),
    (0x2, 0): (0xFEFF01, 0xF0, 0x0, 0x0),
    (0x4, 0): (0x4000121, 0x2C0003F, 0x3F, 0x0),
    (0x4, 1): (0x4000122, 0x1C0003F, 0x3F, 0x0),
    (0x4, 2): (0x4000143, 0x3C0003F, 0x7FF, 0x0),
    (0x4, 3): (0x4004163, 0x4C0003F, 0x3BFFF, 0x4),
    (0x4, 4): (0x0, 0x0, 0x0, 0x0),
    (0x7, 0): (0x2, 0xF1BF27EB, 0x1B415FDE, 0xBFD14410),
    (0x7, 1): (0x1C30, 0x0, 0x0, 0x0),
    (0xB, 0): (0x0, 0x1, 0x100, 0x0),
    (0xB, 1): (0x5, 0x2, 0x201, 0x0),
    (0x80000000, 0): (0x80000008, 0x0, 0x0, 0x0),
    (0x80000002, 0): (0x65746E49, 0x2952286C, 0x6F655820, 0x2952286E),
    (0x80000003, 0): (0x6F725020, 0x73736563, 0x726F, 0x0),
    (0x80000004, 0): (0x0, 0x0, 0x0, 0x0),
    (0x80000006, 0): (0x0, 0x0, 0x8007040, 0x0),
}
XCR0_SAPPHIRE_RAPIDS = 0x602E7
# Intel Skylake-SP: 32 KiB L1d, 1 MiB L2, AVX-512 F/DQ/BW/VL but no VNNI: TensorFlow leaves oneDNN off.
SKYLAKE_SP = intel(8, 1024, leaf7=(0, LEAF7_EBX_AVX2 | LEAF7_EBX_AVX512_CORE, 0, 0))
# Intel Cascade Lake: the same with AVX512_VNNI (leaf 7 ECX bit 11): oneDNN on.
CASCADE_LAKE = intel(8, 1024, leaf7=(0, LEAF7_EBX_AVX2 | LEAF7_EBX_AVX512_CORE, _bits(11), 0))
# Intel Alder Lake P-core: 48 KiB L1d, AVX2 and AVX-VNNI (leaf 7.1 EAX bit 4), no AVX-512.
ALDER_LAKE = intel(12, 1280, leaf7=(1, LEAF7_EBX_AVX2, 0, 0), leaf71=(_bits(4), 0, 0, 0))
# AMD EPYC Zen 3: L1d 32 KiB (0x80000005 ECX[31:24]), L2 512 KiB, L3 32 MiB (0x80000006), AVX2 + FMA.
ZEN3 = {
    (0, 0): _vendor_leaf("AuthenticAMD", 0x10),
    (1, 0): (0xA00F11, 0, LEAF1_ECX_AVX_FMA_OSXSAVE, LEAF1_EDX_SSE),
    (7, 0): (0, LEAF7_EBX_AVX2, 0, 0),
    (0x80000000, 0): (0x80000023, 0, 0, 0),
    (0x80000005, 0): (0xFF40FF40, 0xFF40FF40, 0x20080140, 0x20080140),
    (0x80000006, 0): (0x48002200, 0x68004200, 0x02006140, 0x01009140),
}


def test_this_project_machine_is_derived_as_eigen_and_tensorflow_see_it():
    info = derive(SAPPHIRE_RAPIDS, XCR0_SAPPHIRE_RAPIDS, environ={}, schedulable_cpus=2)
    assert (info.l1_bytes, info.l2_bytes, info.l3_bytes) == (48 * 1024, 2 * 1024**2, 300 * 1024**2)
    assert info.brand == "Intel(R) Xeon(R) Processor" and info.vendor == "GenuineIntel"
    assert info.onednn_enabled and "avx512_vnni" in info.onednn_reason
    assert info.onednn_isa == "avx10_1_512_amx"  # oneDNN's verbose: "... Intel AMX with bfloat16 and 8-bit integer support"
    assert info.float32_products == "onednn-avx512"
    assert info.caches == machine.Caches(48 * 1024, 2 * 1024**2, 300 * 1024**2, 2, 2 * 1024**2)


@pytest.mark.parametrize("cpu, xcr0, expected", [
    (SKYLAKE_SP, XCR0_AVX512, (32 * 1024, 1024**2, 32 * 1024**2)),
    (ALDER_LAKE, XCR0_AVX, (48 * 1024, 1280 * 1024, 32 * 1024**2)),
    (ZEN3, XCR0_AVX, (32 * 1024, 512 * 1024, 32 * 1024**2)),
])
def test_eigen_cache_sizes_by_vendor(cpu, xcr0, expected):
    assert eigen_cache_sizes(cpu) == expected
    info = derive(cpu, xcr0, environ={})
    assert (info.l1_bytes, info.l2_bytes, info.l3_bytes) == expected


def test_onednn_reads_the_l2_per_core():
    assert machine.onednn_l2_per_core(SAPPHIRE_RAPIDS) == 2 * 1024**2  # one core (two threads) per L2
    # Four cores (no SMT) sharing one 2 MiB L2, as Alder Lake's E-cores do: 512 KiB per core.
    cpu = intel(8, 2048)
    eax, ebx, ecx, edx = cpu[(4, 2)]
    cpu[(4, 2)] = (eax | (3 << 14), ebx, ecx, edx)
    assert machine.onednn_l2_per_core(cpu) == 512 * 1024
    assert machine.onednn_l2_per_core(intel(8, 1024)) == 1024**2
    assert derive(ZEN3, XCR0_AVX, environ={}).onednn_l2_bytes == machine.ONEDNN_DEFAULT_L2  # no leaf 0x8000001D given


def test_instruction_caches_are_not_counted_and_zero_sizes_take_eigens_defaults():
    cpu = intel(8, 1024)
    cpu[(4, 0)] = _leaf4(1, 2, 12, 64)  # only an instruction cache at level 1
    assert eigen_cache_sizes(cpu)[0] == 0
    assert derive(cpu, XCR0_AVX, environ={}).l1_bytes == 32 * 1024  # Eigen's defaultL1CacheSize


def test_old_intel_reads_leaf_2_descriptors():
    # max standard leaf 2: descriptors 0x2C (L1d 32 KiB), 0x7D (L2 2 MiB), 0x49 after an L2 (L3 4 MiB).
    leaf2 = (0x7D2C0001, 0, 0, 0x49)
    cpu = {(0, 0): _vendor_leaf("GenuineIntel", 2), (2, 0): leaf2}
    assert eigen_cache_sizes(cpu) == (32 * 1024, 2 * 1024**2, 4 * 1024**2)
    assert eigen_cache_sizes({(0, 0): _vendor_leaf("GenuineIntel", 1)}) == (0, 0, 0)


def test_no_cpuid_falls_back_to_eigens_defaults_and_no_features():
    info = derive(None, environ={})
    assert (info.l1_bytes, info.l2_bytes, info.l3_bytes) == machine.EIGEN_DEFAULT_CACHES
    assert not info.onednn_enabled and not info.supported  # TensorFlow itself needs AVX


@pytest.mark.parametrize("cpu, enabled, isa, path", [
    (SKYLAKE_SP, False, "avx512_core", "eigen-avx512"),  # AVX-512 without VNNI: TensorFlow's default is off
    (CASCADE_LAKE, True, "avx512_core_vnni", "onednn-avx512"),
    (ALDER_LAKE, True, "avx2_vnni", "onednn-avx2"),   # AVX-VNNI turns oneDNN on without AVX-512
    (ZEN3, False, "avx2", "eigen-avx2"),
])
def test_tensorflows_onednn_policy_and_onednns_isa(cpu, enabled, isa, path):
    xcr0 = XCR0_AVX512 if cpu in (SKYLAKE_SP, CASCADE_LAKE) else XCR0_AVX
    info = derive(cpu, xcr0, environ={})
    assert (info.onednn_enabled, info.onednn_isa, info.float32_products) == (enabled, isa, path)
    assert info.supported


def test_avx512_needs_the_os_to_save_zmm_state():
    assert "avx512f" in features(CASCADE_LAKE, XCR0_AVX512)
    without = features(CASCADE_LAKE, XCR0_AVX)
    assert "avx512f" not in without and "avx512_vnni" not in without and "avx2" in without
    info = derive(CASCADE_LAKE, XCR0_AVX, environ={})
    assert not info.onednn_enabled and info.onednn_isa == "avx2"


@pytest.mark.parametrize("value, enabled", [("0", False), ("false", False), ("FALSE", False), ("1", True),
                                            ("True", True), ("yes", None), ("", None)])
def test_tf_enable_onednn_opts_is_read_as_tensorflow_reads_it(value, enabled):
    for cpu, default in ((ZEN3, False), (ALDER_LAKE, True)):
        info = derive(cpu, XCR0_AVX, environ={"TF_ENABLE_ONEDNN_OPTS": value})
        assert info.onednn_enabled == (default if enabled is None else enabled)


@pytest.mark.parametrize("limit, isa", [
    ("AVX2", "avx2"), ("avx2", "avx2"), ("AVX512_CORE", "avx512_core"), ("avx512_core_vnni", "avx512_core_vnni"),
    ("AVX512_CORE_AMX", "avx10_1_512_amx"), ("AVX10_1_512", "avx10_1_512"), ("AVX", "avx"), ("SSE41", "sse41"),
    ("ALL", "avx10_1_512_amx"), ("nonsense", "avx10_1_512_amx"), ("AVX2_VNNI", "avx2_vnni"),
])
def test_onednn_max_cpu_isa_limits_the_isa(limit, isa):
    cpu_features = features(SAPPHIRE_RAPIDS, XCR0_SAPPHIRE_RAPIDS)
    assert onednn_isa(cpu_features, limit) == isa
    info = derive(SAPPHIRE_RAPIDS, XCR0_SAPPHIRE_RAPIDS, environ={"DNNL_MAX_CPU_ISA": limit})
    assert info.onednn_isa == isa  # the legacy DNNL_ prefix is read too


def test_paths_the_profile_does_not_reproduce_are_named():
    info = derive(SAPPHIRE_RAPIDS, XCR0_SAPPHIRE_RAPIDS, environ={"ONEDNN_MAX_CPU_ISA": "AVX"})
    assert info.float32_products == "onednn-avx" and not info.supported
    from gdcore.numerics import get_profile

    with pytest.raises(NotImplementedError, match="onednn-avx"):
        get_profile("tensorflow", cpu=info)


def test_tensorflows_custom_contraction_kernel_switch():
    assert derive(ZEN3, XCR0_AVX, environ={}).float32_products == "eigen-avx2"
    for value, path in (("0", "eigen-gebp"), ("false", "eigen-gebp"), ("False", "eigen-avx2"), ("1", "eigen-avx2")):
        info = derive(ZEN3, XCR0_AVX, environ={"TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL": value})
        assert info.float32_products == path, value


def test_intra_op_threads():
    assert derive(ZEN3, XCR0_AVX, environ={}, schedulable_cpus=4).intra_op_threads == 4
    assert derive(ZEN3, XCR0_AVX, environ={"TF_NUM_INTRAOP_THREADS": "1"}, schedulable_cpus=4).intra_op_threads == 1


def test_report_names_what_was_derived():
    text = str(derive(ALDER_LAKE, XCR0_AVX, environ={"TF_ENABLE_ONEDNN_OPTS": "0"}))
    assert "L1d 48 KiB" in text and "off (TF_ENABLE_ONEDNN_OPTS=0)" in text and "eigen" in text


# --- this machine, against the libraries themselves --------------------------------------


def _cpuid_works():
    try:
        machine.read_cpuid()
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _cpuid_works(), reason="CPUID cannot be executed on this machine")
def test_cpuid_agrees_with_the_linux_kernel_on_the_l1_size():
    info = machine.cpu_info()
    path = "/sys/devices/system/cpu/cpu0/cache"
    if info.vendor != "GenuineIntel" or not os.path.isdir(path):
        pytest.skip("the kernel reads Intel's leaf 4 as Eigen does; other vendors are compared by the live test")
    for index in sorted(os.listdir(path)):
        if not index.startswith("index"):
            continue
        read = lambda name: open(os.path.join(path, index, name)).read().strip()  # noqa: E731
        if read("level") == "1" and read("type") == "Data":
            assert info.l1_bytes == int(read("size").rstrip("K")) * 1024


_LIVE = """
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
os.environ["ONEDNN_VERBOSE"] = "1"
import numpy as np
import tensorflow as tf
from tensorflow.python.util import _pywrap_util_port
from gdcore.numerics import machine
print("tensorflow onednn", _pywrap_util_port.IsMklEnabled())
info = machine.cpu_info()
print("gdcore onednn", info.onednn_enabled)
print("gdcore isa", machine.ONEDNN_ISA_NAMES.get(info.onednn_isa, info.onednn_isa))
tf.linalg.matmul(np.ones((3, 2), np.float32), np.ones((2, 3), np.float32)).numpy()
"""


@pytest.mark.tensorflow
@pytest.mark.parametrize("environ", [
    pytest.param({}, id="default"),
    # the other code paths this CPU can be sent down (``-m slow`` selects them)
    pytest.param({"ONEDNN_MAX_CPU_ISA": "AVX2"}, id="avx2", marks=pytest.mark.slow),
    pytest.param({"TF_ENABLE_ONEDNN_OPTS": "0"}, id="onednn-off", marks=pytest.mark.slow),
    pytest.param({"TF_ENABLE_ONEDNN_OPTS": "1", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}, id="avx512_core",
                 marks=pytest.mark.slow),
])
def test_tensorflow_and_onednn_agree_with_the_derivation(environ):
    pytest.importorskip("tensorflow")
    env = {**os.environ, **environ}
    result = subprocess.run([sys.executable, "-c", _LIVE], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout + result.stderr
    tensorflow_says = re.search(r"tensorflow onednn (\w+)", out).group(1)
    assert re.search(r"gdcore onednn (\w+)", out).group(1) == tensorflow_says
    onednn_isa_line = re.search(r"onednn_verbose,.*info,cpu,isa:(.*)", out)
    if tensorflow_says == "True":
        assert onednn_isa_line, "oneDNN printed no ISA line"
        assert re.search(r"gdcore isa (.*)", out).group(1).strip() == onednn_isa_line.group(1).strip()
