r"""What TensorFlow's CPU kernels derive from the machine, derived here the same way.

TensorFlow's results depend on the CPU in four ways, each decided once per
process by one of its libraries. This module repeats each decision from the
same inputs (CPUID, XGETBV, the environment), so that the ``"tensorflow"``
numerics profile follows the code path TensorFlow takes on *this* machine:

Whether oneDNN runs the float32 products (``DefaultOneDnnPolicy`` in ``tensorflow/core/util/port.cc``)
    On Linux x86 TensorFlow enables its oneDNN ops by default only on CPUs with
    AVX512_VNNI, AVX512_BF16, AVX_VNNI, AMX_TILE, AMX_INT8 or AMX_BF16 (feature
    bits as ``tsl/platform/cpu_info.cc`` reads them: the AVX-512 ones only when
    the OS saves the ZMM state). ``TF_ENABLE_ONEDNN_OPTS`` overrides it
    (``0``/``false`` or ``1``/``true``, any case; other values keep the default).
    Without oneDNN every float32 product runs on Eigen, as float64 always does.
Which instruction set oneDNN generates its kernels for (``mayiuse`` in oneDNN's ``cpu_isa_traits.hpp``)
    The best of ``avx512_core_amx_fp16`` ... ``avx512_core`` ... ``avx2`` ...
    ``sse41`` that the CPU (through Xbyak's feature detection, which checks the
    OS-saved register state with XGETBV) supports and that the limit
    ``ONEDNN_MAX_CPU_ISA`` (or ``DNNL_MAX_CPU_ISA``; lower-cased; an ISA's bits
    must be a subset of the limit's) allows. For float32 products only the
    vector width matters: the ``avx512_core`` family (16 lanes) or the
    ``avx2`` family (8 lanes).
Eigen's cache sizes (``queryCacheSizes`` in ``Eigen/src/Core/util/Memory.h``, ``CacheSizes`` in ``GeneralBlockPanelKernel.h``)
    Intel (and unknown vendors): CPUID leaf 4, for each data or unified cache
    ``ways * partitions * line_size * sets`` (each field + 1) by level, when
    the highest standard leaf is at least 4 (leaf 2's descriptor bytes
    otherwise); AMD (``AuthenticAMD``, ``AMDisbetter!``): leaf 0x80000005
    ECX[31:24] KiB for L1 and leaf 0x80000006 ECX[31:16] KiB for L2,
    EDX[31:18] x 512 KiB for L3. A size that comes out 0 takes Eigen's x86
    default (32 KiB, 256 KiB, 2 MiB). The L1 size sets the depth blocking of
    Eigen's matrix products (:mod:`gdcore.numerics.eigen_products`), hence
    the order in which a float64 kernel gradient over a long batch is summed.
How many threads share one operation
    TensorFlow's intra-op thread pool has one thread per schedulable CPU
    (``sched_getaffinity``) unless ``TF_NUM_INTRAOP_THREADS`` says otherwise;
    Eigen and oneDNN split large operations between them.

:func:`cpu_info` reads all of this once and returns a :class:`CPUInfo`, which
prints as a short report (``print(gdcore.numerics.cpu_info())``).
:func:`derive` is the pure part: it takes the CPUID leaves, the XGETBV value
and the environment, so that other CPUs can be described and tested on this
one. CPUID is executed from a few bytes of machine code mapped executable
through :mod:`ctypes`; where that is impossible (another architecture, a
kernel that forbids executable mappings) :func:`cpu_info` says so and the
profile falls back to Eigen's defaults, which is what Eigen itself does
without CPUID.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import platform
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Mapping, NamedTuple

# Eigen's fallbacks on x86 when CPUID reports nothing (defaultL1CacheSize etc.).
EIGEN_DEFAULT_CACHES = (32 * 1024, 256 * 1024, 2 * 1024 * 1024)

Leaf = tuple[int, int, int, int]  # eax, ebx, ecx, edx


class Caches(NamedTuple):
    """What the compiled kernels need to know about the machine.

    ``l1``, ``l2``, ``l3``: Eigen's cache sizes in bytes (TensorFlow's oneDNN
    glue reads Eigen's ``l2`` too); ``threads``: TensorFlow's intra-op threads;
    ``onednn_l2``: the per-core L2 in bytes as oneDNN reads it (Xbyak).
    """

    l1: int
    l2: int
    l3: int
    threads: int
    onednn_l2: int


# --- reading CPUID -------------------------------------------------------------------

# System V x86-64: cpuid(leaf=edi, subleaf=esi, out=rdx) stores eax, ebx, ecx, edx at out (rbx is callee-saved).
_CPUID_CODE = bytes([
    0x53,                    # push rbx
    0x89, 0xF8,              # mov eax, edi
    0x89, 0xF1,              # mov ecx, esi
    0x49, 0x89, 0xD0,        # mov r8, rdx
    0x0F, 0xA2,              # cpuid
    0x41, 0x89, 0x00,        # mov [r8], eax
    0x41, 0x89, 0x58, 0x04,  # mov [r8+4], ebx
    0x41, 0x89, 0x48, 0x08,  # mov [r8+8], ecx
    0x41, 0x89, 0x50, 0x0C,  # mov [r8+12], edx
    0x5B,                    # pop rbx
    0xC3,                    # ret
])
# xgetbv(index=edi) -> edx:eax as one 64-bit value.
_XGETBV_CODE = bytes([
    0x89, 0xF9,              # mov ecx, edi
    0x0F, 0x01, 0xD0,        # xgetbv
    0x48, 0xC1, 0xE2, 0x20,  # shl rdx, 32
    0x48, 0x09, 0xD0,        # or rax, rdx
    0xC3,                    # ret
])


class _Instructions:
    """CPUID and XGETBV as Python callables (x86-64 only)."""

    def __init__(self):
        if platform.machine().lower() not in ("x86_64", "amd64"):
            raise OSError(f"CPUID is an x86-64 instruction; this machine is {platform.machine()!r}")
        self._page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        self._page.write(_CPUID_CODE)
        self._page.seek(64)
        self._page.write(_XGETBV_CODE)
        address = ctypes.addressof(ctypes.c_char.from_buffer(self._page))
        self._cpuid = ctypes.CFUNCTYPE(None, ctypes.c_uint32, ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint32 * 4))(address)
        self._xgetbv = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint32)(address + 64)
        self._out = (ctypes.c_uint32 * 4)()

    def cpuid(self, leaf: int, subleaf: int = 0) -> Leaf:
        self._cpuid(leaf, subleaf, ctypes.byref(self._out))
        return tuple(int(v) for v in self._out)

    def xgetbv(self) -> int:
        """XCR0 (only valid when CPUID.1:ECX.OSXSAVE is set)."""
        return int(self._xgetbv(0))


def read_cpuid() -> tuple[dict[tuple[int, int], Leaf], int]:
    """Every CPUID leaf the derivation reads, and XCR0 (0 if the OS does not enable XGETBV)."""
    machine = _Instructions()
    leaves = {}

    def get(leaf, subleaf=0):
        leaves[(leaf, subleaf)] = machine.cpuid(leaf, subleaf)
        return leaves[(leaf, subleaf)]

    max_standard = get(0)[0]
    if max_standard >= 1:
        get(1)
    if max_standard >= 2:
        get(2)
    if max_standard >= 4:
        for index in range(16):
            if get(4, index)[0] & 0x0F == 0:
                break
    if max_standard >= 7:
        if get(7, 0)[0] >= 1:
            get(7, 1)
    if max_standard >= 0xB:
        get(0xB, 0)
        get(0xB, 1)
    max_extended = get(0x80000000)[0]
    for leaf in range(0x80000001, min(max_extended, 0x80000006) + 1):
        get(leaf)
    if max_extended >= 0x8000001D:
        for index in range(4):
            get(0x8000001D, index)
    osxsave = max_standard >= 1 and (leaves[(1, 0)][2] >> 27) & 1
    return leaves, machine.xgetbv() if osxsave else 0


# --- the derivation (pure) -----------------------------------------------------------------

_INTEL = ("GenuineIntel",)
_AMD = ("AuthenticAMD", "AMDisbetter!")


def _vendor(leaf0: Leaf) -> str:
    return b"".join(v.to_bytes(4, "little") for v in (leaf0[1], leaf0[3], leaf0[2])).decode("latin-1")


def _brand(leaves) -> str:
    if (0x80000004, 0) not in leaves:
        return ""
    raw = b"".join(v.to_bytes(4, "little") for leaf in (0x80000002, 0x80000003, 0x80000004) for v in leaves[(leaf, 0)])
    return raw.split(b"\0")[0].decode("latin-1").strip()


def _bit(value: int, bit: int) -> bool:
    return bool((value >> bit) & 1)


def features(leaves: Mapping[tuple[int, int], Leaf], xcr0: int) -> frozenset[str]:
    """The CPU features TensorFlow's ``cpu_info.cc`` and oneDNN's Xbyak detect, by their lower-case names.

    AVX/FMA/AVX2 need the OS to save the XMM and YMM state (XCR0 bits 1, 2) and
    the AVX-512 features the opmask and ZMM state too (bits 5, 6, 7), as both
    libraries check; AVX_VNNI and the AMX bits are read as CPUID reports them.
    """
    zero = (0, 0, 0, 0)
    found = set()
    _, _, ecx1, edx1 = leaves.get((1, 0), zero)
    for name, bit in (("sse", 25), ("sse2", 26)):
        if _bit(edx1, bit):
            found.add(name)
    for name, bit in (("sse3", 0), ("ssse3", 9), ("sse4_1", 19), ("sse4_2", 20), ("hypervisor", 31)):
        if _bit(ecx1, bit):
            found.add(name)
    osxsave = _bit(ecx1, 27)
    os_avx = osxsave and (xcr0 & 0x6) == 0x6
    os_avx512 = osxsave and (xcr0 & 0xE6) == 0xE6
    if os_avx and _bit(ecx1, 28):
        found.add("avx")
    if os_avx and _bit(ecx1, 12):
        found.add("fma")
    _, ebx7, ecx7, edx7 = leaves.get((7, 0), zero)
    if "avx" in found and _bit(ebx7, 5):
        found.add("avx2")
    if os_avx512:
        for name, register, bit in (("avx512f", ebx7, 16), ("avx512dq", ebx7, 17), ("avx512cd", ebx7, 28),
                                    ("avx512bw", ebx7, 30), ("avx512vl", ebx7, 31), ("avx512_vnni", ecx7, 11),
                                    ("avx512_fp16", edx7, 23)):
            if _bit(register, bit):
                found.add(name)
    for name, bit in (("amx_bf16", 22), ("amx_tile", 24), ("amx_int8", 25)):
        if _bit(edx7, bit):
            found.add(name)
    eax71, _, _, edx71 = leaves.get((7, 1), zero)
    if _bit(eax71, 4):
        found.add("avx_vnni")
    if os_avx512 and _bit(eax71, 5):
        found.add("avx512_bf16")
    if _bit(eax71, 21):
        found.add("amx_fp16")
    if _bit(edx71, 4):
        found.add("avx_vnni_int8")
    if _bit(edx71, 5):
        found.add("avx_ne_convert")
    return frozenset(found)


def eigen_cache_sizes(leaves: Mapping[tuple[int, int], Leaf]) -> tuple[int, int, int]:
    """(L1, L2, L3) in bytes as Eigen's ``queryCacheSizes`` reads them, before the defaults for zeros."""
    zero = (0, 0, 0, 0)
    leaf0 = leaves.get((0, 0), zero)
    vendor, max_standard = _vendor(leaf0), leaf0[0]
    if vendor in _AMD:
        if leaves.get((0x80000000, 0), zero)[0] < 0x80000006:
            return 0, 0, 0
        l1 = (leaves[(0x80000005, 0)][2] >> 24) * 1024
        _, _, ecx, edx = leaves[(0x80000006, 0)]
        # Eigen's mask keeps EDX bits 18..27 only (an L3 above 512 MiB would wrap); kept as Eigen has it.
        return l1, (ecx >> 16) * 1024, ((edx & 0xFFFC000) >> 18) * 512 * 1024
    if max_standard >= 4:
        sizes = {1: 0, 2: 0, 3: 0}
        for index in range(16):
            eax, ebx, ecx, _ = leaves.get((4, index), zero)
            kind = eax & 0x0F
            if kind in (1, 3):  # data or unified
                level = (eax & 0xE0) >> 5
                size = (((ebx >> 22) & 0x3FF) + 1) * (((ebx >> 12) & 0x3FF) + 1) * ((ebx & 0xFFF) + 1) * (ecx + 1)
                if level in sizes:
                    sizes[level] = size
            if kind == 0:
                break
        return sizes[1], sizes[2], sizes[3]
    if max_standard >= 2:
        return _cache_descriptors(leaves.get((2, 0), zero))
    return 0, 0, 0


