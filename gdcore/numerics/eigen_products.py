r"""Eigen's float64 matrix products, in the order TensorFlow's CPU kernels add the terms.

TensorFlow computes every float64 ``MatMul`` with Eigen (oneDNN has no float64
GEMM). The wheel's Eigen is compiled for AVX *without* FMA: a packet holds
:math:`P = 4` doubles and every multiply-add rounds twice,
:math:`\mathrm{fl}(\mathrm{fl}(a b) + c)`. Which Eigen routine runs, and so
in which order the products are added, depends on the shapes
(``LaunchBatchMatMul`` in ``tensorflow/core/kernels/matmul_op_impl.h``);
:mod:`gdcore.numerics._tensorflow` states that dispatch. This module provides
the routines themselves, each as a NumPy function and a Numba ``*_loop`` twin
(``tests/test_numerics_tensorflow.py`` checks that both give the same bits and
match TensorFlow).

Notation: a product :math:`C = A B` with :math:`A` of shape (m, d) and
:math:`B` of shape (d, n); :math:`p_k = \mathrm{fl}(A_{ik} B_{kj})` are the
rounded products of one output :math:`C_{ij}`, and "sequential" means
:math:`(\dots((0 + p_0) + p_1) + \dots) + p_{d-1}`. A final ``0 + c`` (Eigen
adds each result into a zeroed output) only turns -0 into +0, and is kept.

GEBP (``gebp_kernel``, ``Eigen/src/Core/products/GeneralBlockPanelKernel.h``),
the tensor contraction of ``ParallelMatMulKernel``
    Register blocks of ``mr = 8`` rows (two packets; without FMA Eigen does not
    use its three-packet kernel) and ``nr = 4`` columns. Rows in whole 8-row
    blocks: sequential. Then one 4-row packet and one 2-row half packet if the
    remaining rows allow: for columns in whole groups of 4 they accumulate even
    k in one register and odd k in another over the first ``d & ~7`` terms
    ("peeled" loop), add the two, then add the remaining terms in order; the
    last ``n % 4`` columns are sequential. A last single row (m odd), for
    columns in groups of 4, uses four accumulators over ``k mod 4`` for the
    first ``4 * (d // 4)`` terms, combines them as
    :math:`(c_0 + c_1) + (c_2 + c_3)` and adds the rest in order.
    The depth is split into blocks of ``kc`` terms (``kc = d`` when
    :math:`\max(d, m, n) < 48` or :math:`d \le 336`; otherwise Eigen's
    ``evaluateProductBlockingSizesHeuristic`` with a 32 KiB L1 cache, see
    :func:`depth_block_size`); each block is a GEBP call starting from zero
    and its result is added to the output.
Row-major GEMV (``general_matrix_vector_product<..., RowMajor, ...>``)
    Rows are taken 8, then 4, then 2 at a time while enough remain, then one at
    a time. Every row accumulates 4 lanes over the first ``4 * (d // 4)``
    terms (lane l holds the terms k = l mod 4, sequential), reduces them as
    :math:`(l_0 + l_2) + (l_1 + l_3)`, and adds the remaining terms in order.
    Single rows in addition sum the next ``2 * ((d % 4) // 2)`` terms in a
    2-lane half packet and add :math:`(h_0 + h_1)` before the last term.
Column-major GEMV (``general_matrix_vector_product<..., ColMajor, ...>``)
    Sequential, in blocks of 16 terms when :math:`d \ge 128` (each block from
    zero, added to the output).
Lazy (coefficient-based) product
    For :math:`d + m + n < 20` Eigen evaluates each coefficient as a dot
    product: sequential *without* the leading zero, except when both operands
    are contiguous along d (``A`` row-major and ``B`` column-major), where the
    dot is Eigen's vectorised ``redux``: two packet accumulators over
    alternate packets of 4, added, plus one more packet if the count of whole
    packets is odd, reduced :math:`(l_0 + l_2) + (l_1 + l_3)`, then the last
    ``d % 4`` terms in order. Fewer than 4 terms: sequential.
Dot product (``dot``, a 1 x 1 result outside the lazy range)
    Sequential without the leading zero, except with both operands contiguous,
    where Eigen's vectorised inner product runs: packets :math:`P_0, P_1, P_2,
    P_3` start four accumulators, packet :math:`4q + r` is added to
    accumulator r for every whole group of four, the remaining 1 to 3 packets
    go to accumulators 0, 1, 2; then :math:`a_0 + (a_1 + (a_2 + a_3))`
    (only the accumulators that exist), reduced :math:`(l_0 + l_2) + (l_1 +
    l_3)`, then the last ``d % 4`` terms in order.
"""

