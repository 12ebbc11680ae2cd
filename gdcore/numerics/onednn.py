r"""oneDNN's float32 matrix products, in the order TensorFlow's CPU kernels add the terms.

With oneDNN enabled (TensorFlow's default on x86 Linux CPUs with AVX512_VNNI,
AVX512_BF16, AVX_VNNI or AMX; :mod:`gdcore.numerics.machine`) a float32
``MatMul`` runs as ``_MklMatMul``, whose kernels
oneDNN generates at run time for the CPU's instruction set. On an
FMA-capable CPU they accumulate with fused multiply-adds,
:math:`\mathrm{fma}(a, b, c) = \mathrm{fl}(a b + c)`, one rounding per term.
Which kernel runs depends on the shapes, on the instruction set oneDNN
generates for (sections "AVX-512" and "AVX2") and, for large products, on the
threads TensorFlow lends it (section "Threads"). The orders were read in
oneDNN v3.7's source (``src/cpu/x64/gemm``) and probed with inputs designed to
reveal them (one huge term cancelling another, a small one in between; zero
inputs times negative weights). Each routine exists as a NumPy function and a
Numba ``*_loop`` twin, tested bit-identical.

The machine enters as one argument: every product entry
(:func:`matmul_avx512`, :func:`matmul_grad_input_avx512`,
:func:`matmul_grad_kernel_avx512`, the same three for AVX2, and their
``*_loop(a, b, out, caches)`` twins) takes a
:class:`gdcore.numerics.machine.Caches`, whose ``l2`` is Eigen's L2 size (what
TensorFlow's single-thread threshold reads), ``threads`` TensorFlow's intra-op
threads and ``onednn_l2`` oneDNN's per-core L2 (what oneDNN's own thread
heuristics read). ``gdcore.numerics.cpu_info().caches`` is this machine's.

:func:`fma` is the building block: on NumPy arrays it is computed exactly in
float64 (the product of two float32 is exact there) and corrected where
rounding the float64 sum to float32 would be a double rounding; compiled by
Numba it is LLVM's ``llvm.fma.f32`` (the CPU's FMA instruction).

Notation: :math:`p_k = \mathrm{fl}(a_k w_k)` is a rounded product, and
"FMA-sequential" means :math:`\mathrm{fma}(a_{d-1}, w_{d-1}, \dots
\mathrm{fma}(a_0, w_0, +0))`. B, K, N are the batch, the layer's inputs and
its units. oneDNN works column-major on the transposed product: for a result
with R rows and C columns its m is C, its n is R and its k the depth.

Signed zeros
    Every kernel starts its accumulators at +0 (``vpxorq``/``vxorps``) or
    adds its result onto an output zeroed first (``beta = 0``), so a sum
    whose products are all -0 (zero inputs times negative weights) is +0.
    The routines below are written that way.

Kernels
-------
The two GEMV kernels are the same on both instruction sets
(``jit_sse41_gemv_n_f32_kern`` 16 or 8 lanes wide, ``jit_avx_gemv_t_f32_kern``
8 on both); the no-copy and sixteen-lane kernels below are AVX-512's (AVX2's
no-copy kernel is in its section).

Matrix-vector tree (:func:`gemv_tree`; ``jit_avx_gemv_t_f32_kern``)
    With :math:`d` terms and :math:`d_{16} = 16 \lfloor d/16 \rfloor`: eight
    lanes :math:`l = 0..7` start from :math:`p_l` and take
    :math:`\mathrm{fma}(a_k, w_k, \text{lane}_{k \bmod 8})` for
    :math:`8 \le k < d_{16}`; then, on the remaining terms in order, a block
    of 8 rounded products (if at least 8 remain), a block of 4, a pair and a
    single term. Eight lanes reduce as :math:`((v_0+v_1)+(v_4+v_5)) +
    ((v_2+v_3)+(v_6+v_7))`, four as :math:`(v_0+v_1)+(v_2+v_3)`, a pair as
    :math:`v_0 + v_1`. Each part is added onto the output, which starts at
    +0 (``vfmadd231ss`` with :math:`\alpha = 1`): the result is
    :math:`(((((+0 + s_{lanes}) + s_8) + s_4) + s_2) + p_{d-1})`, each part
    present only if its block is. The same 8-lane kernel on both ISAs.
FMA-sequential (:func:`dot_fma`)
    The non-transposed GEMV (``jit_sse41_gemv_n_f32_kern``: the output
    zeroed, then :math:`y = \mathrm{fma}(x_k, a_k, y)` column by column) and
    the AVX-512 no-copy kernel (``jit_avx512_common_gemm_f32``: one zeroed
    accumulator per element, every term an FMA, times :math:`\alpha = 1`).
Depth blocks of 384 (:func:`dot_fma_blocked`)
    AVX-512's ``sgemm_nocopy_driver`` cuts the depth into blocks of 384
    terms while at least 768 remain; a remainder of 385 to 767 terms is cut
    into two halves, the first ``ceil(r / 2)``. The copy-based driver
    (``gemm_kernel_driver``, ``packed=True``; ``get_k_padd``) cuts a depth of
    385 to 767 into the same two halves, but a longer one into blocks of 384
    and the rest (800: 384, 384, 32, where the no-copy driver takes 384, 208,
    208). Each block is FMA-sequential, and the block results are added in
    order onto the output, :math:`((s_0 + s_1) + s_2) + \dots` (``beta = 1``
    for every block after the first). A depth of at most 384 is one block:
    :func:`dot_fma`.
Sixteen-lane dot (:func:`dot_lanes16`; ``jit_avx512_core_gemm_smalln_tn_f32_kern``)
    Lane :math:`l = k \bmod 16` is FMA-sequential from +0 over its terms (the
    last 1..15 terms by a masked FMA, so empty lanes stay +0); the 16 lanes
    are reduced by adding the upper half onto the lower half (16 to 8 to 4
    to 2 to 1).

Fused activations
-----------------
In a ``tf.function`` (every Keras ``fit``/``predict``/``evaluate`` step),
TensorFlow's graph optimizer fuses ``MatMul + BiasAdd + Sigmoid`` (or
``Tanh``) into one oneDNN inner product (``gemm_inner_product``): the same
sgemm as the plain product (weights in ``ba`` order, so oneDNN's NN case),
then a post-ops kernel that adds the bias (one rounding) and applies oneDNN's
own elementwise kernel (``jit_uni_eltwise_injector``), not Eigen's. Float32
only (float64 is not fused), forward only (the gradients stay Eigen's
``SigmoidGrad``/``TanhGrad`` of that output). Both kernels below use FMA and
run the same instructions on 16 (AVX-512) or 8 (AVX2) lanes.

:func:`logistic`
    :math:`v = -|x|`; :math:`e = \exp(v)` by oneDNN's exp: clamp :math:`v` to
    :math:`[\ln \mathrm{FLT\_MIN}, \ln \mathrm{FLT\_MAX}]`,
    :math:`n = \lfloor \mathrm{fl}(\mathrm{fl}(v \log_2 e) + 1/2) \rfloor`,
    :math:`r = \mathrm{fma}(-n, \ln 2, v)`, a degree-5 polynomial by FMA
    Horner, times :math:`2^{n-1}` (0 where :math:`v < \ln \mathrm{FLT\_MIN}`)
    and times 2; :math:`q = e / (e + 1)`; the result is :math:`q` for a
    negative sign bit and :math:`1 - q` otherwise.
:func:`tanh`
    :math:`s = |x|`; for :math:`s` below :math:`\approx 4.23 \cdot 10^{-4}`,
    :math:`s`; from :math:`\approx 9.01`, 1; in between a degree-6 polynomial
    (FMA Horner) in :math:`r = s - s_0` chosen from a table of 32 by the
    half-binade of :math:`s` (:math:`s_0` is :math:`s` with its low 22
    mantissa bits cleared); the sign of :math:`x` is put back.

Threads
-------
TensorFlow runs oneDNN on one thread if :math:`4(B \cdot K + B \cdot N + K
\cdot N) < 1.01 L_2` bytes, with :math:`L_2` = ``caches.l2``, Eigen's L2 (a
float32 comparison; ``ExecuteSingleThreadedGemm`` in
``mkl_matmul_ops_common.h``), otherwise on its intra-op pool of t =
``caches.threads``. oneDNN then decides, per kernel, how many of the t to use
and how to split the work: where that changes an order the ISA's section says
so (the GEMV's depth split on both; the no-copy tiles on AVX2).

AVX-512
-------
On a CPU with AVX-512 (oneDNN's ``avx512_core`` family and above; e.g.
Sapphire Rapids, TensorFlow's default there) oneDNN v3.7's
``gemm_threading_driver`` (``src/cpu/x64/gemm/gemm_driver.cpp``) tries, in
order, ``jump_to_gemm_smalln_tn`` (oneDNN's transa = T, transb = N and
:math:`1 < n < 16`), ``jump_to_gemv`` (:math:`m = 1` or :math:`n = 1`) and the
no-copy kernels of ``jit_avx512_common_gemm_f32`` or, where
``nocopy_checker_avx512`` declines them, the copy-based kernels; both sum
each element FMA-sequentially within depth blocks, which differ (above).

Dispatch (:func:`matmul_avx512`, :func:`matmul_grad_input_avx512`, :func:`matmul_grad_kernel_avx512`)
    forward ``inputs @ kernel`` (NN, m = N, n = B, k = K): B = 1, the GEMV
    (N outputs over K); N = 1, the tree; otherwise depth blocks of 384.
    Input gradient ``delta @ kernel.T`` (TN, m = K, n = B, k = N):
    2 <= B <= 15, the sixteen-lane dot (before the GEMV, so also with
    K = 1); B = 1, the tree over the kernel's rows; K = 1, the tree;
    otherwise depth blocks of 384. Kernel gradient ``inputs.T @ delta`` (NT,
    m = N, n = K, k = B): K = 1 or N = 1, the GEMV (K N outputs over B);
    otherwise depth blocks of 384. The leading dimensions are lda = N (all
    three), ldb = K, N, K and ldc = N, K, N.
Copy or no copy (``nocopy_checker_avx512``; :func:`_avx512_packs`)
    With t' the threads oneDNN keeps (below), the copy-based driver runs:
    on one thread for TN with :math:`100 < m < 1200` and either both
    :math:`n < 200` and :math:`k < 1200` or lda and ldb multiples of 256 (an
    input gradient with K = 101..1199, B = 16..199, N < 1200); for NN with
    :math:`t' \le 8`, lda a multiple of 1024 (N = 1024, 2048, ...),
    :math:`k > 500` and :math:`n > 100`. Otherwise the no-copy kernels run
    if :math:`1/m + 1/n \ge 0.00196` (unless NT with lda a multiple of
    1024), so always with K or N below about 1020. Past that point: the copy
    driver if a leading dimension is a multiple of 256 and :math:`m \ge 32`,
    :math:`n > 16` (or :math:`n = 16` and :math:`k \ge 6400`, TN or
    :math:`m = 4096`); if :math:`m, n \le 378` and :math:`k \ge 378 t'`;
    if :math:`m, k \ge 378 t'`; else no-copy if :math:`n \le 28 t'` or
    :math:`k \le t'` or :math:`m \le 28 t'` (for TN and NN; for NT only with
    :math:`m \ge n`), the copy driver otherwise.
Threads of the matrix product (``adjust_thread_count``; :func:`_avx512_sgemm_threads`)
    Of the t threads TensorFlow lends, oneDNN keeps all if :math:`n > 50` and
    :math:`m \le 10`, or if the :math:`4(mn + mk + nk)` bytes fit the L2 of
    the socket, ``caches.onednn_l2`` times the cores per socket (Xbyak's
    count, which :class:`~gdcore.numerics.machine.Caches` does not carry:
    taken to be t); otherwise, with :math:`c = mnk/32` cycles, 1 if
    :math:`c < 3000` and else the largest :math:`i \le t` with
    :math:`3000 i < c (i - 1)` (or 1) for :math:`t \le 4`; for more
    threads, 1 if :math:`c < 5000`, else :math:`i = t, t - 2, \dots` (by 4
    from 10, by 8 from 30) until :math:`(4000 + 500 i) i < c (i - 1)`. Only
    the copy-or-no-copy choice reads this count: the kernels' own splits
    change no order (below).
GEMV (:func:`gemv_fma_avx512`; ``gemv_threading_driver``, ``gemv_driver.cpp``)
    FMA-sequential over the depth from +0. For m outputs and depth n,
    ``thread_checker`` gives it, of the t threads TensorFlow lends, 1 if
    :math:`mn + 288n < 41700`; t if :math:`m \ge 20000` and :math:`n \le 200`;
    with :math:`b = \lfloor n/t \rfloor` and :math:`t \le 12`, 1 if
    :math:`b < 32` and :math:`mb < 2048` or :math:`b \ge 32` and
    :math:`mb < 4096`; with :math:`t > 12` and :math:`mb < 4096`, 1 if
    :math:`b = 0`, else :math:`\min(\max(\lfloor mn/3072 \rfloor, 1), t)`;
    else t. (It caps t at oneDNN's count of cores per
    socket when the :math:`4mn` bytes fit the L2 of those cores; that count,
    which :class:`~gdcore.numerics.machine.Caches` does not carry, is taken
    to be at least t.) Unlike AVX2's, the AVX-512 branch does not
    limit t to :math:`\lceil 4mn/L_2 \rceil`, so the split comes earlier:
    the kernel gradient with K = 64, N = 1 is cut from B = 8146, where
    TensorFlow starts lending its threads (2 MiB L2), on AVX2 from B = 8193.
    With more than one thread, in the short-and-fat case (:math:`m \le 500t`,
    :math:`n \ge 128t`) the depth is cut into t parts (the first n mod t one
    term longer), each FMA-sequential from +0, and the part sums are added in
    order; otherwise the outputs are split, which changes no order.
    TensorFlow's fused Dense layer lends its threads by the same threshold.
Other splits
    The sixteen-lane kernel splits oneDNN's m (``smalln_set_num_threads``),
    the tree its outputs, the no-copy kernel m and n
    (``calc_nthr_nocopy_avx512_common``; the depth only in a synchronising
    runtime, never in TensorFlow's thread pool) and each thread's share into
    blocks of 4032 x 64 (384 for TN), the copy-based driver m and n (its
    depth never for float32): none changes an order.
The fused Dense layer
    Its product is :func:`matmul_avx512`.
Verified
    bit for bit (NumPy, Numba and TensorFlow 2.21 with oneDNN v3.7.3, AVX-512
    with AMX, 2 intra-op threads, 2 MiB L2; ``tests/test_onednn_avx512.py``)
    for every B in 1, 2, 3, 7, 10, 11, 15, 16, 17, 20, 33, 100, 257, 385,
    768, 769, 1000, 2000, 5000, 10000 with K in 1, 3, 8, 16, 17, 64 and N in
    1, 2, 3, 7, 8, 16, 17, 64 (all three products, the plain and the fused
    layer, sigmoid and tanh), on random inputs spanning :math:`2^{-8}..2^{8}`
    and on inputs with exact zeros (zero rows and columns of +0 times
    negative weights, zeros of either sign at random, zero biases of either
    sign); at the GEMV's thread threshold (B = 8145, 8146 with K = 64,
    N = 1); with depths of 500, 767, 1000 (forward, B = 1, 20, 33, 100) and
    500, 1000 (input gradient); and on the copy-based driver: forward
    1030 x K x 1030 with K = 100, 384, 385, 768, 800, 1100, 1500,
    1100 x 1100 x 1100, 2048 x 784 x 2048 and 2000 x 64 x 1100 (B x K x N),
    with N = 1024 (B = 101, 200,
    K = 800), the input gradient on one thread (B = 32, K = 128, N = 64 and
    800; B = 100, K = 784, N = 64; B = 16, K = 101, N = 10) and the kernel
    gradient with K = N = 1030 (B = 800, 1500) and with N = 1024 (B = 800,
    K = 17).

AVX2
----
On a CPU without AVX-512 (or with ``ONEDNN_MAX_CPU_ISA=AVX2``; e.g. Alder
Lake) oneDNN v3.7 runs the products of :func:`matmul_avx2`,
:func:`matmul_grad_input_avx2` and :func:`matmul_grad_kernel_avx2` through a
GEMV kernel (``jump_to_gemv``, ``gemv_driver.cpp``) or the no-copy kernels of
``jit_avx_gemm_f32`` (``src/cpu/x64/gemm/f32/jit_avx_gemm_f32.cpp``;
``nocopy_checker_avx2`` takes them whenever :math:`1/m + 1/n \ge 0.0038`, so
always with K, N <= 64). The fused Dense layer's product is
:func:`matmul_avx2`.

Dispatch
    forward ``inputs @ kernel``: B = 1, the GEMV; N = 1, the tree; otherwise
    no-copy (NN, BN = 48, BK = 256). Input gradient ``delta @ kernel.T``:
    B = 1 or K = 1, the tree; otherwise no-copy (TN, BN = 96, BK = 256).
    Kernel gradient ``inputs.T @ delta``: K = 1 or N = 1, the GEMV; otherwise
    no-copy (NT, BN = 48, BK = 96).
GEMV (:func:`gemv_fma_avx2`)
    As on AVX-512, except the last step of ``thread_checker``: with
    :math:`L_2` = ``caches.onednn_l2`` it gives :math:`\min(t, \lceil
    4mn/L_2 \rceil)` threads.
No-copy kernel (``xbyak_gemm_t`` under ``sgemm_nocopy_driver``; :func:`dot_nocopy_avx2`)
    Threads split the rows and columns (below). In each thread's share the
    depth is cut into blocks of BK while at least 2 BK terms remain, then
    the rest, in two halves (the first :math:`\lceil r/2 \rceil`) if more
    than BK; the rows into blocks of BN while at least 2 BN remain, then the
    rest, in two halves if more than 1.5 BN; the columns likewise by 4032.
    Within a block the kernel takes tiles of 6 rows and one tile of the last
    1..5, and tiles of 16 columns; the last 1..15 columns form a 16-column
    tile if more than 8, else an 8-column tile. By its tile, each element
    sums a depth block of d terms as

    * 16 columns, 4 to 6 rows: one FMA chain, :math:`\mathrm{fma}(a_{d-1},
      w_{d-1}, \dots \mathrm{fma}(a_0, w_0, +0))`;
    * 16 columns and 3 rows, or 8 columns and 3 to 6 rows: two FMA chains
      from +0, :math:`E` over the even k and :math:`O` over the odd k below
      :math:`2\lfloor d/2 \rfloor`, then :math:`E + O`, then for odd d
      :math:`\mathrm{fma}(a_{d-1}, w_{d-1}, E + O)`;
    * 1 or 2 rows: the same two chains with rounded products and additions,
      :math:`(\dots((+0 + p_0) + p_2) \dots)`, and :math:`(E + O) + p_{d-1}`.

    The depth-block sums are added in order, :math:`((s_0 + s_1) + s_2) +
    \dots`.
Threads
    oneDNN's ``adjust_thread_count`` keeps all t if :math:`n > 50` and
    :math:`m \le 3`; else (after :math:`t = \max(\lfloor m/24 \rfloor, 1)` if
    :math:`m > 10n`, :math:`n < t` and :math:`\lfloor m/t \rfloor < 24`) it
    uses :math:`\min(t, \lceil 4(mn + mk + nk) / L_2 \rceil)` with
    :math:`L_2` = ``caches.onednn_l2``; ``calc_nthr_nocopy_avx`` never splits
    the depth in a thread pool and, for :math:`m \le 64`, gives each of the
    t threads :math:`\lceil n/t \rceil` rows (:func:`_nocopy_thread_grid` has
    the general grid). The GEMV and the tree split their outputs between
    threads, which changes no order, except the GEMV case above.
Verified
    bit for bit (NumPy, Numba and TensorFlow 2.21 with oneDNN v3.7.3 under
    ``ONEDNN_MAX_CPU_ISA=AVX2``, 2 intra-op threads, 2 MiB L2;
    ``tests/test_onednn_avx2.py``) on the same grid and inputs as AVX-512;
    the products also at the thread thresholds (B = 4104, 4105 with
    K = N = 64; B = 8192, 8193 for the GEMV, K or N = 64), the forward and
    kernel gradient with N = 65, 100, 200 (B = 2000, 10000, K = 64) and the
    input gradient with K = 100 (B = 10000, N = 64).
"""

