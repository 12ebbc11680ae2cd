r"""Eigen's matrix products (float32 and float64), in the order TensorFlow's CPU kernels add the terms.

TensorFlow computes every float64 ``MatMul`` with Eigen (oneDNN has no float64
GEMM), and every float32 one too when oneDNN is off: TensorFlow enables it by
default only on CPUs with AVX512_VNNI, AVX512_BF16, AVX_VNNI or AMX
(``DefaultOneDnnPolicy``, ``tensorflow/core/util/port.cc``; forced off by
``TF_ENABLE_ONEDNN_OPTS=0``), so on AMD Zen 2/3 and Intel Haswell/Skylake
float32 runs here too. The wheel's Eigen is compiled for AVX *without* FMA: a
packet holds :math:`P = 8` floats or :math:`P = 4` doubles and every
multiply-add rounds twice, :math:`\mathrm{fl}(\mathrm{fl}(a b) + c)`. Which
routine runs, and so in which order the products are added, depends on the
shapes (:func:`launch_matmul`, TensorFlow's ``LaunchBatchMatMul``) and, for the
tensor contraction, on the CPU's cache sizes, which Eigen reads with CPUID at
run time (``queryCacheSizes`` in ``Eigen/src/Core/util/Memory.h``, kept by
``manage_caching_sizes`` in ``Eigen/src/Core/products/GeneralBlockPanelKernel.h``;
a size CPUID does not report falls back to ``DEFAULT_L1_CACHE_BYTES`` etc.).
Every routine that depends on them takes ``l1`` (and ``l2``, ``l3`` where they
matter) in bytes; the float32 contraction also depends on the instruction set
oneDNN generates its kernels for (``onednn_family``). Each routine is a NumPy
function and a Numba ``*_loop`` twin writing into a preallocated ``out``
(``tests/test_eigen_products.py`` checks that both give the same bits and
match TensorFlow).

Notation: a product :math:`C = A B` with :math:`A` of shape (m, d) and
:math:`B` of shape (d, n); :math:`p_k = \mathrm{fl}(A_{ik} B_{kj})` are the
rounded products of one output :math:`C_{ij}`, and "sequential" means
:math:`(\dots((0 + p_0) + p_1) + \dots) + p_{d-1}`. "FMA-sequential" is
:math:`\mathrm{fma}(a_{d-1}, b_{d-1}, \dots \mathrm{fma}(a_1, b_1, p_0))`
(one rounding per term; :func:`gdcore.numerics.onednn.fma`). A final ``0 + c``
(Eigen adds each result into a zeroed output) only turns -0 into +0, and is
kept. "Halving" reduces a packet by adding its upper half onto its lower half
until one lane is left: :math:`(l_0 + l_2) + (l_1 + l_3)` for 4 lanes,
:math:`((l_0 + l_4) + (l_2 + l_6)) + ((l_1 + l_5) + (l_3 + l_7))` for 8
(``predux``, ``Eigen/src/Core/arch/AVX/Reductions.h`` and ``SSE/Reductions.h``).

GEBP (``gebp_kernel``, ``Eigen/src/Core/products/GeneralBlockPanelKernel.h``),
Eigen's tensor contraction: every float64 contraction, float32 only with
``TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL=0`` (see the next rule)
    ``gebp_traits`` without FMA: register blocks of ``mr = 2P`` rows (two
    packets; the three-packet kernel needs ``EIGEN_HAS_SINGLE_INSTRUCTION_MADD``)
    and ``nr = 4`` columns; half packets of ``P/2`` (``Packet2d``,
    ``Packet4f``), no quarter packet (``Packet4f`` is its own half). Rows in
    whole ``2P``-row blocks: sequential. Then one ``P``-row packet and one
    ``P/2``-row half packet if the remaining rows allow: for columns in whole
    groups of 4 they accumulate even k in one register and odd k in another
    over the first ``d & ~7`` terms ("peeled" loop, ``pk = 8``), add the two,
    then add the remaining terms in order; the last ``n % 4`` columns are
    sequential. The last ``m mod (P/2)`` single rows (at most 1 double, 3
    floats), for columns in groups of 4, run the swapped kernel (the packed
    rhs as a packet of ``P`` = ``s = P/4`` consecutive k times 4 columns):
    accumulator ``c`` in ``0..3``, sub-lane ``t`` in ``0..s-1`` takes the
    terms ``k = 4s q + s c + t`` for the first ``4s (d // 4s)`` terms; the four
    accumulators are combined :math:`(c_0 + c_1) + (c_2 + c_3)` per sub-lane;
    the next pairs (float: ``2 ((d mod 8) // 2)`` terms) go to sub-lane
    ``k mod s``; float adds its two sub-lanes (``predux_half``), then the
    remaining term, in order. (Double: four accumulators over ``k mod 4``,
    combined :math:`(c_0 + c_1) + (c_2 + c_3)`, then the rest; float: eight
    lanes :math:`L_r` over ``k mod 8``, :math:`((L_0 + L_2) + (L_4 + L_6)) +
    ((L_1 + L_3) + (L_5 + L_7))` after adding the next pairs to the even and
    odd sides, then the last odd term.) Other columns of those rows:
    sequential. The depth is split into blocks of ``kc`` terms
    (:func:`depth_block_size`); each block is a GEBP call starting from zero
    and its result is added to the output.
Float32 contraction with TensorFlow's custom kernel (the default)
    The wheel defines ``TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL`` and
    ``TENSORFLOW_USE_MKLDNN_CONTRACTION_KERNEL``
    (``xla/tsl/framework/contraction/eigen_contraction_kernel.h``): a float32
    contraction packs Eigen's blocks and multiplies them with oneDNN's
    ``dnnl_sgemm`` (FMA, run-time generated for the CPU), unless the
    environment variable ``TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL`` is
    ``false``/``0``. Blocking (``TensorContractionBlocking<float, ...>`` in that
    header): Eigen's ``kc, mc, nc`` (:func:`blocking_sizes`), then
    ``mc = min(m, 48 ceil(floor(1.5 mc) / 48))``, ``nc = min(n, 24 ceil(nc / 24))``
    and the depth cut into ``S = ceil(d / kc)`` slices of
    ``kc = min(d, 8 ceil(floor(d / S) / 8))`` terms. For every block of
    ``mc`` rows and every slice ``dnnl_sgemm`` runs with ``beta = 0`` on the
    first slice and ``beta = 1`` after. Inside it (oneDNN's x64 GEMM driver,
    ``src/cpu/x64/gemm/gemm_driver.cpp`` and ``gemv_driver.cpp``, whatever the
    instruction set): a block of one column (``n = 1``, a last batch block of
    one row; checked first) is ``jump_to_gemv``'s GEMV, a single FMA chain
    through every slice starting from 0; a block of one row (``m = 1``, the
    units of a one-unit layer) is the transposed GEMV, the matrix-vector tree
    of :mod:`gdcore.numerics.onednn` (:func:`onednn.gemv_tree`) with the output
    as the first addend (:math:`((((y + s_{lanes}) + s_8) + s_4) + s_2) +
    p_{d-1}`, ``y = 0`` on the first slice);
    any other block runs the no-copy SGEMM
    (``nocopy_checker_*`` picks it whenever :math:`1/m + 1/n` is at least
    0.00196 / 0.0038 for avx512 / avx2, i.e. always for m <= 256; larger
    blocks can take the copy-based kernels, not modelled here), whose order
    depends on the vector family oneDNN generates kernels for
    (``onednn_family``):

    ``"avx512"`` (``jit_avx512_common_gemm_f32.cpp``; ``avx512_core`` and above)
        FMA-sequential within depth blocks of 384 (``onednn.depth_blocks``:
        384 while at least 768 terms remain, then two halves, the first one
        larger), the first block stored, the next ones added to the output
        in order (:math:`((s_0 + s_1) + s_2) \dots` across blocks and slices).
    ``"avx2"`` (``jit_avx_gemm_f32.cpp``; AMD Zen 2/3, Intel Haswell to Skylake client)
        Depth blocks of 256 (same halving rule), rows in driver blocks of
        4032 and columns in blocks of 48 (``>= 2B``: ``B``; more than
        ``1.5 B``: two halves), each tiled by the kernel into 16 rows (a
        remainder of 9 to 15 rows is a masked 16-row tile, of 1 to 8 an
        8-row tile) by 6 columns (the remainder one tile of 1 to 5). Tiles
        of 16 rows by 4 to 6 columns are FMA-sequential from 0; all others
        accumulate even and odd k in two registers over the first
        ``2 (d // 2)`` terms of the block, add them (even + odd) and then
        the last term if d is odd; tiles of 3 or more columns use FMA,
        tiles of 1 or 2 columns multiply and add separately
        (``kernel_16x2``, ``kernel_8x1``, ... pass ``useFma = false``).
        Blocks are added to the output as for ``"avx512"``.
Row-major GEMV (``general_matrix_vector_product<..., RowMajor, ...>``,
``Eigen/src/Core/products/GeneralMatrixVector.h``)
    Rows are taken 8 (only if a row has at most ``32000`` bytes), then 4,
    then 2 at a time while enough remain, then one at a time. Every row
    accumulates P lanes over the first ``P (d // P)`` terms (lane l holds the
    terms k = l mod P, sequential), reduces them by halving, and adds the
    remaining terms in order. Single rows in addition sum the next
    ``P/2`` terms if that many remain in a half packet, reduce it by halving
    and add it (even when empty) before the last terms.
Column-major GEMV (``general_matrix_vector_product<..., ColMajor, ...>``)
    Sequential, in blocks of terms (16, or 4 if a column has ``32000`` bytes
    or more) when :math:`d \ge 128`, each block from zero, added to the output.
Lazy (coefficient-based) product (``generic_product_impl``, ``GeneralProduct.h``)
    For :math:`d + m + n < 20` Eigen evaluates each coefficient as a dot
    product: sequential *without* the leading zero, except when both operands
    are contiguous along d (``A`` row-major and ``B`` column-major), where the
    dot is Eigen's vectorised ``redux`` (``Eigen/src/Core/Redux.h``): two
    packet accumulators over alternate packets of P, added, plus one more
    packet if the count of whole packets is odd, reduced by halving, then the
    last ``d % P`` terms in order. Fewer than P terms: sequential.
Dot product (``inner_product_impl``, ``Eigen/src/Core/InnerProduct.h``; a 1 x 1 result outside the lazy range)
    Sequential without the leading zero, except with both operands contiguous,
    where the vectorised inner product runs: packets :math:`P_0, P_1, P_2,
    P_3` start four accumulators, packet :math:`4q + r` is added to
    accumulator r for every whole group of four, the remaining 1 to 3 packets
    go to accumulators 0, 1, 2; then :math:`a_0 + (a_1 + (a_2 + a_3))`
    (only the accumulators that exist), reduced by halving, then the last
    ``d % P`` terms in order. Fewer than P terms: sequential.

Blocking (``evaluateProductBlockingSizesHeuristic``, single-threaded branch;
:func:`blocking_sizes`)
    ``kc`` depends on ``l1`` only (used as read: the wheel is compiled
    without ``EIGEN_VECTORIZE_AVX512``, which would quadruple it): no
    blocking if :math:`\max(d, m, n) < 48`;
    otherwise ``max_kc = ((l1 - mr nr s) // ((mr + nr) s)) & ~7`` with ``s``
    the item size (``mr nr s = 256``; ``(mr + nr) s`` = 96 double, 80 float),
    and ``kc = d`` if ``d <= max_kc``, else ``max_kc`` if it divides d, else
    ``max_kc - 8 ((max_kc - 1 - d % max_kc) // (8 (d // max_kc + 1)))``.
    The row and column blocks ``mc``, ``nc`` depend on ``l1``, ``l2``, ``l3``
    (and a fixed 1.5 MB "actual L2"). They cannot change GEBP's order: a
    column block is a multiple of ``nr`` (so the groups of 4 stay the same)
    and a row block is a multiple of ``mr`` (so only the last block has
    remainder rows, the same ones) whenever it is smaller than the matrix;
    the only exception, ``0 < mc <= mr``, needs ``d >= l1 / 192`` with
    ``d n s <= 1024`` (only ``n = 1``, where the contraction runs a GEMV, for an
    L1 of 24 KiB or more) or ``d >= l2 / 192`` with ``d <= max_kc``, which no
    cache size makes possible (``tests/test_eigen_products.py`` checks the
    shapes B <= 10000, K, N <= 256). For the float32 custom kernel they do
    matter, through the refined ``mc``/``nc``: a block of one column (a last
    batch block of one row) takes the FMA chain, so :func:`onednn_contraction`
    takes ``l1``, ``l2`` and ``l3``. Such blocks occur in a few forward products in
    a thousand (B <= 10000, K, N <= 256, 48 KiB L1; e.g. B = 49, K = 128,
    N = 64: blocks of 48 + 1 rows; B = 289, K = 128, N <= 17: 3 * 96 + 1).
    Blocks of one row occur only for one unit.

Thread pool: the rules are those of one thread. TensorFlow's contraction runs
on one thread while Eigen's cost model (``TensorContractionThreadPool.h``) says
so; larger products are split between threads with other blocks (or by depth)
and are not reproduced. Measured with 2 intra-op threads on the grid
B in (1, 2, 3, 7, 10, 11, 15, 16, 17, 20, 33, 100, 257, 385, 768, 769, 1000,
2000), K in (1, 3, 8, 16, 17, 64), N in (1, 2, 3, 7, 8, 16, 17, 64): 28 of the
864 float64 kernel gradients (B >= 385 with K or N = 64, e.g. B = 385,
K = N = 64: up to 2 * 10^4 ulp) and 10 float32 ones (B >= 768, e.g.
B = 768, K = N = 64); with the ``"avx2"`` SGEMM also 6 forward products and
6 input gradients (B = 385 or 769 with K = N = 64, B = 2000 with K or N = 64:
the threads' column blocks change the kernel's tiles). With one intra-op
thread every rule holds on the whole grid.
"""