import numpy as np
from numba import njit

from gdcore._dtype import cast

_jit = njit(cache=True, error_model="numpy", nogil=True)

# Eigen's register blocking for double with AVX and no FMA (gebp_traits<double, double>).
GEBP_ROWS = 8  # mr: two packets of 4
GEBP_COLS = 4  # nr
PEEL = 8  # pk: the depth loop is unrolled by 8
# L1 data cache size Eigen reads from CPUID (32 KiB on the x86 CPUs measured).
L1_CACHE_BYTES = 32 * 1024
# Below this d + m + n Eigen's Matrix product uses the coefficient-based ("lazy") product.
LAZY_PRODUCT_THRESHOLD = 20


def depth_block_size(depth: int, rows: int, cols: int) -> int:
    """``kc``: how many terms of the depth one GEBP call sums (single-threaded contraction).

    Eigen's ``evaluateProductBlockingSizesHeuristic`` for double, ``mr = 8``,
    ``nr = 4``: no blocking if :math:`\\max(d, m, n) < 48`; otherwise
    ``max_kc = ((L1 - 8*4*8) // (8*8 + 4*8)) & ~7`` (336 for a 32 KiB L1) and,
    if ``d > max_kc``, ``kc = max_kc - 8 * ((max_kc - 1 - d % max_kc) // (8 * (d // max_kc + 1)))``
    (or ``max_kc`` when it divides ``d``), which makes the last block as large as possible.
    """
    return _depth_block_size(depth, rows, cols)