import numpy as np
from numba import njit, types
from numba.extending import intrinsic, overload

from gdcore._dtype import bitcast, cast, jitable, where
from gdcore.numerics._in_place import activation_loop
from gdcore.numerics.machine import Caches

_jit = njit(cache=True, error_model="numpy", nogil=True)

# Depth block of AVX-512's no-copy driver (``sgemm_nocopy_driver``: BK = 384 on avx512_core).
DEPTH_BLOCK = 384


# --- fused multiply-add -------------------------------------------------------------


def fma(x, y, acc):
    """Correctly rounded float32 ``x * y + acc`` (what an FMA instruction returns), elementwise.

    ``x * y`` is exact in float64 (24 + 24 bits); the float64 sum is rounded
    once, and where that rounding lands exactly halfway between two float32
    the exact TwoSum error decides the direction, so the float32 result is the
    correctly rounded one. Compiled by Numba, this is ``llvm.fma.f32``.
    """
    product = np.float64(x) * np.float64(y) if np.ndim(x) == 0 and np.ndim(y) == 0 else np.asarray(x, np.float64) * y
    addend = np.asarray(acc, np.float64)
    total = product + addend
    virtual = total - product
    error = (product - (total - virtual)) + (addend - virtual)
    rounded = total.astype(np.float32)
    offset = total - rounded.astype(np.float64)
    beyond = (total + offset).astype(np.float32)
    is_tie = (beyond.astype(np.float64) - total == offset) & (offset != 0.0)
    push = is_tie & (error * offset > 0.0)
    result = np.where(push, beyond, rounded)
    return result if result.ndim else result[()]