def onednn_l2_per_core(leaves: Mapping[tuple[int, int], Leaf]) -> int:
    """The L2 size per core in bytes as oneDNN's ``get_per_core_cache_size(2)`` reads it (0: unknown).

    Xbyak's ``setCacheHierarchy``: the size of the second data or unified
    cache of leaf 4 (Intel) or of leaf 0x8000001D subleaf 2 (AMD), divided by
    the number of cores sharing it, which is the logical processors sharing it
    (EAX[25:14] + 1, at most the core-level count of leaf 0xB) over the SMT
    width (leaf 0xB's SMT level; on Intel without leaf 0xB, the sharing count
    of the L1 data cache).
    """
    zero = (0, 0, 0, 0)
    leaf0 = leaves.get((0, 0), zero)
    vendor, max_standard = _vendor(leaf0), leaf0[0]
    if vendor not in _INTEL and vendor not in _AMD:
        return 0
    smt, logical = 0, 0
    if max_standard >= 0xB:
        counts = {}
        for index in range(2):
            _, ebx, ecx, _ = leaves.get((0xB, index), zero)
            level = (ecx >> 8) & 0xFF
            if level in (1, 2):
                counts[level] = ebx & 0xFFFF
        smt = max(1, counts.get(1, 0))
        logical = max(smt, counts.get(2, 0))

    def size_of(eax, ebx, ecx):
        return (((ebx >> 22) & 0x3FF) + 1) * (((ebx >> 12) & 0x3FF) + 1) * ((ebx & 0xFFF) + 1) * (ecx + 1)

    def sharing(eax, smt_width):
        actual = ((eax >> 14) & 0xFFF) + 1
        if logical:
            actual = min(actual, logical)
        return max(actual // smt_width, 1) if smt_width else 1

    if vendor in _AMD:
        if (0x8000001D, 2) not in leaves or smt == 0:
            return 0
        eax, ebx, ecx, _ = leaves[(0x8000001D, 2)]
        return size_of(eax, ebx, ecx) // sharing(eax, smt)
    levels = []
    for index in range(16):
        eax, ebx, ecx, _ = leaves.get((4, index), zero)
        kind = eax & 0x1F
        if kind == 0:
            break
        if kind in (1, 3):
            actual = ((eax >> 14) & 0xFFF) + 1
            if logical:
                actual = min(actual, logical)
            if kind == 1 and smt == 0:
                smt = actual
            levels.append(size_of(eax, ebx, ecx) // max(actual // max(smt, 1), 1))
    return levels[1] if len(levels) >= 2 else 0


# oneDNN's guess when Xbyak finds no caches (``get_per_core_cache_size``).
ONEDNN_DEFAULT_L2 = 512 * 1024


# CPUID leaf 2 descriptor bytes Eigen knows (queryCacheSizes_intel_codes): byte -> (level, KiB).
_DESCRIPTORS = {
    0x0A: (1, 8), 0x0C: (1, 16), 0x0E: (1, 24), 0x10: (1, 16), 0x15: (1, 16), 0x2C: (1, 32), 0x30: (1, 32),
    0x60: (1, 16), 0x66: (1, 8), 0x67: (1, 16), 0x68: (1, 32), 0x1A: (2, 96), 0x22: (3, 512), 0x23: (3, 1024),
    0x25: (3, 2048), 0x29: (3, 4096), 0x39: (2, 128), 0x3A: (2, 192), 0x3B: (2, 128), 0x3C: (2, 256),
    0x3D: (2, 384), 0x3E: (2, 512), 0x40: (2, 0), 0x41: (2, 128), 0x42: (2, 256), 0x43: (2, 512),
    0x44: (2, 1024), 0x45: (2, 2048), 0x46: (3, 4096), 0x47: (3, 8192), 0x48: (2, 3072), 0x4A: (3, 6144),
    0x4B: (3, 8192), 0x4C: (3, 12288), 0x4D: (3, 16384), 0x4E: (2, 6144), 0x78: (2, 1024), 0x79: (2, 128),
    0x7A: (2, 256), 0x7B: (2, 512), 0x7C: (2, 1024), 0x7D: (2, 2048), 0x7E: (2, 256), 0x7F: (2, 512),
    0x80: (2, 512), 0x81: (2, 128), 0x82: (2, 256), 0x83: (2, 512), 0x84: (2, 1024), 0x85: (2, 2048),
    0x86: (2, 512), 0x87: (2, 1024), 0x88: (3, 2048), 0x89: (3, 4096), 0x8A: (3, 8192), 0x8D: (3, 3072),
}


def _cache_descriptors(leaf2: Leaf) -> tuple[int, int, int]:
    """Eigen's ``queryCacheSizes_intel_codes``: the 14 descriptor bytes after the first two of leaf 2."""
    raw = b"".join(v.to_bytes(4, "little") for v in leaf2)[2:16]
    sizes = {1: 0, 2: 0, 3: 0}
    p2_core2 = False
    for byte in raw:
        if byte == 0x49:  # L3 of a P4, or the L2 of a Core 2
            if sizes[2] != 0:
                sizes[3] = 4096
            else:
                p2_core2 = True
                sizes[2] = sizes[3] = 4096
        elif byte in _DESCRIPTORS:
            level, kib = _DESCRIPTORS[byte]
            sizes[level] = kib
    if p2_core2 and sizes[2] == sizes[3]:
        sizes[3] = 0
    return sizes[1] * 1024, sizes[2] * 1024, sizes[3] * 1024


def _env_bool(value: str | None, default: bool) -> tuple[bool, bool]:
    """TensorFlow's ``ReadBoolFromEnvVar``: (value, whether the variable decided it)."""
    if value is None:
        return default, False
    lowered = value.lower()
    if lowered in ("0", "false"):
        return False, True
    if lowered in ("1", "true"):
        return True, True
    return default, False


_ONEDNN_DEFAULT_FEATURES = ("avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")

# oneDNN's cpu_isa_t bit sets (cpu_isa_traits.hpp), best first, and what each requires of the CPU.
_XMM, _YMM, _ZMM, _AMX_TILE, _EVEX, _AVX2, _VEX_VNNI, _VEX_VNNI_2 = (1 << 4, 1 << 5, 1 << 6, 1 << 7, 1 << 8, 1 << 9,
                                                                   1 << 10, 1 << 11)
_EVEX_VNNI, _EVEX_BF16, _EVEX_FP16, _AMX_INT8, _AMX_BF16, _AMX_FP16 = (1 << 12, 1 << 13, 1 << 14, 1 << 15, 1 << 16,
                                                                      1 << 17)
_ISA_BITS = {"sse41": _XMM}
_ISA_BITS["avx"] = _YMM | _ISA_BITS["sse41"]
_ISA_BITS["avx2"] = _AVX2 | _ISA_BITS["avx"]
_ISA_BITS["avx2_vnni"] = _VEX_VNNI | _ISA_BITS["avx2"]
_ISA_BITS["avx2_vnni_2"] = _VEX_VNNI_2 | _ISA_BITS["avx2_vnni"]
_ISA_BITS["avx512_core"] = _EVEX | _ZMM | _ISA_BITS["avx2"]
_ISA_BITS["avx512_core_vnni"] = _EVEX_VNNI | _ISA_BITS["avx512_core"]
_ISA_BITS["avx512_core_bf16"] = _EVEX_BF16 | _ISA_BITS["avx512_core_vnni"]
_ISA_BITS["avx10_1_512"] = 1 | _AVX2 | _VEX_VNNI | _EVEX | _EVEX_VNNI | _EVEX_BF16 | _EVEX_FP16 | _ZMM | _YMM | _XMM
_ISA_BITS["avx10_1_512_amx"] = _ISA_BITS["avx10_1_512"] | _AMX_INT8 | _AMX_BF16 | _AMX_TILE
_ISA_BITS["avx10_1_512_amx_fp16"] = _ISA_BITS["avx10_1_512_amx"] | _AMX_FP16
_ISA_ALL = 0xFFFFFFFF & ~(1 << 31)
_ISA_ALIASES = {"avx512_core_fp16": "avx10_1_512", "avx512_core_amx": "avx10_1_512_amx",
                "avx512_core_amx_fp16": "avx10_1_512_amx_fp16"}
_AVX512_CORE = ("avx512f", "avx512bw", "avx512vl", "avx512dq")
_ISA_REQUIRES = {
    "avx10_1_512_amx_fp16": _AVX512_CORE + ("avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile",
                                            "amx_int8", "amx_bf16", "amx_fp16"),
    "avx10_1_512_amx": _AVX512_CORE + ("avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_int8",
                                       "amx_bf16"),
    "avx10_1_512": _AVX512_CORE + ("avx512_vnni", "avx512_bf16", "avx512_fp16", "avx2", "avx_vnni"),
    "avx512_core_bf16": _AVX512_CORE + ("avx512_vnni", "avx512_bf16"),
    "avx512_core_vnni": _AVX512_CORE + ("avx512_vnni",),
    "avx512_core": _AVX512_CORE,
    "avx2_vnni_2": ("avx2", "avx_vnni", "avx_vnni_int8", "avx_ne_convert"),
    "avx2_vnni": ("avx2", "avx_vnni"),
    "avx2": ("avx2",),
    "avx": ("avx",),
    "sse41": ("sse4_1",),
}


def onednn_isa(cpu_features: frozenset[str], max_cpu_isa: str | None = None) -> str:
    """The best ISA oneDNN's ``mayiuse`` grants: supported by the CPU and within ``ONEDNN_MAX_CPU_ISA``.

    ``max_cpu_isa`` is the variable's value (``None``, ``""``, ``"all"`` or an
    unknown name mean no limit, as in oneDNN's ``init_max_cpu_isa``).
    Returns one of oneDNN's names (``"avx10_1_512_amx"`` is the one oneDNN
    also calls ``avx512_core_amx``), or ``"none"``.
    """
    limit = (max_cpu_isa or "").lower()
    limit = _ISA_ALIASES.get(limit, limit)
    mask = _ISA_BITS.get(limit, _ISA_ALL) if limit not in ("", "all") else _ISA_ALL
    if limit == "default":
        mask = 0
    for isa, requires in _ISA_REQUIRES.items():
        if _ISA_BITS[isa] & mask == _ISA_BITS[isa] and all(name in cpu_features for name in requires):
            return isa
    return "none"


# How oneDNN names each ISA in its verbose output (``isa_info_t::get_name`` in cpu_isa_traits.cpp).
ONEDNN_ISA_NAMES = {
    "avx10_1_512_amx_fp16": "Intel AVX-512 with float16, Intel DL Boost and bfloat16 support and Intel AMX with "
                            "bfloat16, float16 and 8-bit integer support",
    "avx10_1_512_amx": "Intel AVX-512 with float16, Intel DL Boost and bfloat16 support and Intel AMX with bfloat16 "
                       "and 8-bit integer support",
    "avx10_1_512": "Intel AVX-512 with float16, Intel DL Boost and bfloat16 support ",
    "avx512_core_bf16": "Intel AVX-512 with Intel DL Boost and bfloat16 support",
    "avx512_core_vnni": "Intel AVX-512 with Intel DL Boost",
    "avx512_core": "Intel AVX-512 with AVX512BW, AVX512VL, and AVX512DQ extensions",
    "avx2_vnni_2": "Intel AVX2 with Intel DL Boost, float16 and bfloat16 support",
    "avx2_vnni": "Intel AVX2 with Intel DL Boost",
    "avx2": "Intel AVX2",
    "avx": "Intel AVX",
    "sse41": "Intel SSE4.1",
}


def onednn_vector_family(isa: str) -> str:
    """``"avx512"`` for the ``avx512_core`` family and above, ``"avx2"`` for ``avx2*``, else the ISA itself."""
    if isa.startswith(("avx512", "avx10")):
        return "avx512"
    if isa.startswith("avx2"):
        return "avx2"
    return isa


# TensorFlow's float32 code paths the "tensorflow" profile reproduces (CPUInfo.float32_products).
FLOAT32_PATHS = ("onednn-avx512", "onednn-avx2", "eigen-avx512", "eigen-avx2", "eigen-gebp")


# --- the report --------------------------------------------------------------------------


@dataclass(frozen=True)
class CPUInfo:
    """What TensorFlow's kernels derive from this machine (see the module docstring).

    ``float32_products`` names the code path TensorFlow runs float32 matrix
    products on: ``"onednn-avx512"`` / ``"onednn-avx2"`` (oneDNN's ops, kernels
    for that vector family), ``"eigen-avx512"`` / ``"eigen-avx2"`` (Eigen's
    dispatch, with oneDNN's sgemm of that family inside contractions: TensorFlow's
    custom contraction kernel), ``"eigen-gebp"`` (Eigen alone, with
    ``TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL=0``), or another string for a path
    the ``"tensorflow"`` profile does not reproduce (``supported`` is then false).
    """

    vendor: str
    brand: str
    features: frozenset[str]
    l1_bytes: int
    l2_bytes: int
    l3_bytes: int
    cache_source: str
    onednn_l2_bytes: int
    onednn_enabled: bool
    onednn_reason: str
    onednn_isa: str
    onednn_isa_limit: str | None
    intra_op_threads: int
    threads_source: str
    custom_contraction_kernel: bool = True
    notes: tuple[str, ...] = field(default=())

    @property
    def float32_products(self) -> str:
        family = onednn_vector_family(self.onednn_isa)
        if self.onednn_enabled:
            return f"onednn-{family}"
        return f"eigen-{family}" if self.custom_contraction_kernel else "eigen-gebp"

    @property
    def supported(self) -> bool:
        return self.float32_products in FLOAT32_PATHS

    @property
    def caches(self) -> Caches:
        """The numbers the compiled kernels take (:class:`Caches`)."""
        return Caches(self.l1_bytes, self.l2_bytes, self.l3_bytes, self.intra_op_threads, self.onednn_l2_bytes)

    def summary(self) -> str:
        """One line: the CPU, its caches as Eigen sees them, the float32 path and the thread count."""
        return (f"{self.brand or self.vendor}: L1d {self.l1_bytes // 1024} KiB, L2 {_size(self.l2_bytes)}, "
                f"L3 {_size(self.l3_bytes)} (Eigen, {self.cache_source}); float32 products on {self.float32_products} "
                f"({self.onednn_reason}); {self.intra_op_threads} intra-op thread(s)")

    def __str__(self) -> str:
        isa = f"{self.onednn_isa}" + (f" (ONEDNN_MAX_CPU_ISA={self.onednn_isa_limit})" if self.onednn_isa_limit else "")
        simd = ", ".join(sorted(f for f in self.features if f.startswith(("avx", "fma", "amx"))))
        lines = [
            f"CPU                   {self.brand or '?'} ({self.vendor or '?'})",
            f"SIMD features         {simd or 'none'}",
            f"Eigen's cache sizes   L1d {_size(self.l1_bytes)}, L2 {_size(self.l2_bytes)}, L3 {_size(self.l3_bytes)} "
            f"({self.cache_source})",
            f"oneDNN ops            {'on' if self.onednn_enabled else 'off'} ({self.onednn_reason})",
            f"oneDNN's L2 per core  {_size(self.onednn_l2_bytes)}",
            f"oneDNN ISA            {isa}",
            f"float32 products      {self.float32_products}" + ("" if self.supported else "  (not reproduced)")
            + ("" if self.custom_contraction_kernel else " (TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL off)"),
            f"intra-op threads      {self.intra_op_threads} ({self.threads_source})",
        ]
        lines += [f"note                  {note}" for note in self.notes]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return "```\n" + str(self) + "\n```"


def _size(n_bytes: int) -> str:
    if n_bytes >= 1024 * 1024 and n_bytes % (1024 * 1024) == 0:
        return f"{n_bytes // (1024 * 1024)} MiB"
    return f"{n_bytes // 1024} KiB"


def derive(leaves: Mapping[tuple[int, int], Leaf] | None, xcr0: int = 0, environ: Mapping[str, str] | None = None,
           schedulable_cpus: int = 1, notes: tuple[str, ...] = ()) -> CPUInfo:
    """:class:`CPUInfo` from CPUID leaves (``{(leaf, subleaf): (eax, ebx, ecx, edx)}``), XCR0 and the environment.

    ``leaves=None`` means CPUID could not be executed: Eigen then falls back to
    its defaults and TensorFlow sees no CPU feature (oneDNN off unless forced).
    """
    environ = os.environ if environ is None else environ
    if leaves is None:
        vendor = brand = ""
        cpu_features = frozenset()
        sizes = (0, 0, 0)
        onednn_l2 = 0
        source = "no CPUID: Eigen's defaults"
    else:
        vendor, brand = _vendor(leaves.get((0, 0), (0, 0, 0, 0))), _brand(leaves)
        cpu_features = features(leaves, xcr0)
        sizes = eigen_cache_sizes(leaves)
        onednn_l2 = onednn_l2_per_core(leaves)
        source = "CPUID " + ("0x80000005/6" if vendor in _AMD else "leaf 4" if leaves.get((0, 0), (0,))[0] >= 4
                             else "leaf 2")
    l1, l2, l3 = (size if size > 0 else default for size, default in zip(sizes, EIGEN_DEFAULT_CACHES))
    if 0 in sizes:
        source += ", Eigen's default for " + ", ".join(name for name, size in zip(("L1", "L2", "L3"), sizes) if size == 0)
    default_on = [name for name in _ONEDNN_DEFAULT_FEATURES if name in cpu_features]
    enabled, forced = _env_bool(environ.get("TF_ENABLE_ONEDNN_OPTS"), bool(default_on))
    if forced:
        reason = f"TF_ENABLE_ONEDNN_OPTS={environ['TF_ENABLE_ONEDNN_OPTS']}"
    elif default_on:
        reason = f"TensorFlow's default on a CPU with {default_on[0]}"
    else:
        reason = "TensorFlow's default on a CPU without " + "/".join(_ONEDNN_DEFAULT_FEATURES)
    limit = environ.get("ONEDNN_MAX_CPU_ISA") or environ.get("DNNL_MAX_CPU_ISA") or None
    configured = environ.get("TF_NUM_INTRAOP_THREADS", "")
    if configured.strip().isdigit() and int(configured) > 0:
        threads, threads_source = int(configured), "TF_NUM_INTRAOP_THREADS"
    else:
        threads, threads_source = max(1, schedulable_cpus), "one per schedulable CPU, TensorFlow's default"
    # TensorFlow's UseCustomContractionKernels: only the exact strings "false" and "0" turn it off.
    custom = environ.get("TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL") not in ("false", "0")
    return CPUInfo(vendor, brand, cpu_features, l1, l2, l3, source, onednn_l2 or ONEDNN_DEFAULT_L2, enabled, reason,
                   onednn_isa(cpu_features, limit), limit, threads, threads_source, custom, tuple(notes))


@lru_cache(maxsize=1)
def cpu_info() -> CPUInfo:
    """This machine, as TensorFlow's kernels see it (read once per process; see the module docstring)."""
    notes = []
    try:
        leaves, xcr0 = read_cpuid()
    except (OSError, ValueError, AttributeError) as error:
        leaves, xcr0 = None, 0
        notes.append(f"CPUID not available ({error})")
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return derive(leaves, xcr0, os.environ, cpus, tuple(notes))