import numpy as np
from numba import njit, types
from numba.extending import overload

from gdcore._dtype import cast, jitable
from gdcore.numerics.onednn import DEPTH_BLOCK, fma

_jit = njit(cache=True, error_model="numpy", nogil=True)
# Per-element helpers of the products are inlined into their loop: a call per output element (and the reference
# counting of its array arguments) cost more than the element's sum.
_inline = njit(cache=True, error_model="numpy", nogil=True, inline="always")

# Eigen's fallbacks when CPUID reports no size (defaultL1CacheSize etc., x86).
DEFAULT_L1_CACHE_BYTES = 32 * 1024
DEFAULT_L2_CACHE_BYTES = 256 * 1024
DEFAULT_L3_CACHE_BYTES = 2 * 1024 * 1024
# The heuristic's fixed second-level budget ("actual_l2"), whatever the CPU.
_ACTUAL_L2_BYTES = 1572864
# AVX: 32-byte packets; P = 32 // itemsize.
_PACKET_BYTES = 32
GEBP_COLS = 4  # nr
PEEL = 8  # pk: the depth loop is unrolled by 8
# Row-major GEMV takes rows 8 at a time only below this row size in bytes; column-major
# GEMV blocks its depth by 16 (else 4) below this column size.
_GEMV_BLOCK_BYTES = 32000
_GEMV_COL_BLOCK_DEPTH = 128
# Below this d + m + n Eigen's Matrix product uses the coefficient-based ("lazy") product.
LAZY_PRODUCT_THRESHOLD = 20
# oneDNN's no-copy SGEMM: depth block (avx512_core: jit_avx512_common_gemm_f32; avx2:
# jit_avx_gemm_f32, whose driver also blocks rows by 4032 and columns by 48 and whose kernel
# tiles them by 16 (or 8) x 6).
_AVX512_DEPTH_BLOCK = DEPTH_BLOCK
_AVX2_DEPTH_BLOCK = 256
ONEDNN_FAMILIES = ("avx512", "avx2")
_AVX2_BLOCK_ROWS = 4032
_AVX2_BLOCK_COLS = 48
_AVX2_TILE_ROWS = 16
_AVX2_TILE_COLS = 6
# TensorFlow's custom contraction kernel blocking (eigen_contraction_kernel.h).
_CUSTOM_SCALE_M = 1.5
_CUSTOM_UNROLL_M = 48
_CUSTOM_UNROLL_N = 24