@intrinsic
def _llvm_fma(typingctx, x, y, acc):
    if not (isinstance(x, types.Float) and x == y == acc):
        return None

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return x(x, y, acc), codegen


@overload(fma, jit_options={"cache": True})
def _fma_numba(x, y, acc):
    if x == y == acc == types.float32:
        return lambda x, y, acc: _llvm_fma(x, y, acc)
    return None


# --- the kernels' orders (module docstring, "Kernels"), NumPy ----------------------------


def dot_fma(inputs: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``inputs @ kernel`` with every output FMA-sequential over k from +0 (float32)."""
    out = inputs[:, 0, None] * kernel[0] + np.float32(0)  # fma(a_0, w_0, +0): one rounding, -0 becomes +0
    for k in range(1, kernel.shape[0]):
        out = fma(inputs[:, k, None], kernel[k], out)
    return out


@jitable
def _next_block(remaining, block, split_above):
    """Size of the next block of oneDNN's GEMM drivers: ``block`` while at least two remain, else
    the rest, cut in two halves (the first ``ceil(r / 2)``) if more than ``split_above`` remain."""
    if remaining >= 2 * block:
        return block
    if remaining > split_above:
        return (remaining + 1) // 2
    return remaining


@jitable
def _depth_block(depth, start, packed):
    """Size of the depth block that starts at ``start``: the no-copy driver's (:func:`_next_block` by 384)
    or, ``packed``, the copy-based driver's (``get_k_padd``: the whole depth up to 384, two halves below
    768, else 384, the rest last)."""
    if not packed:
        return _next_block(depth - start, DEPTH_BLOCK, DEPTH_BLOCK)
    if depth <= DEPTH_BLOCK:
        return depth - start
    if depth < 2 * DEPTH_BLOCK:
        return min((depth + 1) // 2, depth - start)
    return min(DEPTH_BLOCK, depth - start)


def depth_blocks(depth: int, block: int = DEPTH_BLOCK, packed: bool = False) -> list[int]:
    """Block boundaries ``[0, ..., depth]`` of oneDNN's depth blocking (module docstring): the no-copy
    driver's with ``block`` (384 on AVX-512), or, ``packed``, the copy-based driver's."""
    bounds = [0]
    while bounds[-1] < depth:
        if packed:
            step = _depth_block(depth, bounds[-1], True)
        else:
            step = _next_block(depth - bounds[-1], block, block)
        bounds.append(bounds[-1] + step)
    return bounds


def dot_fma_blocked(lhs: np.ndarray, rhs: np.ndarray, packed: bool = False) -> np.ndarray:
    """``lhs @ rhs`` FMA-sequential within depth blocks of 384 (module docstring), blocks added in order;
    ``packed``: the copy-based driver's blocks."""
    bounds = depth_blocks(lhs.shape[1], packed=packed)
    out = dot_fma(lhs[:, : bounds[1]], rhs[: bounds[1]])
    for start, stop in zip(bounds[1:-1], bounds[2:]):
        out = out + dot_fma(lhs[:, start:stop], rhs[start:stop])
    return out