@_jit
def _depth_block_size(depth, rows, cols):
    if max(depth, max(rows, cols)) < 48:
        return depth
    k_sub = GEBP_ROWS * GEBP_COLS * 8
    k_div = GEBP_ROWS * 8 + GEBP_COLS * 8
    max_kc = max(((L1_CACHE_BYTES - k_sub) // k_div) & ~(PEEL - 1), 1)
    if depth <= max_kc:
        return depth
    if depth % max_kc == 0:
        return max_kc
    return max_kc - PEEL * ((max_kc - 1 - depth % max_kc) // (PEEL * (depth // max_kc + 1)))


@_jit
def _gebp_row_bounds(rows):
    """(end of 8-row blocks, end of the 4-row packet, end of the 2-row half packet)."""
    two_packets = rows // 8 * 8
    one_packet = two_packets + (rows - two_packets) // 4 * 4
    half_packet = one_packet + (rows - one_packet) // 2 * 2
    return two_packets, one_packet, half_packet


# --- NumPy ------------------------------------------------------------------------


def _products(lhs, rhs, k):
    return lhs[:, k, None] * rhs[k, None, :]


def _sequential(lhs, rhs, start, stop, acc):
    for k in range(start, stop):
        acc = acc + _products(lhs, rhs, k)
    return acc


def _gebp_block(lhs, rhs):
    """One GEBP call on a depth block (rules in the module docstring), from zero."""
    rows, depth = lhs.shape
    cols = rhs.shape[1]
    zero = np.zeros((rows, cols), lhs.dtype)
    out = _sequential(lhs, rhs, 0, depth, zero)
    two_packets, _, half_packet = _gebp_row_bounds(rows)
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
    # Last single row: four accumulators over k mod 4.
    if rows > half_packet:
        a, b = lhs[half_packet:], rhs[:, :grouped]
        whole = depth // 4 * 4
        acc = [np.zeros((1, grouped), lhs.dtype) for _ in range(4)]
        for k in range(0, whole, 4):
            for lane in range(4):
                acc[lane] = acc[lane] + _products(a, b, k + lane)
        out[half_packet:, :grouped] = _sequential(a, b, whole, depth, (acc[0] + acc[1]) + (acc[2] + acc[3]))
    return out


def gebp(lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``lhs @ rhs`` (float64) as Eigen's single-threaded tensor contraction adds it (module docstring)."""
    rows, depth = lhs.shape
    cols = rhs.shape[1]
    block = depth_block_size(depth, rows, cols)
    out = np.zeros((rows, cols), lhs.dtype)
    for start in range(0, depth, block):
        stop = min(start + block, depth)
        out = out + _gebp_block(lhs[:, start:stop], rhs[start:stop])
    return out


def _packet_lanes(lhs, vector, whole):
    """The 4 packet lanes of a GEMV row (lane l: terms k = l mod 4 below ``whole``), from zero."""
    lanes = [np.zeros(lhs.shape[0], lhs.dtype) for _ in range(4)]
    for k in range(0, whole, 4):
        for lane in range(4):
            lanes[lane] = lanes[lane] + lhs[:, k + lane] * vector[k + lane]
    return (lanes[0] + lanes[2]) + (lanes[1] + lanes[3])


def _gemv_grouped_rows(rows, depth):
    """How many leading rows Eigen's row-major GEMV processes in groups of 8, 4 or 2."""
    i = 0
    if depth * 8 <= 32000:
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
    whole = depth // 4 * 4
    pairs = depth // 2 * 2
    reduced = _packet_lanes(lhs, vector, whole)
    grouped = _gemv_grouped_rows(rows, depth)
    out = np.empty(rows, lhs.dtype)
    acc = reduced[:grouped]
    for k in range(whole, depth):
        acc = acc + lhs[:grouped, k] * vector[k]
    out[:grouped] = np.zeros((), lhs.dtype) + acc
    # Single rows: a half packet over the next pairs of terms, then the last term.
    acc = reduced[grouped:]
    half = [np.zeros(rows - grouped, lhs.dtype), np.zeros(rows - grouped, lhs.dtype)]
    for k in range(whole, pairs, 2):
        half[0] = half[0] + lhs[grouped:, k] * vector[k]
        half[1] = half[1] + lhs[grouped:, k + 1] * vector[k + 1]
    acc = acc + (half[0] + half[1])
    for k in range(pairs, depth):
        acc = acc + lhs[grouped:, k] * vector[k]
    out[grouped:] = np.zeros((), lhs.dtype) + acc
    return out


def gemv_col_major(lhs: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """``lhs @ vector`` with ``lhs`` column-major: sequential, in blocks of 16 terms when d >= 128."""
    rows, depth = lhs.shape
    block = _gemv_col_block(rows, depth)
    out = np.zeros(rows, lhs.dtype)
    for start in range(0, depth, block):
        acc = np.zeros(rows, lhs.dtype)
        for k in range(start, min(start + block, depth)):
            acc = acc + lhs[:, k] * vector[k]
        out = out + acc
    return out


@_jit
def _gemv_col_block(rows, depth):
    if depth < 128:
        return depth
    return 16 if rows * 8 < 32000 else 4


def lazy_product(lhs: np.ndarray, rhs: np.ndarray, vectorized: bool) -> np.ndarray:
    """Eigen's coefficient-based product: each coefficient a dot product (module docstring)."""
    depth = lhs.shape[1]
    if vectorized and depth >= 4:
        return _redux_dots(lhs, rhs)
    out = _products(lhs, rhs, 0)
    return _sequential(lhs, rhs, 1, depth, out)


def dot_product(lhs: np.ndarray, rhs: np.ndarray, vectorized: bool) -> np.ndarray:
    """Eigen's ``dot`` of ``lhs`` (1, d) and ``rhs`` (d, 1) (module docstring), shape (1, 1)."""
    depth = lhs.shape[1]
    packets = depth // 4
    if not vectorized or packets == 0:
        return _sequential(lhs, rhs, 1, depth, _products(lhs, rhs, 0))
    acc = [[_products(lhs, rhs, 4 * a + lane) for lane in range(4)] for a in range(min(packets, 4))]
    if packets >= 4:
        quads = packets // 4 * 4
        for packet in range(4, quads):
            a = packet % 4
            acc[a] = [acc[a][lane] + _products(lhs, rhs, 4 * packet + lane) for lane in range(4)]
        for a, packet in enumerate(range(quads, packets)):
            acc[a] = [acc[a][lane] + _products(lhs, rhs, 4 * packet + lane) for lane in range(4)]
    while len(acc) > 1:  # a0 + (a1 + (a2 + a3))
        last = acc.pop()
        acc[-1] = [acc[-1][lane] + last[lane] for lane in range(4)]
    lanes = acc[0]
    return _sequential(lhs, rhs, 4 * packets, depth, (lanes[0] + lanes[2]) + (lanes[1] + lanes[3]))


def _redux_dots(lhs, rhs):
    """Every ``lhs[i] . rhs[:, j]`` by Eigen's vectorised redux (d >= 4)."""
    depth = lhs.shape[1]
    whole = depth // 4 * 4
    pairs_end = depth // 8 * 8
    lanes0 = [_products(lhs, rhs, lane) for lane in range(4)]
    if whole > 4:
        lanes1 = [_products(lhs, rhs, 4 + lane) for lane in range(4)]
        for k in range(8, pairs_end, 8):
            for lane in range(4):
                lanes0[lane] = lanes0[lane] + _products(lhs, rhs, k + lane)
                lanes1[lane] = lanes1[lane] + _products(lhs, rhs, k + 4 + lane)
        lanes0 = [lanes0[lane] + lanes1[lane] for lane in range(4)]
        if whole > pairs_end:
            lanes0 = [lanes0[lane] + _products(lhs, rhs, pairs_end + lane) for lane in range(4)]
    acc = (lanes0[0] + lanes0[2]) + (lanes0[1] + lanes0[3])
    return _sequential(lhs, rhs, whole, depth, acc)


# --- Numba twins (same order, into ``out``) ----------------------------------------


@_jit
def _gebp_block_loop(lhs, rhs, start, stop, out):
    """Adds one GEBP call over depth [start, stop) into ``out``."""
    rows = lhs.shape[0]
    cols = rhs.shape[1]
    depth = stop - start
    two_packets, _, half_packet = _gebp_row_bounds(rows)
    grouped = cols // GEBP_COLS * GEBP_COLS
    peeled = depth & ~(PEEL - 1)
    whole = depth // 4 * 4
    zero = cast(0, lhs)
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
                c0 = zero
                c1 = zero
                c2 = zero
                c3 = zero
                for k in range(0, whole, 4):
                    c0 = c0 + lhs[i, start + k] * rhs[start + k, j]
                    c1 = c1 + lhs[i, start + k + 1] * rhs[start + k + 1, j]
                    c2 = c2 + lhs[i, start + k + 2] * rhs[start + k + 2, j]
                    c3 = c3 + lhs[i, start + k + 3] * rhs[start + k + 3, j]
                acc = (c0 + c1) + (c2 + c3)
                first = whole
            for k in range(first, depth):
                acc = acc + lhs[i, start + k] * rhs[start + k, j]
            out[i, j] = out[i, j] + acc


@_jit
def gebp_loop(lhs, rhs, out):
    """Numba twin of :func:`gebp`, into ``out`` (rows, cols)."""
    rows, depth = lhs.shape
    cols = rhs.shape[1]
    block = _depth_block_size(depth, rows, cols)
    out[:, :] = 0
    for start in range(0, depth, block):
        _gebp_block_loop(lhs, rhs, start, min(start + block, depth), out)


_gemv_grouped_rows_loop = _jit(_gemv_grouped_rows)


@_jit
def gemv_row_major_loop(lhs, vector, out):
    """Numba twin of :func:`gemv_row_major`, into ``out`` (rows,)."""
    rows, depth = lhs.shape
    whole = depth // 4 * 4
    pairs = depth // 2 * 2
    grouped = _gemv_grouped_rows_loop(rows, depth)
    zero = cast(0, lhs)
    for i in range(rows):
        l0 = zero
        l1 = zero
        l2 = zero
        l3 = zero
        for k in range(0, whole, 4):
            l0 = l0 + lhs[i, k] * vector[k]
            l1 = l1 + lhs[i, k + 1] * vector[k + 1]
            l2 = l2 + lhs[i, k + 2] * vector[k + 2]
            l3 = l3 + lhs[i, k + 3] * vector[k + 3]
        acc = (l0 + l2) + (l1 + l3)
        first = whole
        if i >= grouped:
            h0 = zero
            h1 = zero
            for k in range(whole, pairs, 2):
                h0 = h0 + lhs[i, k] * vector[k]
                h1 = h1 + lhs[i, k + 1] * vector[k + 1]
            acc = acc + (h0 + h1)
            first = pairs
        for k in range(first, depth):
            acc = acc + lhs[i, k] * vector[k]
        out[i] = zero + acc


@_jit
def gemv_col_major_loop(lhs, vector, out):
    """Numba twin of :func:`gemv_col_major`, into ``out`` (rows,)."""
    rows, depth = lhs.shape
    block = _gemv_col_block(rows, depth)
    zero = cast(0, lhs)
    for i in range(rows):
        total = zero
        for start in range(0, depth, block):
            acc = zero
            for k in range(start, min(start + block, depth)):
                acc = acc + lhs[i, k] * vector[k]
            total = total + acc
        out[i] = total


@_jit
def _redux_dot_loop(lhs, rhs, i, j):
    depth = lhs.shape[1]
    whole = depth // 4 * 4
    pairs_end = depth // 8 * 8
    a0 = lhs[i, 0] * rhs[0, j]
    a1 = lhs[i, 1] * rhs[1, j]
    a2 = lhs[i, 2] * rhs[2, j]
    a3 = lhs[i, 3] * rhs[3, j]
    if whole > 4:
        b0 = lhs[i, 4] * rhs[4, j]
        b1 = lhs[i, 5] * rhs[5, j]
        b2 = lhs[i, 6] * rhs[6, j]
        b3 = lhs[i, 7] * rhs[7, j]
        for k in range(8, pairs_end, 8):
            a0 = a0 + lhs[i, k] * rhs[k, j]
            a1 = a1 + lhs[i, k + 1] * rhs[k + 1, j]
            a2 = a2 + lhs[i, k + 2] * rhs[k + 2, j]
            a3 = a3 + lhs[i, k + 3] * rhs[k + 3, j]
            b0 = b0 + lhs[i, k + 4] * rhs[k + 4, j]
            b1 = b1 + lhs[i, k + 5] * rhs[k + 5, j]
            b2 = b2 + lhs[i, k + 6] * rhs[k + 6, j]
            b3 = b3 + lhs[i, k + 7] * rhs[k + 7, j]
        a0 = a0 + b0
        a1 = a1 + b1
        a2 = a2 + b2
        a3 = a3 + b3
        if whole > pairs_end:
            a0 = a0 + lhs[i, pairs_end] * rhs[pairs_end, j]
            a1 = a1 + lhs[i, pairs_end + 1] * rhs[pairs_end + 1, j]
            a2 = a2 + lhs[i, pairs_end + 2] * rhs[pairs_end + 2, j]
            a3 = a3 + lhs[i, pairs_end + 3] * rhs[pairs_end + 3, j]
    acc = (a0 + a2) + (a1 + a3)
    for k in range(whole, depth):
        acc = acc + lhs[i, k] * rhs[k, j]
    return acc


@_jit
def lazy_product_loop(lhs, rhs, vectorized, out):
    """Numba twin of :func:`lazy_product`, into ``out`` (rows, cols)."""
    rows, depth = lhs.shape
    cols = rhs.shape[1]
    for i in range(rows):
        for j in range(cols):
            if vectorized and depth >= 4:
                out[i, j] = _redux_dot_loop(lhs, rhs, i, j)
                continue
            acc = lhs[i, 0] * rhs[0, j]
            for k in range(1, depth):
                acc = acc + lhs[i, k] * rhs[k, j]
            out[i, j] = acc


@_jit
def dot_product_loop(lhs, rhs, vectorized):
    """Numba twin of :func:`dot_product`; returns the scalar."""
    depth = lhs.shape[1]
    packets = depth // 4
    if not vectorized or packets == 0:
        acc = lhs[0, 0] * rhs[0, 0]
        for k in range(1, depth):
            acc = acc + lhs[0, k] * rhs[k, 0]
        return acc
    acc = np.zeros((4, 4), lhs.dtype)
    used = min(packets, 4)
    for a in range(used):
        for lane in range(4):
            acc[a, lane] = lhs[0, 4 * a + lane] * rhs[4 * a + lane, 0]
    if packets >= 4:
        quads = packets // 4 * 4
        for packet in range(4, quads):
            for lane in range(4):
                acc[packet % 4, lane] = acc[packet % 4, lane] + lhs[0, 4 * packet + lane] * rhs[4 * packet + lane, 0]
        for packet in range(quads, packets):
            for lane in range(4):
                acc[packet - quads, lane] = acc[packet - quads, lane] + lhs[0, 4 * packet + lane] * rhs[4 * packet + lane, 0]
    for a in range(used - 1, 0, -1):
        for lane in range(4):
            acc[a - 1, lane] = acc[a - 1, lane] + acc[a, lane]
    total = (acc[0, 0] + acc[0, 2]) + (acc[0, 1] + acc[0, 3])
    for k in range(4 * packets, depth):
        total = total + lhs[0, k] * rhs[k, 0]
    return total