# --- blocking ---------------------------------------------------------------------


def _itemsize(dtype) -> int:
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype.itemsize


def _check_cache_sizes(l1, l2=None, l3=None):
    for name, value in (("l1", l1), ("l2", l2), ("l3", l3)):
        if value is not None and (not isinstance(value, (int, np.integer)) or value <= 0):
            raise ValueError(f"{name} must be a positive number of bytes (int), got {value!r}")


def depth_block_size(depth: int, rows: int, cols: int, l1: int, dtype=np.float64) -> int:
    """``kc``: how many terms of the depth one GEBP call sums (single-threaded contraction).

    Eigen's ``evaluateProductBlockingSizesHeuristic`` (module docstring,
    "Blocking"): ``depth`` if :math:`\\max(d, m, n) < 48`, else with
    ``max_kc = ((l1 - 256) // k_div) & ~7`` (``k_div`` = 96 for float64, 80
    for float32; 336 / 504 for a 32 / 48 KiB L1 in float64, 400 / 608 in
    float32) ``kc = depth`` if ``depth <= max_kc``, ``max_kc`` if it divides
    ``depth``, else
    ``max_kc - 8 * ((max_kc - 1 - depth % max_kc) // (8 * (depth // max_kc + 1)))``,
    which makes the last block as large as possible.

    Parameters
    ----------
    depth, rows, cols : int
        d, m, n of Eigen's (column-major) product.
    l1 : int
        L1 data cache size in bytes, as Eigen reads it from CPUID.
    dtype : float32 or float64
    """
    _check_cache_sizes(l1)
    return int(_depth_block_size(depth, rows, cols, l1, _itemsize(dtype)))