def dot_lanes16(lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``lhs @ rhs`` by the sixteen-lane dot (module docstring)."""
    lanes = [np.zeros((lhs.shape[0], rhs.shape[1]), lhs.dtype)] * 16
    for k in range(lhs.shape[1]):
        lanes[k % 16] = fma(lhs[:, k, None], rhs[k], lanes[k % 16])
    width = 16
    while width > 1:
        width //= 2
        lanes = [lanes[lane] + lanes[lane + width] for lane in range(width)]
    return lanes[0]


def _hsum8(lanes):
    return ((lanes[0] + lanes[1]) + (lanes[4] + lanes[5])) + ((lanes[2] + lanes[3]) + (lanes[6] + lanes[7]))


def _hsum4(lanes):
    return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])


def gemv_tree(inputs: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """``inputs @ vector`` (one output per row) by oneDNN's matrix-vector tree (module docstring)."""
    depth = inputs.shape[1]
    sixteens = depth // 16 * 16
    out = np.zeros(inputs.shape[0], inputs.dtype)
    if sixteens:
        lanes = [inputs[:, lane] * vector[lane] for lane in range(8)]
        for k in range(8, sixteens):
            lanes[k % 8] = fma(inputs[:, k], vector[k], lanes[k % 8])
        out = out + _hsum8(lanes)
    k = sixteens
    for width, reduce in ((8, _hsum8), (4, _hsum4), (2, lambda lanes: lanes[0] + lanes[1]), (1, lambda lanes: lanes[0])):
        if depth - k >= width:
            out = out + reduce([inputs[:, k + lane] * vector[k + lane] for lane in range(width)])
            k += width
    return out


# --- the kernels' orders, Numba twins ------------------------------------------------------


@_jit
def dot_fma_loop(inputs, kernel, out):
    """Numba twin of :func:`dot_fma`, into ``out``."""
    rows, depth = inputs.shape
    for b in range(rows):
        for j in range(kernel.shape[1]):
            acc = cast(0, inputs)
            for k in range(depth):
                acc = fma(inputs[b, k], kernel[k, j], acc)
            out[b, j] = acc


@_jit
def dot_fma_blocked_loop(lhs, rhs, out, packed=False):
    """Numba twin of :func:`dot_fma_blocked`, into ``out``."""
    rows, depth = lhs.shape
    start = 0
    while start < depth:
        stop = start + _depth_block(depth, start, packed)
        for i in range(rows):
            for j in range(rhs.shape[1]):
                acc = cast(0, lhs)
                for k in range(start, stop):
                    acc = fma(lhs[i, k], rhs[k, j], acc)
                out[i, j] = acc if start == 0 else out[i, j] + acc
        start = stop


@_jit
def dot_lanes16_loop(lhs, rhs, out):
    """Numba twin of :func:`dot_lanes16`, into ``out``."""
    rows, depth = lhs.shape
    lanes = np.empty(16, lhs.dtype)
    for i in range(rows):
        for j in range(rhs.shape[1]):
            lanes[:] = 0
            for k in range(depth):
                lanes[k % 16] = fma(lhs[i, k], rhs[k, j], lanes[k % 16])
            width = 16
            while width > 1:
                width //= 2
                for lane in range(width):
                    lanes[lane] = lanes[lane] + lanes[lane + width]
            out[i, j] = lanes[0]


@_jit
def _hsum8_at(lanes):
    return ((lanes[0] + lanes[1]) + (lanes[4] + lanes[5])) + ((lanes[2] + lanes[3]) + (lanes[6] + lanes[7]))


@_jit
def gemv_tree_loop(inputs, vector, out):
    """Numba twin of :func:`gemv_tree`, into ``out`` (rows,)."""
    rows, depth = inputs.shape
    sixteens = depth // 16 * 16
    lanes = np.empty(8, inputs.dtype)
    for b in range(rows):
        acc = cast(0, inputs)
        if sixteens:
            for lane in range(8):
                lanes[lane] = inputs[b, lane] * vector[lane]
            for k in range(8, sixteens):
                lanes[k % 8] = fma(inputs[b, k], vector[k], lanes[k % 8])
            acc = acc + _hsum8_at(lanes)
        k = sixteens
        if depth - k >= 8:
            for lane in range(8):
                lanes[lane] = inputs[b, k + lane] * vector[k + lane]
            acc = acc + _hsum8_at(lanes)
            k += 8
        if depth - k >= 4:
            acc = acc + ((inputs[b, k] * vector[k] + inputs[b, k + 1] * vector[k + 1])
                         + (inputs[b, k + 2] * vector[k + 2] + inputs[b, k + 3] * vector[k + 3]))
            k += 4
        if depth - k >= 2:
            acc = acc + (inputs[b, k] * vector[k] + inputs[b, k + 1] * vector[k + 1])
            k += 2
        if depth - k >= 1:
            acc = acc + inputs[b, k] * vector[k]
        out[b] = acc


# --- threads (module docstring, "Threads" and each ISA's GEMV) -----------------------------


@jitable
def _tensorflow_threads(rows, depth, cols, caches):
    """Threads TensorFlow gives oneDNN for a product: one below 1.01 x Eigen's L2 (``ExecuteSingleThreadedGemm``)."""
    footprint = np.float32(4 * (rows * cols + depth * (rows + cols)))
    if footprint < np.float32(caches.l2) * np.float32(1.01):
        return 1
    return caches.threads


@jitable
def _gemv_threads(m, n, threads, onednn_l2, avx512):
    """oneDNN's ``thread_checker`` for a float32 GEMV with m outputs and depth n, ``threads`` lent by
    TensorFlow's pool; ``avx512`` picks the thread pool's AVX-512 branch, else AVX2's (``onednn_l2``)."""
    if threads == 1 or m * n + 288 * n < 41700:
        return 1
    if m >= 20000 and n <= 200:
        return threads
    band = n // threads
    if threads <= 12 and band < 32:
        if m * band < 2048:
            return 1
    elif threads <= 12 and m * band < 4096:
        return 1
    elif threads > 12 and band * m < 4096:
        return 1 if band == 0 else min(max(n * m // 3072, 1), threads)
    if avx512:
        return threads  # min(threads, cores per socket) if 4mn fits their L2; cores >= threads (docstring)
    return min(threads, (m * n * 4 + onednn_l2 - 1) // onednn_l2)


@jitable
def _gemv_depth_parts(rows, depth, cols, caches, avx512):
    """How many parts oneDNN's non-transposed GEMV cuts the depth of a (rows, depth) @ (depth, cols)
    product into (rows or cols is 1): one per thread in its short-and-fat case, else 1. The first
    ``depth % parts`` parts have one more term (``part_1d``)."""
    lent = _tensorflow_threads(rows, depth, cols, caches)
    outputs = rows * cols
    threads = _gemv_threads(outputs, depth, lent, caches.onednn_l2, avx512)
    if threads > 1 and outputs <= threads * 500 and depth >= threads * 128:
        return threads
    return 1


def _gemv_fma(lhs, rhs, parts):
    """``lhs @ rhs`` with the depth cut into ``parts`` (the first ``depth % parts`` one term longer),
    each FMA-sequential from +0, the part sums added in order."""
    depth = lhs.shape[1]
    out = None
    start = 0
    for t in range(parts):
        stop = start + depth // parts + (t < depth % parts)
        part = dot_fma(lhs[:, start:stop], rhs[start:stop])
        out = part if out is None else out + part
        start = stop
    return out


@_jit
def _gemv_fma_loop(lhs, rhs, out, parts):
    """Numba twin of :func:`_gemv_fma`, into ``out``."""
    rows, depth = lhs.shape
    for i in range(rows):
        for j in range(rhs.shape[1]):
            start = 0
            for t in range(parts):
                stop = start + depth // parts + (1 if t < depth % parts else 0)
                acc = cast(0, lhs)
                for k in range(start, stop):
                    acc = fma(lhs[i, k], rhs[k, j], acc)
                out[i, j] = acc if t == 0 else out[i, j] + acc
                start = stop


# --- AVX-512 (module docstring, "AVX-512") ---------------------------------------------------


@jitable
def _avx512_sgemm_threads(m, n, k, caches):
    """oneDNN's ``adjust_thread_count`` for float32 on AVX-512 in a thread pool (oneDNN's m, n, k), from the
    threads TensorFlow lends; oneDNN's cores per socket are taken to be ``caches.threads`` (docstring)."""
    threads = _tensorflow_threads(n, k, m, caches)
    if threads == 1 or (n > 50 and m <= 10):
        return threads
    if caches.onednn_l2 * threads > 4 * (m * n + m * k + n * k):
        return threads
    cycles = m * n * k / 32.0  # m n k / (2 * 2 * 16 flops per cycle), times 2 for float32
    if threads <= 4:
        if cycles < 3000.0:
            return 1
        i = threads
        while i > 1 and not 3000.0 * i < cycles * (i - 1):
            i -= 1
        return i
    if cycles < 5000.0:
        return 1
    i = threads
    while i > 1:
        if (4000.0 + 500.0 * i) * i < cycles * (i - 1):
            break
        i -= 2 if i < 10 else (4 if i < 30 else 8)
    return max(i, 1)


@jitable
def _avx512_packs(trans_a, trans_b, m, n, k, lda, ldb, ldc, caches):
    """Whether oneDNN copies the operands (``nocopy_checker_avx512`` says no) for a product that reaches
    its no-copy check, in oneDNN's column-major terms (m, n, k and the leading dimensions)."""
    threads = _avx512_sgemm_threads(m, n, k, caches)
    is_nn = not trans_a and not trans_b
    is_nt = not trans_a and trans_b
    is_tn = trans_a and not trans_b
    lda_bad, ldb_bad, ldc_bad = lda % 256 == 0, ldb % 256 == 0, ldc % 256 == 0
    lda_very_bad = lda % 1024 == 0
    if threads == 1 and is_tn and m > 100 and ((m < 1200 and n < 200 and k < 1200) or (lda_bad and ldb_bad)):
        return True
    if threads <= 8 and is_nn and lda_very_bad and k > 500 and n > 100:
        return True
    if 1.0 / m + 1.0 / n >= 0.00196 and not (lda_very_bad and is_nt):
        return False
    if (lda_bad or ldb_bad or ldc_bad) and m >= 32 and (n > 16 or (n == 16 and (k >= 6400 or trans_a or m == 4096))):
        return True
    if m <= 378 and n <= 378 and k >= threads * 378:
        return True
    if m >= threads * 378 and k >= threads * 378:
        return True
    if not trans_b:
        return not (m <= threads * 28 or n <= threads * 28 or k <= threads)
    return not ((m <= threads * 28 and m >= n) or n <= threads * 28 or k <= threads)


# oneDNN's (transa, transb, m, n, k, lda, ldb, ldc) of each product (module docstring, "Dispatch").


@jitable
def _packs_forward(batch, n_in, n_out, caches):
    return _avx512_packs(False, False, n_out, batch, n_in, n_out, n_in, n_out, caches)


@jitable
def _packs_grad_input(batch, n_in, n_out, caches):
    return _avx512_packs(True, False, n_in, batch, n_out, n_out, n_out, n_in, caches)


@jitable
def _packs_grad_kernel(batch, n_in, n_out, caches):
    return _avx512_packs(False, True, n_out, n_in, batch, n_out, n_in, n_out, caches)


def gemv_fma_avx512(lhs: np.ndarray, rhs: np.ndarray, caches: Caches) -> np.ndarray:
    """``lhs @ rhs`` with one row or one column by oneDNN's non-transposed GEMV on AVX-512 (module docstring)."""
    return _gemv_fma(lhs, rhs, _gemv_depth_parts(lhs.shape[0], lhs.shape[1], rhs.shape[1], caches, True))


def matmul_avx512(inputs: np.ndarray, kernel: np.ndarray, caches: Caches) -> np.ndarray:
    """Forward product ``inputs @ kernel`` as TensorFlow's oneDNN sgemm runs it on AVX-512 (module docstring)."""
    if inputs.shape[0] == 1:
        return gemv_fma_avx512(inputs, kernel, caches)
    if kernel.shape[1] == 1:
        return gemv_tree(inputs, kernel[:, 0])[:, None]
    packed = _packs_forward(inputs.shape[0], inputs.shape[1], kernel.shape[1], caches)
    return dot_fma_blocked(inputs, kernel, packed)


def matmul_grad_input_avx512(delta: np.ndarray, kernel: np.ndarray, caches: Caches) -> np.ndarray:
    """Input gradient ``delta @ kernel.T`` on AVX-512 (module docstring)."""
    rows = delta.shape[0]
    if 1 < rows < 16:
        return dot_lanes16(delta, kernel.T)
    if rows == 1:
        return gemv_tree(kernel, delta[0])[None, :]
    if kernel.shape[0] == 1:
        return gemv_tree(delta, kernel[0])[:, None]
    packed = _packs_grad_input(delta.shape[0], kernel.shape[0], kernel.shape[1], caches)
    return dot_fma_blocked(delta, kernel.T, packed)


def matmul_grad_kernel_avx512(inputs: np.ndarray, delta: np.ndarray, caches: Caches) -> np.ndarray:
    """Kernel gradient ``inputs.T @ delta`` on AVX-512 (module docstring)."""
    if inputs.shape[1] == 1 or delta.shape[1] == 1:
        return gemv_fma_avx512(inputs.T, delta, caches)
    packed = _packs_grad_kernel(inputs.shape[0], inputs.shape[1], delta.shape[1], caches)
    return dot_fma_blocked(inputs.T, delta, packed)


# The loops pass any-layout views (``[:, :]``), so that the three products share one compiled
# specialization of each kernel: a third of the compile time, the same speed.


@_jit
def gemv_fma_avx512_loop(lhs, rhs, out, caches):
    """Numba twin of :func:`gemv_fma_avx512`, into ``out``."""
    _gemv_fma_loop(lhs, rhs, out, _gemv_depth_parts(lhs.shape[0], lhs.shape[1], rhs.shape[1], caches, True))


@_jit
def matmul_avx512_loop(inputs, kernel, out, caches):
    """Numba twin of :func:`matmul_avx512`, into ``out``."""
    if inputs.shape[0] == 1:
        gemv_fma_avx512_loop(inputs[:, :], kernel[:, :], out[:, :], caches)
    elif kernel.shape[1] == 1:
        gemv_tree_loop(inputs[:, :], kernel[:, 0], out[:, 0])
    else:
        dot_fma_blocked_loop(inputs[:, :], kernel[:, :], out[:, :],
                             _packs_forward(inputs.shape[0], inputs.shape[1], kernel.shape[1], caches))


@_jit
def matmul_grad_input_avx512_loop(delta, kernel, out, caches):
    """Numba twin of :func:`matmul_grad_input_avx512`, into ``out``."""
    rows = delta.shape[0]
    if 1 < rows < 16:
        dot_lanes16_loop(delta[:, :], kernel.T[:, :], out[:, :])
    elif rows == 1:
        gemv_tree_loop(kernel[:, :], delta[:, :][0], out[:, :][0])
    elif kernel.shape[0] == 1:
        gemv_tree_loop(delta[:, :], kernel[:, :][0], out[:, 0])
    else:
        dot_fma_blocked_loop(delta[:, :], kernel.T[:, :], out[:, :],
                             _packs_grad_input(delta.shape[0], kernel.shape[0], kernel.shape[1], caches))


@_jit
def matmul_grad_kernel_avx512_loop(inputs, delta, out, caches):
    """Numba twin of :func:`matmul_grad_kernel_avx512`, into ``out``."""
    if inputs.shape[1] == 1 or delta.shape[1] == 1:
        gemv_fma_avx512_loop(inputs.T[:, :], delta[:, :], out[:, :], caches)
    else:
        dot_fma_blocked_loop(inputs.T[:, :], delta[:, :], out[:, :],
                             _packs_grad_kernel(inputs.shape[0], inputs.shape[1], delta.shape[1], caches))


# --- AVX2: jit_avx_gemm_f32's no-copy kernels and the GEMV kernels -------------------------
#
# On AVX2 oneDNN's sgemm runs every product of the shapes the profile needs through
# ``jit_avx_gemm_f32`` (``nocopy_checker_avx2``: 1/m + 1/n >= 0.0038) or a GEMV kernel.
# oneDNN is column-major: it computes C^T = rhs^T lhs^T, so its m is the number of columns
# of our (row-major) result, its n the number of rows, its k the depth.

# sgemm_nocopy_driver's (column block BN, depth block BK) per oneDNN (transa, transb):
# NN is the forward product, TN the input gradient, NT the kernel gradient.
NOCOPY_BLOCKS_NN = (48, 256)
NOCOPY_BLOCKS_TN = (96, 256)
NOCOPY_BLOCKS_NT = (48, 96)
_ROW_BLOCK = 4032  # BM, oneDNN's m (our columns) per call of the kernel
_SINGLE, _PAIRED_FMA, _PAIRED = 0, 1, 2  # how one kernel tile accumulates (module docstring)


@jitable
def _nocopy_threads(m, n, k, caches):
    """Threads of oneDNN's sgemm (``adjust_thread_count``, AVX2 and a thread pool) in oneDNN's m, n, k."""
    threads = _tensorflow_threads(n, k, m, caches)
    if threads == 1:
        return 1
    if n > 50 and m <= 3:
        return threads
    if m > 10 * n and n < threads and m // threads < 24:
        threads = max(m // 24, 1)
    footprint = 4 * (m * n + m * k + n * k)
    return min(threads, (footprint + caches.onednn_l2 - 1) // caches.onednn_l2)


@jitable
def _nocopy_thread_grid(m, n, threads):
    """``calc_nthr_nocopy_avx`` without depth splitting (a thread pool cannot synchronise):
    (threads along m, threads along n, m per thread, n per thread)."""
    if threads == 1:
        return 1, 1, m, n
    along_m = (m + 63) // 64
    along_n = (n + 47) // 48
    if along_m == 1:
        along_n = threads
    if along_n == 1:
        along_m = threads
    while along_m * along_n > threads:
        if along_m > along_n:
            along_m -= 1
        else:
            along_n -= 1
    while along_m * along_n < threads:
        if along_m < along_n:
            along_m += 1
        else:
            along_n += 1
    if along_m * along_n > threads and along_m > 1 and along_n > 1:
        if along_m <= along_n:
            along_m = min(int(np.sqrt(threads)), (m + 15) // 16)
            along_n = threads // along_m
            while along_m > 1 and along_m * along_n != threads:
                along_m -= 1
                along_n = threads // along_m
        else:
            along_n = min(int(np.sqrt(threads)), n)
            along_m = threads // along_n
            while along_n > 1 and along_m * along_n != threads:
                along_n -= 1
                along_m = threads // along_n
    m_part = (m + along_m - 1) // along_m + 15
    m_part -= m_part % 16
    n_part = (n + along_n - 1) // along_n
    if m_part * along_m > m:
        along_m = (m + m_part - 1) // m_part
    if n_part * along_n > n:
        along_n = (n + n_part - 1) // n_part
    return along_m, along_n, m_part, n_part


@jitable
def _tile_widths(n, parts, part, block, widths):
    """Width (1..6) of the kernel tile that holds each of oneDNN's n columns (our rows), into ``widths``."""
    for t in range(parts):
        start = t * part
        end = min(start + part, n)
        while start < end:
            stop = start + _next_block(end - start, block, block + block // 2)
            whole = start + (stop - start) // 6 * 6
            for j in range(start, stop):
                widths[j] = 6 if j < whole else stop - whole
            start = stop


@jitable
def _tile_is_tall(m, parts, part, tall):
    """Whether each of oneDNN's m rows (our columns) is in a 16-row tile (else an 8-row one), into ``tall``."""
    for t in range(parts):
        start = t * part
        end = min(start + part, m)
        while start < end:
            stop = start + _next_block(end - start, _ROW_BLOCK, _ROW_BLOCK + _ROW_BLOCK // 2)
            whole = start + (stop - start) // 16 * 16
            for i in range(start, stop):
                tall[i] = i < whole or stop - whole > 8
            start = stop


@jitable
def _tile_kind(tall, width):
    """How a tile accumulates (module docstring): one FMA chain, two FMA chains (even/odd k), or two
    chains of rounded products; elementwise on arrays."""
    # _PAIRED (2), one less from 3 rows, one less again in a 16-column tile from 4 rows: a sum of
    # booleans, so that scalars (compiled) and arrays (NumPy) take the same expression.
    return _PAIRED - (width >= 3) - (tall & (width >= 4))


def _nocopy_kinds(rows, depth, cols, col_block, caches):
    """The accumulation kind of every element of a (rows, cols) no-copy product (module docstring)."""
    threads = _nocopy_threads(cols, rows, depth, caches)
    along_m, along_n, m_part, n_part = _nocopy_thread_grid(cols, rows, threads)
    widths = np.empty(rows, np.int64)
    tall = np.empty(cols, np.bool_)
    _tile_widths(rows, along_n, n_part, col_block, widths)
    _tile_is_tall(cols, along_m, m_part, tall)
    return _tile_kind(tall[None, :], widths[:, None])


def dot_even_odd(lhs: np.ndarray, rhs: np.ndarray, fused: bool) -> np.ndarray:
    """``lhs @ rhs`` by two accumulators from +0, even and odd k, added, then the last term of an
    odd depth. ``fused``: each term is an FMA; otherwise a rounded product and an addition."""
    depth = lhs.shape[1]
    paired = depth // 2 * 2

    def term(k, acc):
        return fma(lhs[:, k, None], rhs[k], acc) if fused else acc + lhs[:, k, None] * rhs[k]

    even = odd = np.zeros((lhs.shape[0], rhs.shape[1]), lhs.dtype)
    for k in range(0, paired, 2):
        even = term(k, even)
        odd = term(k + 1, odd)
    acc = even + odd
    return term(paired, acc) if paired < depth else acc


def dot_nocopy_avx2(lhs: np.ndarray, rhs: np.ndarray, col_block: int, depth_block: int,
                    caches: Caches) -> np.ndarray:
    """``lhs @ rhs`` by AVX2 ``jit_avx_gemm_f32`` no-copy kernels (module docstring), float32."""
    rows, depth = lhs.shape
    kinds = _nocopy_kinds(rows, depth, rhs.shape[1], col_block, caches)
    dots = {_SINGLE: dot_fma, _PAIRED_FMA: lambda a, b: dot_even_odd(a, b, True),
            _PAIRED: lambda a, b: dot_even_odd(a, b, False)}
    out = None
    start = 0
    while start < depth:
        stop = start + _next_block(depth - start, depth_block, depth_block)
        block = np.empty(kinds.shape, lhs.dtype)
        for kind, dot in dots.items():
            chosen = kinds == kind
            if chosen.any():
                block[chosen] = dot(lhs[:, start:stop], rhs[start:stop])[chosen]
        out = block if out is None else out + block
        start = stop
    return out


def gemv_fma_avx2(lhs: np.ndarray, rhs: np.ndarray, caches: Caches) -> np.ndarray:
    """``lhs @ rhs`` with one row or one column by oneDNN's non-transposed GEMV on AVX2 (module docstring)."""
    return _gemv_fma(lhs, rhs, _gemv_depth_parts(lhs.shape[0], lhs.shape[1], rhs.shape[1], caches, False))


def matmul_avx2(inputs: np.ndarray, kernel: np.ndarray, caches: Caches) -> np.ndarray:
    """Forward product ``inputs @ kernel`` as TensorFlow's oneDNN sgemm runs it on AVX2 (module docstring)."""
    if inputs.shape[0] == 1:
        return gemv_fma_avx2(inputs, kernel, caches)
    if kernel.shape[1] == 1:
        return gemv_tree(inputs, kernel[:, 0])[:, None]
    return dot_nocopy_avx2(inputs, kernel, *NOCOPY_BLOCKS_NN, caches)


def matmul_grad_input_avx2(delta: np.ndarray, kernel: np.ndarray, caches: Caches) -> np.ndarray:
    """Input gradient ``delta @ kernel.T`` on AVX2 (module docstring)."""
    if delta.shape[0] == 1:
        return gemv_tree(kernel, delta[0])[None, :]
    if kernel.shape[0] == 1:
        return gemv_tree(delta, kernel[0])[:, None]
    return dot_nocopy_avx2(delta, kernel.T, *NOCOPY_BLOCKS_TN, caches)


def matmul_grad_kernel_avx2(inputs: np.ndarray, delta: np.ndarray, caches: Caches) -> np.ndarray:
    """Kernel gradient ``inputs.T @ delta`` on AVX2 (module docstring)."""
    if inputs.shape[1] == 1 or delta.shape[1] == 1:
        return gemv_fma_avx2(inputs.T, delta, caches)
    return dot_nocopy_avx2(inputs.T, delta, *NOCOPY_BLOCKS_NT, caches)


@_jit
def _tile_dot(lhs, rhs, i, j, start, stop, kind):
    """One element of a no-copy kernel tile over the depth block [start, stop) (see :func:`dot_even_odd`)."""
    zero = cast(0, lhs)
    if kind == _SINGLE:
        acc = zero
        for k in range(start, stop):
            acc = fma(lhs[i, k], rhs[k, j], acc)
        return acc
    even = zero
    odd = zero
    paired = start + (stop - start) // 2 * 2
    for k in range(start, paired, 2):
        if kind == _PAIRED_FMA:
            even = fma(lhs[i, k], rhs[k, j], even)
            odd = fma(lhs[i, k + 1], rhs[k + 1, j], odd)
        else:
            even = even + lhs[i, k] * rhs[k, j]
            odd = odd + lhs[i, k + 1] * rhs[k + 1, j]
    acc = even + odd
    if paired < stop:
        if kind == _PAIRED_FMA:
            acc = fma(lhs[i, paired], rhs[paired, j], acc)
        else:
            acc = acc + lhs[i, paired] * rhs[paired, j]
    return acc


@_jit
def dot_nocopy_avx2_loop(lhs, rhs, col_block, depth_block, out, caches):
    """Numba twin of :func:`dot_nocopy_avx2`, into ``out``."""
    rows, depth = lhs.shape
    cols = rhs.shape[1]
    threads = _nocopy_threads(cols, rows, depth, caches)
    along_m, along_n, m_part, n_part = _nocopy_thread_grid(cols, rows, threads)
    widths = np.empty(rows, np.int64)
    tall = np.empty(cols, np.bool_)
    _tile_widths(rows, along_n, n_part, col_block, widths)
    _tile_is_tall(cols, along_m, m_part, tall)
    for i in range(rows):
        for j in range(cols):
            kind = _tile_kind(tall[j], widths[i])
            start = 0
            while start < depth:
                stop = start + _next_block(depth - start, depth_block, depth_block)
                acc = _tile_dot(lhs, rhs, i, j, start, stop, kind)
                out[i, j] = acc if start == 0 else out[i, j] + acc
                start = stop


@_jit
def gemv_fma_avx2_loop(lhs, rhs, out, caches):
    """Numba twin of :func:`gemv_fma_avx2`, into ``out``."""
    _gemv_fma_loop(lhs, rhs, out, _gemv_depth_parts(lhs.shape[0], lhs.shape[1], rhs.shape[1], caches, False))


@_jit
def matmul_avx2_loop(inputs, kernel, out, caches):
    """Numba twin of :func:`matmul_avx2`, into ``out``."""
    if inputs.shape[0] == 1:
        gemv_fma_avx2_loop(inputs[:, :], kernel[:, :], out[:, :], caches)
    elif kernel.shape[1] == 1:
        gemv_tree_loop(inputs[:, :], kernel[:, 0], out[:, 0])
    else:
        dot_nocopy_avx2_loop(inputs[:, :], kernel[:, :], NOCOPY_BLOCKS_NN[0], NOCOPY_BLOCKS_NN[1], out[:, :],
                             caches)


@_jit
def matmul_grad_input_avx2_loop(delta, kernel, out, caches):
    """Numba twin of :func:`matmul_grad_input_avx2`, into ``out``."""
    if delta.shape[0] == 1:
        gemv_tree_loop(kernel[:, :], delta[:, :][0], out[:, :][0])
    elif kernel.shape[0] == 1:
        gemv_tree_loop(delta[:, :], kernel[:, :][0], out[:, 0])
    else:
        dot_nocopy_avx2_loop(delta[:, :], kernel.T[:, :], NOCOPY_BLOCKS_TN[0], NOCOPY_BLOCKS_TN[1], out[:, :],
                             caches)


@_jit
def matmul_grad_kernel_avx2_loop(inputs, delta, out, caches):
    """Numba twin of :func:`matmul_grad_kernel_avx2`, into ``out``."""
    if inputs.shape[1] == 1 or delta.shape[1] == 1:
        gemv_fma_avx2_loop(inputs.T[:, :], delta[:, :], out[:, :], caches)
    else:
        dot_nocopy_avx2_loop(inputs.T[:, :], delta[:, :], NOCOPY_BLOCKS_NT[0], NOCOPY_BLOCKS_NT[1], out[:, :],
                             caches)


# --- fused elementwise kernels (jit_uni_eltwise_injector, float32) -----------------------


def _bits(x):
    """The int32 bit pattern of float32 ``x`` (array or scalar)."""
    bits = np.asarray(x, np.float32).view(np.int32)
    return bits if bits.ndim else bits[()]


def _from_bits(bits):
    """The float32 whose bit pattern is int32 ``bits``."""
    value = np.asarray(bits, np.int32).view(np.float32)
    return value if value.ndim else value[()]


@overload(_bits, jit_options={"cache": True})
def _bits_numba(x):
    if x == types.float32:
        return lambda x: bitcast(x, np.int32)
    return None


@overload(_from_bits, jit_options={"cache": True})
def _from_bits_numba(bits):
    # Numba widens int32 arithmetic to int64: keep the low 32 bits, as the CPU's integer lanes do.
    if isinstance(bits, types.Integer):
        return lambda bits: bitcast(np.int32(bits), np.float32)
    return None


_F32 = np.float32
_I32 = np.int32
_SIGN = _I32(-0x80000000)
_MAGNITUDE = _I32(0x7FFFFFFF)
_EXP_POLYNOMIAL = (0x3C07CFCE, 0x3D2B9D0D, 0x3E2AAD40, 0x3EFFFEE3, 0x3F7FFFFB)  # p5 .. p1 (p0 = 1)
# Degree 0..6 coefficients of the 32 tanh polynomials, one row per degree (bit patterns).
_TANH_TABLE = np.array([
    [0x00000000, 0x39bfffff, 0x39ffffff, 0x3a3ffffe, 0x3a7ffffb, 0x3abffff7, 0x3affffeb, 0x3b3fffdc,
     0x3b7fffab, 0x3bbfff70, 0x3bfffeab, 0x3c3ffdc0, 0x3c7ffaab, 0x3cbff701, 0x3cffeaad, 0x3d3fdc08,
     0x3d7faacd, 0x3dbf7081, 0x3dfeacc9, 0x3e3dc7fd, 0x3e7acbf5, 0x3eb77a9f, 0x3eec9a9f, 0x3f22991f,
     0x3f42f7d6, 0x3f67b7cc, 0x3f76ca83, 0x3f7ebbe9, 0x3f7fd40c, 0x3f7fff32, 0x3f7ffffc, 0x3f800000],
    [0x3f800000, 0x3f800018, 0x3f7fffe8, 0x3f7fffda, 0x3f7fffdc, 0x3f7fffdc, 0x3f7fffac, 0x3f7fff70,
     0x3f7ffeec, 0x3f7ffdc0, 0x3f7ffbed, 0x3f7ff704, 0x3f7feff5, 0x3f7fdbca, 0x3f7fbfff, 0x3f7f7041,
     0x3f7f009b, 0x3f7dc36c, 0x3f7c0aa8, 0x3f7734b8, 0x3f70a4de, 0x3f5f1fd8, 0x3f495493, 0x3f18b9ec,
     0x3ed706cb, 0x3e390b06, 0x3d90b11f, 0x3c21a053, 0x3aaf7fdb, 0x37ccc1a3, 0x355c6733, 0x00000000],
    [0x00000000, 0xbe4e0ff1, 0x3d25b1b1, 0x3d6b6dab, 0x3c9fb1d5, 0xbabff06f, 0x3c07b3f6, 0xbb3fc1bc,
     0x3a9f5921, 0xbbbf06f2, 0xbbb0f402, 0xbc47db9e, 0xbc73d5e7, 0xbca25bda, 0xbcfca780, 0xbd40e07c,
     0xbd7dab03, 0xbdbe4a0f, 0xbdfb14a5, 0xbe36cc8d, 0xbe6bd102, 0xbe9fe7c5, 0xbeba0f10, 0xbec206a8,
     0xbea3c388, 0xbe277d62, 0xbd8b7960, 0xbc209f49, 0xbaad44ca, 0xb7c6eeac, 0xb663aa41, 0x00000000],
    [0x00000000, 0x45b3ae96, 0xc414eb20, 0xc450e02e, 0xc3152b4e, 0xbead2f56, 0xc2162e02, 0xbeb4bd5a,
     0xc11a59a4, 0xbed2f507, 0xc020d32c, 0x3dd0f506, 0xbf2a75e2, 0xbff950e3, 0xbed47334, 0xbe809b8c,
     0xbeb64532, 0xbe961a5b, 0xbe9b63ac, 0xbea0d4b2, 0xbe828a77, 0xbe378612, 0xbdc20908, 0x3d2d3957,
     0x3dd46e89, 0x3db3f629, 0x3d2c5e7b, 0x3bd20403, 0x3a59dfae, 0x3770af45, 0x372cc014, 0x00000000],
    [0x00000000, 0xcc981a1b, 0x4a7edd3d, 0x4ab1007c, 0x48fedd9c, 0x41a557b5, 0x477ee32a, 0x422557f5,
     0x45ff3ce4, 0x42a55641, 0x446e0867, 0xc33dc19a, 0x42915214, 0x43af4fad, 0x4110fe88, 0xc1099b75,
     0x3fc8a8dc, 0xbfbeaef5, 0xbe365aad, 0x3f4d9652, 0x3ddfa08f, 0x3e34e9b8, 0x3e2d07a6, 0x3dc63567,
     0x3cdaeb78, 0xbcd17537, 0xbc92829c, 0xbb43ab99, 0xb9b471dd, 0xb6baad5a, 0xb78bafc7, 0x00000000],
    [0x00000000, 0x52f688d5, 0xd0505c72, 0xd08f98e3, 0xce505cc9, 0xc7162b8a, 0xcc5061d6, 0xc7162bdf,
     0xca50b37f, 0xc7162a3a, 0xc8422086, 0x471a714e, 0xc5ece1f1, 0xc70e3d90, 0xc3eba94a, 0x43e0c424,
     0xc21f4552, 0x42217cc8, 0x405e7dc4, 0xc10dd401, 0x3e96b602, 0xbd1a6d2f, 0xbd393883, 0xbd674682,
     0xbd310016, 0xb961e269, 0x3ba32495, 0x3a7680d5, 0x38b3173c, 0x35a9deea, 0x375c3f2a, 0x00000000],
    [0x00000000, 0xd8995ed1, 0x558285ea, 0x55b2cd69, 0x53028625, 0x4bc9991f, 0x5082898a, 0x4b4999b3,
     0x4e02c07c, 0x4ac99764, 0x4b72c822, 0xca40c0e1, 0x489413e4, 0x49b12224, 0x46134c4e, 0xc60c2d57,
     0x43c83910, 0xc3c872d1, 0xc186bc9e, 0x42325bc3, 0xbf2ffa4a, 0x3d9a203c, 0xbc545a43, 0xbae08fee,
     0x3c80225d, 0x3b1fd1df, 0xba36b9d1, 0xb91de544, 0xb71f100f, 0xb408e2ed, 0xb685fec8, 0x00000000],
], dtype=np.uint32).view(np.float32)
_TANH_INDEX_BIAS = _I32(0x39800000)
_TANH_INDEX_MASK = _I32(-0x400000)  # 0xffc00000
_TANH_LINEAR_BOUND = np.uint32(0x39DDB3D7).view(np.float32)
_TANH_SATURATION_BOUND = np.uint32(0x41102CB3).view(np.float32)
_LN_FLT_MIN = np.uint32(0xC2AEAC50).view(np.float32)
_LN_FLT_MAX = np.uint32(0x42B17218).view(np.float32)
_LOG2E = np.uint32(0x3FB8AA3B).view(np.float32)
_LN2 = np.uint32(0x3F317218).view(np.float32)
_P5, _P4, _P3, _P2, _P1 = np.array(_EXP_POLYNOMIAL, dtype=np.uint32).view(np.float32)
_FLT_MIN = _F32(np.finfo(np.float32).tiny)


@jitable
def _flush(values):
    """Flush-to-zero, as TensorFlow's threads run oneDNN's kernels (FTZ/DAZ)."""
    return where(np.abs(values) >= _F32(_FLT_MIN), values, values * _F32(0.0))


@jitable
def _exp_nonpositive(v):
    """oneDNN's exp of ``v <= 0`` (module docstring); float32."""
    underflow = v < _F32(_LN_FLT_MIN)
    v = np.maximum(np.minimum(v, _F32(_LN_FLT_MAX)), _F32(_LN_FLT_MIN))
    n = np.floor(v * _F32(_LOG2E) + _F32(0.5))
    r = fma(-n, _F32(_LN2), v)
    scale = _from_bits((_I32(n - _F32(1.0)) + _I32(127)) << _I32(23))
    scale = where(underflow, _F32(0.0), scale)
    y = fma(_P5, r, _F32(_P4))
    y = fma(y, r, _F32(_P3))
    y = fma(y, r, _F32(_P2))
    y = fma(y, r, _F32(_P1))
    y = fma(y, r, _F32(1.0))
    return _flush(_flush(y * scale) * _F32(2.0))


def logistic(x):
    """oneDNN's fused logistic (module docstring), float32 array or scalar."""
    x = _flush(x)
    negative = (_bits(x) & _I32(_SIGN)) != _I32(0)
    e = _exp_nonpositive(_from_bits(_bits(x) | _I32(_SIGN)))
    q = _flush(e / (e + _F32(1.0)))
    return where(negative, q, _F32(1.0) - q)


def tanh(x):
    """oneDNN's fused tanh (module docstring), float32 array or scalar."""
    x = _flush(x)
    s = _from_bits(_bits(x) & _I32(_MAGNITUDE))
    index = ((_bits(s) - _I32(_TANH_INDEX_BIAS)) >> _I32(22)) & _I32(31)
    r = s - _from_bits(_bits(s) & _I32(_TANH_INDEX_MASK))
    p = _TANH_TABLE[6][index]
    for degree in range(5, -1, -1):
        p = fma(p, r, _TANH_TABLE[degree][index])
    y = where(s < _F32(_TANH_SATURATION_BOUND), p, _F32(1.0))
    y = where(s < _F32(_TANH_LINEAR_BOUND), s, y)
    return _from_bits(_bits(y) ^ (_bits(x) & _I32(_SIGN)))


def elu(x):
    """oneDNN's fused elu with alpha = 1 (module docstring), float32 array or scalar."""
    x = _flush(x)
    return where(x > _F32(0.0), x, (_exp_nonpositive(np.minimum(x, _F32(0.0))) - _F32(1.0)) * _F32(1.0))


def swish(x):
    """oneDNN's swish with alpha = 1, :math:`x\\,\\sigma(x)` with :func:`logistic` (module docstring), float32."""
    return x * logistic(x)


logistic = jitable(logistic)  # swish calls it from compiled code
elu = jitable(elu)
swish = jitable(swish)
logistic_loop = activation_loop(_jit(logistic), "onednn_logistic_loop")
logistic_loop.__doc__ = "Numba twin of :func:`logistic` on a 2-D float32 array, in place."
tanh_loop = activation_loop(_jit(tanh), "onednn_tanh_loop")
tanh_loop.__doc__ = "Numba twin of :func:`tanh` on a 2-D float32 array, in place."
elu_loop = activation_loop(_jit(elu), "onednn_elu_loop")
elu_loop.__doc__ = "Numba twin of :func:`elu` on a 2-D float32 array, in place."
swish_loop = activation_loop(_jit(swish), "onednn_swish_loop")
swish_loop.__doc__ = "Numba twin of :func:`swish` on a 2-D float32 array, in place."


# --- softmax: oneDNN's softmax primitive (float32, TensorFlow's _MklSoftmax) ---------------
#
# Per row: m = max z, e_j = exp(z_j - m) by oneDNN's exp above (its arguments are
# <= 0), the e_j added into two vector accumulators of L lanes (16 on AVX-512, 8
# on AVX2), vectors 0, 2, 4, ... into the first and 1, 3, ... into the second, the
# last vector padded with zeros; the accumulators added, then the lanes
# reduced by halving (L/2, then the shuffles 0x4E and 0xB1 within 128 bits); each
# e_j times the exact reciprocal of that sum. Measured bit-identical to
# tf.nn.softmax (random batches) for rows of up to 40 classes on AVX-512 and up
# to 17 on AVX2; longer rows unroll their accumulators differently and are not
# reproduced (64 classes on AVX-512: 8 of 20 batches identical; 40 on AVX2: 2 of 10).


@jitable
def _softmax_in_place(z, lanes):
    rows, k = z.shape
    acc = np.zeros((2, lanes), np.float32)
    for b in range(rows):
        row = z[b]
        largest = row[0]
        for j in range(1, k):
            largest = max(largest, row[j])
        acc[:, :] = _F32(0.0)
        for j in range(k):
            row[j] = _exp_nonpositive(row[j] - largest)
            vector = j // lanes
            acc[vector % 2, j % lanes] = acc[vector % 2, j % lanes] + row[j]
        width = lanes
        for l in range(lanes):
            acc[0, l] = acc[0, l] + acc[1, l]
        while width > 4:  # 512 -> 256 -> 128 bits
            width //= 2
            for l in range(width):
                acc[0, l] = acc[0, l] + acc[0, l + width]
        low = acc[0, 0] + acc[0, 2], acc[0, 1] + acc[0, 3]  # shuffle 0x4E: lanes (2, 3, 0, 1)
        inverse = _F32(1.0) / (low[0] + low[1])  # shuffle 0xB1: lanes (1, 0, 3, 2)
        for j in range(k):
            row[j] = row[j] * inverse


def _softmax_for(lanes: int):
    def softmax_loop(z):
        _softmax_in_place(z, lanes)

    def softmax(z):
        """oneDNN's softmax over the last axis of a 2-D float32 array (comment above)."""
        out = np.array(z, dtype=np.float32, copy=True, order="C")
        _softmax_in_place(out, lanes)
        return out

    softmax_loop.__name__ = softmax_loop.__qualname__ = f"onednn_softmax{lanes}_loop"
    return softmax, _jit(softmax_loop)


softmax_avx512, softmax_avx512_loop = _softmax_for(16)
softmax_avx2, softmax_avx2_loop = _softmax_for(8)