@jitable
def _max_depth_block(l1, itemsize):
    mr = 2 * (_PACKET_BYTES // itemsize)
    k_sub = mr * GEBP_COLS * itemsize
    k_div = (mr + GEBP_COLS) * itemsize
    return max(((l1 - k_sub) // k_div) & ~(PEEL - 1), 1)


@jitable
def _depth_block_size(depth, rows, cols, l1, itemsize):
    if max(depth, max(rows, cols)) < 48:
        return depth
    max_kc = _max_depth_block(l1, itemsize)
    if depth <= max_kc:
        return depth
    if depth % max_kc == 0:
        return max_kc
    return max_kc - PEEL * ((max_kc - 1 - depth % max_kc) // (PEEL * (depth // max_kc + 1)))


@jitable
def _blocking_sizes(depth, rows, cols, l1, l2, l3, itemsize, custom_kernel):
    """(kc, mc, nc) of ``TensorContractionBlocking`` for one thread (see :func:`blocking_sizes`)."""
    mr = 2 * (_PACKET_BYTES // itemsize)
    nr = GEBP_COLS
    k, m, n = depth, rows, cols
    if max(k, max(m, n)) >= 48:
        max_kc = _max_depth_block(l1, itemsize)
        k = _depth_block_size(depth, rows, cols, l1, itemsize)
        k_sub = mr * nr * itemsize
        remaining_l1 = l1 - k_sub - m * k * itemsize
        if remaining_l1 >= nr * itemsize * k:
            max_nc = remaining_l1 // (k * itemsize)
        else:
            max_nc = (3 * _ACTUAL_L2_BYTES) // (2 * 2 * max_kc * itemsize)
        nc = min(_ACTUAL_L2_BYTES // (2 * k * itemsize), max_nc) & ~(nr - 1)
        if n > nc:
            n = nc if n % nc == 0 else nc - nr * ((nc - n % nc) // (nr * (n // nc + 1)))
        elif k == depth:
            problem_size = k * n * itemsize
            actual_lm = _ACTUAL_L2_BYTES
            max_mc = m
            if problem_size <= 1024:
                actual_lm = l1
            elif l3 != 0 and problem_size <= 32768:
                actual_lm = l2
                max_mc = min(576, max_mc)
            mc = min(actual_lm // (3 * k * itemsize), max_mc)
            if mc > mr:
                mc -= mc % mr
            if mc > 0:
                m = mc if m % mc == 0 else mc - mr * ((mc - m % mc) // (mr * (m // mc + 1)))
    if custom_kernel:
        m = min(rows, -(-int(m * _CUSTOM_SCALE_M) // _CUSTOM_UNROLL_M) * _CUSTOM_UNROLL_M)
        n = min(cols, -(-n // _CUSTOM_UNROLL_N) * _CUSTOM_UNROLL_N)
        slices = max(1, -(-depth // k))
        k = min(depth, -(-(depth // slices) // 8) * 8)
    return k, min(m, rows), min(n, cols)


def blocking_sizes(depth: int, rows: int, cols: int, l1: int, l2: int, l3: int, dtype=np.float64,
                   custom_kernel: bool = False) -> tuple[int, int, int]:
    """``(kc, mc, nc)``: depth, row and column blocks of Eigen's single-threaded contraction.

    Eigen's ``evaluateProductBlockingSizesHeuristic`` (``num_threads = 1``) as
    ``TensorContractionBlocking`` returns it (module docstring, "Blocking"),
    clipped to the matrix; with ``custom_kernel`` (float32 under TensorFlow's
    default custom contraction kernel) refined as ``eigen_contraction_kernel.h``
    does. ``depth, rows, cols`` are d, m, n of Eigen's column-major product
    (for TensorFlow's row-major ``out = lhs @ rhs``: the depth, ``out``'s
    columns and ``out``'s rows). Cache sizes in bytes.
    """
    _check_cache_sizes(l1, l2, l3)
    kc, mc, nc = _blocking_sizes(depth, rows, cols, l1, l2, l3, _itemsize(dtype), custom_kernel)
    return int(kc), int(mc), int(nc)


@jitable
def _gebp_row_bounds(rows, lanes):
    """(end of 2P-row blocks, end of the P-row packet, end of the P/2-row half packet)."""
    two_packets = rows // (2 * lanes) * (2 * lanes)
    one_packet = two_packets + (rows - two_packets) // lanes * lanes
    half = lanes // 2
    half_packet = one_packet + (rows - one_packet) // half * half
    return two_packets, one_packet, half_packet


@jitable
def _sgemm_block_end(start, stop, block):
    """End of the no-copy SGEMM's depth block that starts at ``start``: ``block`` terms while at least
    twice that many remain, then two halves, the first one larger (``onednn.depth_blocks`` for 384)."""
    remaining = stop - start
    if remaining >= 2 * block:
        return start + block
    if remaining > block:
        return start + (remaining + 1) // 2
    return stop


@jitable
def _avx2_driver_block(index, size, block):
    """(start, size) of the row or column block of ``jit_avx_gemm_f32``'s driver that holds ``index``."""
    start = 0
    while True:
        length = size - start
        if length >= 2 * block:
            length = block
        elif length > block + block // 2:
            length = (length + 1) // 2
        if index < start + length:
            return start, length
        start += length


@jitable
def _avx2_tile_rows(i, rows):
    """Rows of the ``jit_avx_gemm_f32`` kernel tile that holds row ``i`` of a call with ``rows`` rows (16 or 8)."""
    start, size = _avx2_driver_block(i, rows, _AVX2_BLOCK_ROWS)
    whole = size // _AVX2_TILE_ROWS * _AVX2_TILE_ROWS
    if i - start < whole:
        return _AVX2_TILE_ROWS
    return _AVX2_TILE_ROWS if size - whole > 8 else 8


@jitable
def _avx2_tile_cols(j, cols):
    """Columns of the ``jit_avx_gemm_f32`` kernel tile that holds column ``j`` of a call (1 to 6)."""
    start, size = _avx2_driver_block(j, cols, _AVX2_BLOCK_COLS)
    whole = size // _AVX2_TILE_COLS * _AVX2_TILE_COLS
    return _AVX2_TILE_COLS if j - start < whole else size - whole


def _check_family(onednn_family):
    if onednn_family not in ONEDNN_FAMILIES:
        raise ValueError(f"onednn_family must be one of {ONEDNN_FAMILIES} (oneDNN's vector family, "
                         f"gdcore.numerics.machine.onednn_vector_family), got {onednn_family!r}")


# --- NumPy ------------------------------------------------------------------------


def _lanes(array) -> int:
    return _PACKET_BYTES // array.itemsize


def _products(lhs, rhs, k):
    return lhs[:, k, None] * rhs[k, None, :]


def _sequential(lhs, rhs, start, stop, acc):
    for k in range(start, stop):
        acc = acc + _products(lhs, rhs, k)
    return acc


def _halving(lanes):
    """Eigen's ``predux``: the upper half added onto the lower half until one lane is left."""
    lanes = list(lanes)
    while len(lanes) > 1:
        half = len(lanes) // 2
        lanes = [lanes[i] + lanes[i + half] for i in range(half)]
    return lanes[0]


def _gebp_block(lhs, rhs):
    """One GEBP call on a depth block (rules in the module docstring), from zero."""
    rows, depth = lhs.shape
    cols = rhs.shape[1]
    lanes = _lanes(lhs)
    zero = np.zeros((rows, cols), lhs.dtype)
    out = _sequential(lhs, rhs, 0, depth, zero)
    two_packets, _, half_packet = _gebp_row_bounds(rows, lanes)
    grouped = cols // GEBP_COLS * GEBP_COLS
    if grouped == 0:
        return out
    # One packet and half packet rows: even/odd k accumulators over the peeled depth.
    peeled = depth & ~(PEEL - 1)
    if half_packet > two_packets:
        a, b = lhs[two_packets:half_packet], rhs[:, :grouped]
        even = odd = np.zeros((a.shape[0], grouped), lhs.dtype)
        for k in range(0, peeled, 2):
            even = even + _products(a, b, k)
            odd = odd + _products(a, b, k + 1)
        out[two_packets:half_packet, :grouped] = _sequential(a, b, peeled, depth, even + odd)
    # Last single rows: the swapped kernel, 4 accumulators of P/4 sub-lanes.
    if rows > half_packet:
        a, b = lhs[half_packet:], rhs[:, :grouped]
        step = lanes // 4
        quads = depth // (4 * step) * (4 * step)
        pairs = depth // step * step
        acc = [[np.zeros((a.shape[0], grouped), lhs.dtype) for _ in range(step)] for _ in range(4)]
        for k in range(0, quads, 4 * step):
            for c in range(4):
                for t in range(step):
                    acc[c][t] = acc[c][t] + _products(a, b, k + c * step + t)
        sub = [(acc[0][t] + acc[1][t]) + (acc[2][t] + acc[3][t]) for t in range(step)]
        for k in range(quads, pairs, step):
            for t in range(step):
                sub[t] = sub[t] + _products(a, b, k + t)
        total = sub[0] if step == 1 else sub[0] + sub[1]
        out[half_packet:, :grouped] = _sequential(a, b, pairs, depth, total)
    return out


def gebp(lhs: np.ndarray, rhs: np.ndarray, l1: int) -> np.ndarray:
    """``lhs @ rhs`` as Eigen's single-threaded tensor contraction (GEBP) adds it (module docstring).

    ``lhs`` (m, d) and ``rhs`` (d, n) are Eigen's column-major operands: for
    TensorFlow's row-major ``out = a @ b`` call ``gebp(b.T, a.T, l1).T``.
    ``l1`` is the L1 data cache size in bytes (it sets the depth blocks).
    """
    _check_cache_sizes(l1)
    rows, depth = lhs.shape
    cols = rhs.shape[1]
    block = depth_block_size(depth, rows, cols, l1, lhs.dtype)
    out = np.zeros((rows, cols), lhs.dtype)
    for start in range(0, depth, block):
        stop = min(start + block, depth)
        out = out + _gebp_block(lhs[:, start:stop], rhs[start:stop])
    return out


def _gemv_tree(inputs, vector, acc):
    """oneDNN's matrix-vector tree (``onednn.gemv_tree``) of ``inputs @ vector``, every part added onto ``acc``."""
    depth = inputs.shape[1]
    sixteens = depth // 16 * 16
    if sixteens:
        lanes = [inputs[:, lane] * vector[lane] for lane in range(8)]
        for k in range(8, sixteens):
            lanes[k % 8] = fma(inputs[:, k], vector[k], lanes[k % 8])
        acc = acc + (((lanes[0] + lanes[1]) + (lanes[4] + lanes[5])) + ((lanes[2] + lanes[3]) + (lanes[6] + lanes[7])))
    k = sixteens
    for width in (8, 4, 2, 1):
        if depth - k >= width:
            p = [inputs[:, k + lane] * vector[k + lane] for lane in range(width)]
            if width == 8:
                part = ((p[0] + p[1]) + (p[4] + p[5])) + ((p[2] + p[3]) + (p[6] + p[7]))
            elif width == 4:
                part = (p[0] + p[1]) + (p[2] + p[3])
            elif width == 2:
                part = p[0] + p[1]
            else:
                part = p[0]
            acc = acc + part
            k += width
    return acc


def _fma_blocks(lhs, rhs, out, onednn_family):
    """oneDNN's no-copy SGEMM on one call (one slice of one Eigen block): its depth blocks, each added to
    ``out`` (``None``: the first is stored)."""
    rows, depth = lhs.shape
    cols = rhs.shape[1]
    block = _AVX2_DEPTH_BLOCK if onednn_family == "avx2" else _AVX512_DEPTH_BLOCK
    if onednn_family == "avx2":
        tile_rows = np.array([_avx2_tile_rows(i, rows) for i in range(rows)])[:, None]
        tile_cols = np.array([_avx2_tile_cols(j, cols) for j in range(cols)])[None, :]
        split = (tile_rows <= 8) | (tile_cols <= 3)
        fused = np.broadcast_to(tile_cols >= 3, split.shape)
    start = 0
    while start < depth:
        stop = _sgemm_block_end(start, depth, block)
        if onednn_family == "avx512":
            part = _products(lhs, rhs, start)
            for k in range(start + 1, stop):
                part = fma(lhs[:, k, None], rhs[k, None, :], part)
        else:
            part = np.where(split, np.where(fused, _avx2_split(lhs, rhs, start, stop, True),
                                            _avx2_split(lhs, rhs, start, stop, False)),
                            _avx2_sequential(lhs, rhs, start, stop))
        out = part if out is None else out + part
        start = stop
    return out


def _avx2_sequential(lhs, rhs, start, stop):
    acc = np.zeros((lhs.shape[0], rhs.shape[1]), lhs.dtype)
    for k in range(start, stop):
        acc = fma(lhs[:, k, None], rhs[k, None, :], acc)
    return acc


def _avx2_split(lhs, rhs, start, stop, fused):
    """Even and odd k in two accumulators, added, then the last odd term (with or without FMA)."""
    def madd(k, acc):
        return fma(lhs[:, k, None], rhs[k, None, :], acc) if fused else acc + _products(lhs, rhs, k)

    even = np.zeros((lhs.shape[0], rhs.shape[1]), lhs.dtype)
    odd = even
    pairs = start + (stop - start) // 2 * 2
    for k in range(start, pairs, 2):
        even = madd(k, even)
        odd = madd(k + 1, odd)
    acc = even + odd
    return madd(pairs, acc) if pairs < stop else acc


def onednn_contraction(lhs: np.ndarray, rhs: np.ndarray, l1: int, l2: int, l3: int,
                       onednn_family: str = "avx512") -> np.ndarray:
    """``lhs @ rhs`` (float32) as Eigen's contraction with TensorFlow's custom (``dnnl_sgemm``) kernel adds it.

    Rule in the module docstring ("Float32 contraction with TensorFlow's
    custom kernel"). Operands and cache sizes as for :func:`gebp`; ``l2`` and
    ``l3`` decide where blocks of one row or one column occur.
    ``onednn_family`` is the vector family of the kernels oneDNN generates,
    ``"avx512"`` (``avx512_core`` and above) or ``"avx2"``
    (:func:`gdcore.numerics.machine.onednn_vector_family`).
    """
    _check_cache_sizes(l1, l2, l3)
    _check_family(onednn_family)
    rows, depth = lhs.shape
    cols = rhs.shape[1]
    kc, mc, nc = blocking_sizes(depth, rows, cols, l1, l2, l3, lhs.dtype, custom_kernel=True)
    out = np.empty((rows, cols), lhs.dtype)
    for i2 in range(0, rows, mc):
        a = lhs[i2 : i2 + mc]
        for j2 in range(0, cols, nc):
            b = rhs[:, j2 : j2 + nc]
            if b.shape[1] == 1:  # a block of one column: one FMA chain through every slice
                acc = np.zeros((a.shape[0], 1), lhs.dtype)
                for k in range(depth):
                    acc = fma(a[:, k, None], b[k, None, :], acc)
                out[i2 : i2 + mc, j2 : j2 + 1] = acc
            elif a.shape[0] > 1:
                acc = None
                for k2 in range(0, depth, kc):
                    acc = _fma_blocks(a[:, k2 : k2 + kc], b[k2 : k2 + kc], acc, onednn_family)
                out[i2 : i2 + mc, j2 : j2 + nc] = acc
            else:
                acc = np.zeros(b.shape[1], lhs.dtype)
                for k2 in range(0, depth, kc):
                    acc = _gemv_tree(b[k2 : k2 + kc].T, a[0, k2 : k2 + kc], acc)
                out[i2, j2 : j2 + nc] = acc
    return out


def _packet_lanes(lhs, vector, whole, lanes):
    """The P packet lanes of a GEMV row (lane l: terms k = l mod P below ``whole``), reduced by halving."""
    acc = [np.zeros(lhs.shape[0], lhs.dtype) for _ in range(lanes)]
    for k in range(0, whole, lanes):
        for lane in range(lanes):
            acc[lane] = acc[lane] + lhs[:, k + lane] * vector[k + lane]
    return _halving(acc)


def _gemv_grouped_rows(rows, depth, itemsize):
    """How many leading rows Eigen's row-major GEMV processes in groups of 8, 4 or 2."""
    i = 0
    if depth * itemsize <= _GEMV_BLOCK_BYTES:
        while i < rows - 7:
            i += 8
    while i < rows - 3:
        i += 4
    while i < rows - 1:
        i += 2
    return i


def gemv_row_major(lhs: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """``lhs @ vector`` with ``lhs`` row-major, as Eigen's row-major GEMV adds it (module docstring)."""
    rows, depth = lhs.shape
    lanes = _lanes(lhs)
    half = lanes // 2
    whole = depth // lanes * lanes
    halves = depth // half * half
    reduced = _packet_lanes(lhs, vector, whole, lanes)
    grouped = _gemv_grouped_rows(rows, depth, lhs.itemsize)
    out = np.empty(rows, lhs.dtype)
    acc = reduced[:grouped]
    for k in range(whole, depth):
        acc = acc + lhs[:grouped, k] * vector[k]
    out[:grouped] = np.zeros((), lhs.dtype) + acc
    # Single rows: a half packet over the next P/2 terms, then the last terms.
    acc = reduced[grouped:]
    part = [np.zeros(rows - grouped, lhs.dtype) for _ in range(half)]
    for k in range(whole, halves, half):
        for lane in range(half):
            part[lane] = part[lane] + lhs[grouped:, k + lane] * vector[k + lane]
    acc = acc + _halving(part)
    for k in range(halves, depth):
        acc = acc + lhs[grouped:, k] * vector[k]
    out[grouped:] = np.zeros((), lhs.dtype) + acc
    return out


def gemv_col_major(lhs: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """``lhs @ vector`` with ``lhs`` column-major: sequential, in blocks of 16 (or 4) terms when d >= 128."""
    rows, depth = lhs.shape
    block = _gemv_col_block(rows, depth, lhs.itemsize)
    out = np.zeros(rows, lhs.dtype)
    for start in range(0, depth, block):
        acc = np.zeros(rows, lhs.dtype)
        for k in range(start, min(start + block, depth)):
            acc = acc + lhs[:, k] * vector[k]
        out = out + acc
    return out


@jitable  # also called from Python: nothing to compile there
def _gemv_col_block(rows, depth, itemsize):
    if depth < _GEMV_COL_BLOCK_DEPTH:
        return depth
    return 16 if rows * itemsize < _GEMV_BLOCK_BYTES else 4


def lazy_product(lhs: np.ndarray, rhs: np.ndarray, vectorized: bool) -> np.ndarray:
    """Eigen's coefficient-based product: each coefficient a dot product (module docstring)."""
    depth = lhs.shape[1]
    if vectorized and depth >= _lanes(lhs):
        return _redux_dots(lhs, rhs)
    out = _products(lhs, rhs, 0)
    return _sequential(lhs, rhs, 1, depth, out)


def dot_product(lhs: np.ndarray, rhs: np.ndarray, vectorized: bool) -> np.ndarray:
    """Eigen's ``dot`` of ``lhs`` (1, d) and ``rhs`` (d, 1) (module docstring), shape (1, 1)."""
    depth = lhs.shape[1]
    lanes = _lanes(lhs)
    packets = depth // lanes
    if not vectorized or packets == 0:
        return _sequential(lhs, rhs, 1, depth, _products(lhs, rhs, 0))

    def packet(index):
        return [_products(lhs, rhs, lanes * index + lane) for lane in range(lanes)]

    acc = [packet(a) for a in range(min(packets, 4))]
    if packets >= 4:
        quads = packets // 4 * 4
        for index in range(4, quads):
            a = index % 4
            acc[a] = [x + y for x, y in zip(acc[a], packet(index))]
        for a, index in enumerate(range(quads, packets)):
            acc[a] = [x + y for x, y in zip(acc[a], packet(index))]
    while len(acc) > 1:  # a0 + (a1 + (a2 + a3))
        last = acc.pop()
        acc[-1] = [x + y for x, y in zip(acc[-1], last)]
    return _sequential(lhs, rhs, lanes * packets, depth, _halving(acc[0]))


def _redux_dots(lhs, rhs):
    """Every ``lhs[i] . rhs[:, j]`` by Eigen's vectorised redux (d >= P)."""
    depth = lhs.shape[1]
    lanes = _lanes(lhs)
    whole = depth // lanes * lanes
    pairs_end = depth // (2 * lanes) * (2 * lanes)
    acc0 = [_products(lhs, rhs, lane) for lane in range(lanes)]
    if whole > lanes:
        acc1 = [_products(lhs, rhs, lanes + lane) for lane in range(lanes)]
        for k in range(2 * lanes, pairs_end, 2 * lanes):
            for lane in range(lanes):
                acc0[lane] = acc0[lane] + _products(lhs, rhs, k + lane)
                acc1[lane] = acc1[lane] + _products(lhs, rhs, k + lanes + lane)
        acc0 = [acc0[lane] + acc1[lane] for lane in range(lanes)]
        if whole > pairs_end:
            acc0 = [acc0[lane] + _products(lhs, rhs, pairs_end + lane) for lane in range(lanes)]
    return _sequential(lhs, rhs, whole, depth, _halving(acc0))


def _contraction(lhs, rhs, l1, l2, l3, custom_contraction_kernel, onednn_family):
    """TensorFlow's ``out = lhs @ rhs`` through Eigen's contraction (column-major: ``out.T = rhs.T @ lhs.T``)."""
    if lhs.dtype == np.float32 and custom_contraction_kernel:
        return onednn_contraction(rhs.T, lhs.T, l1, l2, l3, onednn_family).T
    return gebp(rhs.T, lhs.T, l1).T


def launch_matmul(lhs: np.ndarray, rhs: np.ndarray, lhs_row_major: bool, rhs_row_major: bool,
                  l1: int, l2: int, l3: int, custom_contraction_kernel: bool = True,
                  onednn_family: str = "avx512") -> np.ndarray:
    """``lhs @ rhs`` as TensorFlow's ``MatMul`` computes it with Eigen (float32 without oneDNN, float64).

    The dispatch of ``LaunchBatchMatMul<CPUDevice>``
    (``tensorflow/core/kernels/matmul_op_impl.h``) for one product: if every
    dimension exceeds 1, ``ParallelMatMulKernel`` (the tensor contraction:
    :func:`gebp`, or for float32 :func:`onednn_contraction` unless
    ``custom_contraction_kernel`` is False, i.e.
    ``TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL=0``); otherwise
    ``SequentialMatMulKernel``, Eigen's Matrix product: if
    :math:`d + m + n < 20` the coefficient-based product
    (:func:`lazy_product`), else with one output the dot product, with one
    output column the GEMV of ``lhs`` (row- or column-major as stored), with
    one output row the GEMV of ``rhs.T``, with depth 1 the outer product.

    Parameters
    ----------
    lhs, rhs : ndarray
        The operands as multiplied (float32 or float64, same dtype).
    lhs_row_major, rhs_row_major : bool
        Whether each is the stored (row-major) tensor, False for the transpose
        of one (``transpose_a``/``transpose_b``).
    l1, l2, l3 : int
        Cache sizes in bytes, as Eigen reads them from CPUID.
    custom_contraction_kernel : bool
        TensorFlow's default True: float32 contractions run ``dnnl_sgemm``.
    onednn_family : {"avx512", "avx2"}
        The vector family oneDNN generates ``dnnl_sgemm``'s kernels for
        (:func:`gdcore.numerics.machine.onednn_vector_family`); float32 only.
    """
    _check_cache_sizes(l1, l2, l3)
    _check_family(onednn_family)
    rows, depth = lhs.shape
    cols = rhs.shape[1]
    if min(rows, depth, cols) > 1:
        return _contraction(lhs, rhs, l1, l2, l3, custom_contraction_kernel, onednn_family)
    contiguous_dots = lhs_row_major and not rhs_row_major
    if depth + rows + cols < LAZY_PRODUCT_THRESHOLD:
        return lazy_product(lhs, rhs, contiguous_dots)
    zero = np.zeros((), lhs.dtype)
    if cols == 1 and rows == 1:
        return zero + dot_product(lhs, rhs, contiguous_dots)
    if cols == 1:
        gemv = gemv_row_major if lhs_row_major else gemv_col_major
        return gemv(lhs, rhs[:, 0])[:, None]
    if rows == 1:
        gemv = gemv_col_major if rhs_row_major else gemv_row_major
        return gemv(rhs.T, lhs[0])[None, :]
    return zero + lhs * rhs  # depth 1: outer product


def fused_matmul(inputs: np.ndarray, kernel: np.ndarray, bias: np.ndarray, l1: int, l2: int, l3: int,
                 custom_contraction_kernel: bool = True, onednn_family: str = "avx512") -> np.ndarray:
    """``inputs @ kernel + bias`` as TensorFlow's ``_FusedMatMul`` (``BiasAdd`` fused) computes it on Eigen.

    When TensorFlow uses it: float32 without oneDNN, inside a ``tf.function``
    (every Keras ``fit``/``predict``/``evaluate`` step), grappler's remapper
    rewrites ``MatMul`` + ``BiasAdd`` (+ ``Relu``, ``Relu6``, ``Elu``,
    ``LeakyRelu``) into ``_FusedMatMul``; a ``Sigmoid`` or ``Tanh`` after it
    stays a separate op (Eigen's, :func:`gdcore.numerics.eigen.logistic_tensorflow`),
    ``AddV2`` (Keras's bias of a one-unit layer) is not fused, and float64 is
    never fused. ``LaunchFusedMatMulOp<CPUDevice>``
    (``tensorflow/core/kernels/matmul_op_fused.cc``) always runs the tensor
    contraction with the bias added by its output kernel
    (``BiasAddOutputKernel``, one rounding per element), whatever the shapes:
    with one batch row Eigen's ``evalGemv`` (:func:`gemv_col_major` of
    ``kernel.T``), otherwise ``evalGemm`` (:func:`onednn_contraction`, or
    :func:`gebp` without the custom kernel), even where a plain ``MatMul``
    would take a GEMV or the coefficient-based product (one unit, one input
    feature, small shapes). Arguments as for :func:`launch_matmul`.
    """
    _check_cache_sizes(l1, l2, l3)
    _check_family(onednn_family)
    if inputs.shape[0] == 1:
        product = gemv_col_major(kernel.T, inputs[0])[None, :]
    else:
        product = _contraction(inputs, kernel, l1, l2, l3, custom_contraction_kernel, onednn_family)
    return product + bias


# --- Numba twins (same order, into ``out``) ----------------------------------------


@_jit
def _gebp_block_loop(lhs, rhs, start, stop, out):
    """Adds one GEBP call over depth [start, stop) into ``out``."""
    rows = lhs.shape[0]
    cols = rhs.shape[1]
    depth = stop - start
    lanes = _PACKET_BYTES // lhs.itemsize
    two_packets, _, half_packet = _gebp_row_bounds(rows, lanes)
    grouped = cols // GEBP_COLS * GEBP_COLS
    peeled = depth & ~(PEEL - 1)
    step = lanes // 4
    quads = depth // (4 * step) * (4 * step)
    pairs = depth // step * step
    zero = cast(0, lhs)
    acc4 = np.zeros((4, step), lhs.dtype)
    for i in range(rows):
        for j in range(cols):
            acc = zero
            first = 0
            if j < grouped and two_packets <= i < half_packet:
                odd = zero
                for k in range(0, peeled, 2):
                    acc = acc + lhs[i, start + k] * rhs[start + k, j]
                    odd = odd + lhs[i, start + k + 1] * rhs[start + k + 1, j]
                acc = acc + odd
                first = peeled
            elif j < grouped and i >= half_packet:
                acc4[:, :] = zero
                for k in range(0, quads, 4 * step):
                    for c in range(4):
                        for t in range(step):
                            kk = start + k + c * step + t
                            acc4[c, t] = acc4[c, t] + lhs[i, kk] * rhs[kk, j]
                for t in range(step):
                    acc4[0, t] = (acc4[0, t] + acc4[1, t]) + (acc4[2, t] + acc4[3, t])
                for k in range(quads, pairs, step):
                    for t in range(step):
                        acc4[0, t] = acc4[0, t] + lhs[i, start + k + t] * rhs[start + k + t, j]
                acc = acc4[0, 0] if step == 1 else acc4[0, 0] + acc4[0, 1]
                first = pairs
            for k in range(first, depth):
                acc = acc + lhs[i, start + k] * rhs[start + k, j]
            out[i, j] = out[i, j] + acc


@_jit
def gebp_loop(lhs, rhs, out, l1):
    """Numba twin of :func:`gebp`, into ``out`` (rows, cols); ``l1`` in bytes."""
    rows, depth = lhs.shape
    cols = rhs.shape[1]
    block = _depth_block_size(depth, rows, cols, l1, lhs.itemsize)
    out[:, :] = 0
    for start in range(0, depth, block):
        _gebp_block_loop(lhs, rhs, start, min(start + block, depth), out)


@_inline
def _gemv_tree_at(lhs, i, rhs, j, start, stop, acc, p):
    """:func:`_gemv_tree` for output (i, j) over depth [start, stop): ``lhs[i]`` the vector, ``rhs[:, j]``
    the inputs; ``p`` is scratch space for 8 lanes."""
    depth = stop - start
    sixteens = depth // 16 * 16
    if sixteens:
        for lane in range(8):
            p[lane] = rhs[start + lane, j] * lhs[i, start + lane]
        for k in range(8, sixteens):
            p[k % 8] = fma(rhs[start + k, j], lhs[i, start + k], p[k % 8])
        acc = acc + (((p[0] + p[1]) + (p[4] + p[5])) + ((p[2] + p[3]) + (p[6] + p[7])))
    k = sixteens
    width = 8
    while width >= 1:
        if depth - k >= width:
            for lane in range(width):
                p[lane] = rhs[start + k + lane, j] * lhs[i, start + k + lane]
            if width == 8:
                part = ((p[0] + p[1]) + (p[4] + p[5])) + ((p[2] + p[3]) + (p[6] + p[7]))
            elif width == 4:
                part = (p[0] + p[1]) + (p[2] + p[3])
            elif width == 2:
                part = p[0] + p[1]
            else:
                part = p[0]
            acc = acc + part
            k += width
        width //= 2
    return acc


@_inline
def _avx2_dot_at(lhs, i, rhs, j, start, stop, tile_rows, tile_cols):
    """``jit_avx_gemm_f32``'s sum of output (i, j) over depth [start, stop) (see :func:`_fma_blocks`)."""
    acc = cast(0, lhs)
    if tile_rows > 8 and tile_cols > 3:
        for k in range(start, stop):
            acc = fma(lhs[i, k], rhs[k, j], acc)
        return acc
    fused = tile_cols >= 3
    odd = acc
    pairs = start + (stop - start) // 2 * 2
    for k in range(start, pairs, 2):
        if fused:
            acc = fma(lhs[i, k], rhs[k, j], acc)
            odd = fma(lhs[i, k + 1], rhs[k + 1, j], odd)
        else:
            acc = acc + lhs[i, k] * rhs[k, j]
            odd = odd + lhs[i, k + 1] * rhs[k + 1, j]
    acc = acc + odd
    if pairs < stop:
        acc = fma(lhs[i, pairs], rhs[pairs, j], acc) if fused else acc + lhs[i, pairs] * rhs[pairs, j]
    return acc


@_jit
def onednn_contraction_loop(lhs, rhs, out, l1, l2, l3, onednn_family="avx512"):
    """Numba twin of :func:`onednn_contraction`, into ``out`` (rows, cols); cache sizes in bytes."""
    rows, depth = lhs.shape
    cols = rhs.shape[1]
    kc, mc, nc = _blocking_sizes(depth, rows, cols, l1, l2, l3, lhs.itemsize, True)
    avx2 = onednn_family == "avx2"
    block = _AVX2_DEPTH_BLOCK if avx2 else _AVX512_DEPTH_BLOCK
    zero = cast(0, lhs)
    scratch = np.empty(8, lhs.dtype)
    for i in range(rows):
        block_rows = min(mc, rows - i // mc * mc)
        tile_rows = -1  # a property of the row: found at its first column that needs it
        for j in range(cols):
            block_cols = min(nc, cols - j // nc * nc)
            total = zero
            if block_cols == 1:
                for k in range(depth):
                    total = fma(lhs[i, k], rhs[k, j], total)
                out[i, j] = total
                continue
            if tile_rows < 0:
                tile_rows = _avx2_tile_rows(i % mc, block_rows) if avx2 else 0
            tile_cols = _avx2_tile_cols(j % nc, block_cols) if avx2 else 0
            first = True
            for k2 in range(0, depth, kc):
                stop = min(k2 + kc, depth)
                if block_rows == 1:
                    total = _gemv_tree_at(lhs, i, rhs, j, k2, stop, total, scratch)
                    continue
                start = k2
                while start < stop:
                    end = _sgemm_block_end(start, stop, block)
                    if avx2:
                        part = _avx2_dot_at(lhs, i, rhs, j, start, end, tile_rows, tile_cols)
                    else:
                        part = lhs[i, start] * rhs[start, j]
                        for k in range(start + 1, end):
                            part = fma(lhs[i, k], rhs[k, j], part)
                    total = part if first else total + part
                    first = False
                    start = end
            out[i, j] = total


@_jit
def _gemv_grouped_rows_loop(rows, depth, itemsize):
    i = 0
    if depth * itemsize <= _GEMV_BLOCK_BYTES:
        while i < rows - 7:
            i += 8
    while i < rows - 3:
        i += 4
    while i < rows - 1:
        i += 2
    return i


@_inline
def _halving_at(acc, count):
    """Halving reduction of ``acc[:count]`` (count a power of two), in place; returns the sum."""
    width = count
    while width > 1:
        width //= 2
        for lane in range(width):
            acc[lane] = acc[lane] + acc[lane + width]
    return acc[0]


@_jit
def gemv_row_major_loop(lhs, vector, out):
    """Numba twin of :func:`gemv_row_major`, into ``out`` (rows,)."""
    rows, depth = lhs.shape
    lanes = _PACKET_BYTES // lhs.itemsize
    half = lanes // 2
    whole = depth // lanes * lanes
    halves = depth // half * half
    grouped = _gemv_grouped_rows_loop(rows, depth, lhs.itemsize)
    zero = cast(0, lhs)
    acc = np.empty(lanes, lhs.dtype)
    for i in range(rows):
        acc[:] = zero
        for k in range(0, whole, lanes):
            for lane in range(lanes):
                acc[lane] = acc[lane] + lhs[i, k + lane] * vector[k + lane]
        total = _halving_at(acc, lanes)
        first = whole
        if i >= grouped:
            acc[:] = zero
            for k in range(whole, halves, half):
                for lane in range(half):
                    acc[lane] = acc[lane] + lhs[i, k + lane] * vector[k + lane]
            total = total + _halving_at(acc, half)
            first = halves
        for k in range(first, depth):
            total = total + lhs[i, k] * vector[k]
        out[i] = zero + total


@_jit
def gemv_col_major_loop(lhs, vector, out):
    """Numba twin of :func:`gemv_col_major`, into ``out`` (rows,)."""
    rows, depth = lhs.shape
    block = _gemv_col_block(rows, depth, lhs.itemsize)
    zero = cast(0, lhs)
    for i in range(rows):
        total = zero
        for start in range(0, depth, block):
            acc = zero
            for k in range(start, min(start + block, depth)):
                acc = acc + lhs[i, k] * vector[k]
            total = total + acc
        out[i] = total


@_inline
def _redux_dot_loop(lhs, rhs, i, j, acc0, acc1):
    depth = lhs.shape[1]
    lanes = acc0.shape[0]
    whole = depth // lanes * lanes
    pairs_end = depth // (2 * lanes) * (2 * lanes)
    for lane in range(lanes):
        acc0[lane] = lhs[i, lane] * rhs[lane, j]
    if whole > lanes:
        for lane in range(lanes):
            acc1[lane] = lhs[i, lanes + lane] * rhs[lanes + lane, j]
        for k in range(2 * lanes, pairs_end, 2 * lanes):
            for lane in range(lanes):
                acc0[lane] = acc0[lane] + lhs[i, k + lane] * rhs[k + lane, j]
                acc1[lane] = acc1[lane] + lhs[i, k + lanes + lane] * rhs[k + lanes + lane, j]
        for lane in range(lanes):
            acc0[lane] = acc0[lane] + acc1[lane]
        if whole > pairs_end:
            for lane in range(lanes):
                acc0[lane] = acc0[lane] + lhs[i, pairs_end + lane] * rhs[pairs_end + lane, j]
    total = _halving_at(acc0, lanes)
    for k in range(whole, depth):
        total = total + lhs[i, k] * rhs[k, j]
    return total


@_jit
def lazy_product_loop(lhs, rhs, vectorized, out):
    """Numba twin of :func:`lazy_product`, into ``out`` (rows, cols)."""
    rows, depth = lhs.shape
    cols = rhs.shape[1]
    lanes = _PACKET_BYTES // lhs.itemsize
    acc0 = np.empty(lanes, lhs.dtype)
    acc1 = np.empty(lanes, lhs.dtype)
    for i in range(rows):
        for j in range(cols):
            if vectorized and depth >= lanes:
                out[i, j] = _redux_dot_loop(lhs, rhs, i, j, acc0, acc1)
                continue
            acc = lhs[i, 0] * rhs[0, j]
            for k in range(1, depth):
                acc = acc + lhs[i, k] * rhs[k, j]
            out[i, j] = acc


@_jit
def dot_product_loop(lhs, rhs, vectorized):
    """Numba twin of :func:`dot_product`; returns the scalar."""
    depth = lhs.shape[1]
    lanes = _PACKET_BYTES // lhs.itemsize
    packets = depth // lanes
    if not vectorized or packets == 0:
        acc = lhs[0, 0] * rhs[0, 0]
        for k in range(1, depth):
            acc = acc + lhs[0, k] * rhs[k, 0]
        return acc
    acc = np.zeros((4, lanes), lhs.dtype)
    used = min(packets, 4)
    for a in range(used):
        for lane in range(lanes):
            acc[a, lane] = lhs[0, lanes * a + lane] * rhs[lanes * a + lane, 0]
    if packets >= 4:
        quads = packets // 4 * 4
        for index in range(4, quads):
            for lane in range(lanes):
                k = lanes * index + lane
                acc[index % 4, lane] = acc[index % 4, lane] + lhs[0, k] * rhs[k, 0]
        for index in range(quads, packets):
            for lane in range(lanes):
                k = lanes * index + lane
                acc[index - quads, lane] = acc[index - quads, lane] + lhs[0, k] * rhs[k, 0]
    for a in range(used - 1, 0, -1):
        for lane in range(lanes):
            acc[a - 1, lane] = acc[a - 1, lane] + acc[a, lane]
    total = _halving_at(acc[0], lanes)
    for k in range(lanes * packets, depth):
        total = total + lhs[0, k] * rhs[k, 0]
    return total


def _contraction_loop(lhs, rhs, out, l1, l2, l3, custom_contraction_kernel, onednn_family):
    """Numba twin of :func:`_contraction` (compiled code only: the dtype picks the kernel while typing)."""
    raise NotImplementedError("call from compiled code")


@overload(_contraction_loop, jit_options={"cache": True})
def _contraction_loop_numba(lhs, rhs, out, l1, l2, l3, custom_contraction_kernel, onednn_family):
    # The float32 custom kernel uses FMA, which only types for float32.
    if lhs.dtype == types.float32:
        def contraction32(lhs, rhs, out, l1, l2, l3, custom_contraction_kernel, onednn_family):
            if custom_contraction_kernel:
                onednn_contraction_loop(rhs.T, lhs.T, out.T, l1, l2, l3, onednn_family)
            else:
                gebp_loop(rhs.T, lhs.T, out.T, l1)
        return contraction32

    def contraction64(lhs, rhs, out, l1, l2, l3, custom_contraction_kernel, onednn_family):
        gebp_loop(rhs.T, lhs.T, out.T, l1)
    return contraction64


@_jit
def launch_matmul_loop(lhs, rhs, lhs_row_major, rhs_row_major, out, l1, l2, l3, custom_contraction_kernel=True,
                       onednn_family="avx512"):
    """Numba twin of :func:`launch_matmul`, into ``out`` (rows, cols)."""
    rows, depth = lhs.shape
    cols = rhs.shape[1]
    if min(rows, min(depth, cols)) > 1:
        _contraction_loop(lhs, rhs, out, l1, l2, l3, custom_contraction_kernel, onednn_family)
        return
    contiguous_dots = lhs_row_major and not rhs_row_major
    if depth + rows + cols < LAZY_PRODUCT_THRESHOLD:
        lazy_product_loop(lhs, rhs, contiguous_dots, out)
        return
    if cols == 1 and rows == 1:
        out[0, 0] = cast(0, out) + dot_product_loop(lhs, rhs, contiguous_dots)
        return
    if cols == 1:
        if lhs_row_major:
            gemv_row_major_loop(lhs, rhs[:, 0], out[:, 0])
        else:
            gemv_col_major_loop(lhs, rhs[:, 0], out[:, 0])
        return
    if rows == 1:
        if rhs_row_major:
            gemv_col_major_loop(rhs.T, lhs[0], out[0])
        else:
            gemv_row_major_loop(rhs.T, lhs[0], out[0])
        return
    for i in range(rows):
        for j in range(cols):
            out[i, j] = cast(0, out) + lhs[i, 0] * rhs[0, j]


@_jit
def fused_matmul_loop(inputs, kernel, bias, out, l1, l2, l3, custom_contraction_kernel=True, onednn_family="avx512"):
    """Numba twin of :func:`fused_matmul`, into ``out`` (rows, cols)."""
    if inputs.shape[0] == 1:
        gemv_col_major_loop(kernel.T, inputs[0], out[0])
    else:
        _contraction_loop(inputs, kernel, out, l1, l2, l3, custom_contraction_kernel, onednn_family)
    rows, cols = out.shape
    for b in range(rows):
        for j in range(cols):
            out[b, j] = out[b, j] + bias[j]
