r"""oneDNN's float32 matrix products, in the order TensorFlow's CPU kernels add the terms.

With oneDNN enabled (TensorFlow's default on x86 Linux) a float32 ``MatMul``
runs as ``_MklMatMul``, whose kernels oneDNN generates at run time for the
CPU's instruction set. On an FMA-capable CPU they accumulate with fused
multiply-adds, :math:`\mathrm{fma}(a, b, c) = \mathrm{fl}(a b + c)`, one
rounding per term. Which kernel runs depends on the shapes; the orders below
were probed with inputs designed to reveal them (one huge term cancelling
another, a small one in between) and are stated as rules in
:mod:`gdcore.numerics._tensorflow`. Each routine exists as a NumPy function
and a Numba ``*_loop`` twin, tested bit-identical.

:func:`fma` is the building block: on NumPy arrays it is computed exactly in
float64 (the product of two float32 is exact there) and corrected where
rounding the float64 sum to float32 would be a double rounding; compiled by
Numba it is LLVM's ``llvm.fma.f32`` (the CPU's FMA instruction).

Notation: :math:`p_k = \mathrm{fl}(a_k w_k)` is a rounded product, and
"FMA-sequential" means :math:`\mathrm{fma}(a_{d-1}, w_{d-1}, \dots
\mathrm{fma}(a_1, w_1, p_0))`.

Matrix-vector tree (``x @ w`` with one output column and at least two rows)
    With :math:`d` terms and :math:`d_{16} = 16 \lfloor d/16 \rfloor`: eight
    lanes :math:`l = 0..7` start from :math:`p_l` and take
    :math:`\mathrm{fma}(a_k, w_k, \text{lane}_{k \bmod 8})` for
    :math:`8 \le k < d_{16}`; then, on the remaining terms in order, a block
    of 8 rounded products (if at least 8 remain), a block of 4, a pair and a
    single term. Eight lanes reduce as :math:`((v_0+v_1)+(v_4+v_5)) +
    ((v_2+v_3)+(v_6+v_7))`, four as :math:`(v_0+v_1)+(v_2+v_3)`, a pair as
    :math:`v_0 + v_1`. The result is :math:`((((s_{lanes} + s_8) + s_4) +
    s_2) + p_{d-1})`, each part present only if its block is.
Sixteen-lane dot (``delta @ kernel.T`` with 2 to 15 rows)
    Lane :math:`l = k \bmod 16` is FMA-sequential over its terms; the 16 lanes
    (empty ones are 0) are reduced by adding the upper half onto the lower half
    (16 to 8 to 4 to 2 to 1).
Depth blocks of 384 (``inputs.T @ delta``, both dimensions of the result >= 2)
    The depth is cut into blocks of 384 terms while more than 768 remain; a
    remainder of 385 to 768 terms is cut into two halves, the first one
    ``ceil(r / 2)``. Each block is FMA-sequential, and the block results are
    added in order, :math:`((s_0 + s_1) + s_2) + \dots`.

Fused activations
-----------------
In a ``tf.function`` (every Keras ``fit``/``predict``/``evaluate`` step),
TensorFlow's graph optimizer fuses ``MatMul + BiasAdd + Sigmoid`` (or
``Tanh``) into one oneDNN matrix product whose output goes through oneDNN's
own elementwise kernel (``jit_uni_eltwise_injector``), not Eigen's. Float32
only (float64 is not fused), forward only (the gradients stay Eigen's
``SigmoidGrad``/``TanhGrad`` of that output). Both kernels below use FMA.

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
"""

import numpy as np
from numba import njit, types
from numba.extending import intrinsic, overload, register_jitable

from gdcore._dtype import bitcast, cast, where
from gdcore.numerics._in_place import activation_loop

_jit = njit(cache=True, error_model="numpy", nogil=True)

# Depth block of oneDNN's GEMM driver for the kernel gradient (measured).
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


# --- NumPy ----------------------------------------------------------------------------


def dot_fma(inputs: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``inputs @ kernel`` with every output FMA-sequential over k (float32)."""
    out = inputs[:, 0, None] * kernel[0]
    for k in range(1, kernel.shape[0]):
        out = fma(inputs[:, k, None], kernel[k], out)
    return out


def dot_fma_blocked(lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``lhs @ rhs`` FMA-sequential within depth blocks of 384 (module docstring), blocks added in order."""
    bounds = depth_blocks(lhs.shape[1])
    out = dot_fma(lhs[:, : bounds[1]], rhs[: bounds[1]])
    for start, stop in zip(bounds[1:-1], bounds[2:]):
        out = out + dot_fma(lhs[:, start:stop], rhs[start:stop])
    return out


def depth_blocks(depth: int) -> list[int]:
    """Block boundaries ``[0, ..., depth]`` of oneDNN's depth blocking (module docstring)."""
    bounds = [0]
    start = 0
    while depth - start > 2 * DEPTH_BLOCK:
        start += DEPTH_BLOCK
        bounds.append(start)
    if depth - start > DEPTH_BLOCK:
        start += (depth - start + 1) // 2
        bounds.append(start)
    bounds.append(depth)
    return bounds


def dot_lanes16(lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``lhs @ rhs`` by the sixteen-lane dot (module docstring)."""
    depth = lhs.shape[1]
    zero = np.zeros((lhs.shape[0], rhs.shape[1]), lhs.dtype)
    lanes = [zero] * 16
    for k in range(depth):
        lane = k % 16
        if k < 16:
            lanes[lane] = lhs[:, k, None] * rhs[k]
        else:
            lanes[lane] = fma(lhs[:, k, None], rhs[k], lanes[lane])
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
    acc = None
    if sixteens:
        lanes = [inputs[:, lane] * vector[lane] for lane in range(8)]
        for k in range(8, sixteens):
            lanes[k % 8] = fma(inputs[:, k], vector[k], lanes[k % 8])
        acc = _hsum8(lanes)
    k = sixteens
    for width, reduce in ((8, _hsum8), (4, _hsum4), (2, lambda lanes: lanes[0] + lanes[1]), (1, lambda lanes: lanes[0])):
        if depth - k >= width:
            part = reduce([inputs[:, k + lane] * vector[k + lane] for lane in range(width)])
            acc = part if acc is None else acc + part
            k += width
    return acc


# --- Numba twins ------------------------------------------------------------------------


@_jit
def dot_fma_loop(inputs, kernel, out):
    """Numba twin of :func:`dot_fma`, into ``out``."""
    rows, depth = inputs.shape
    for b in range(rows):
        for j in range(kernel.shape[1]):
            acc = inputs[b, 0] * kernel[0, j]
            for k in range(1, depth):
                acc = fma(inputs[b, k], kernel[k, j], acc)
            out[b, j] = acc


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
        have = False
        if sixteens:
            for lane in range(8):
                lanes[lane] = inputs[b, lane] * vector[lane]
            for k in range(8, sixteens):
                lanes[k % 8] = fma(inputs[b, k], vector[k], lanes[k % 8])
            acc = _hsum8_at(lanes)
            have = True
        k = sixteens
        if depth - k >= 8:
            for lane in range(8):
                lanes[lane] = inputs[b, k + lane] * vector[k + lane]
            part = _hsum8_at(lanes)
            acc = acc + part if have else part
            have = True
            k += 8
        if depth - k >= 4:
            part = (inputs[b, k] * vector[k] + inputs[b, k + 1] * vector[k + 1]) + (
                inputs[b, k + 2] * vector[k + 2] + inputs[b, k + 3] * vector[k + 3]
            )
            acc = acc + part if have else part
            have = True
            k += 4
        if depth - k >= 2:
            part = inputs[b, k] * vector[k] + inputs[b, k + 1] * vector[k + 1]
            acc = acc + part if have else part
            have = True
            k += 2
        if depth - k >= 1:
            part = inputs[b, k] * vector[k]
            acc = acc + part if have else part
        out[b] = acc


@_jit
def dot_fma_blocked_loop(lhs, rhs, out):
    """Numba twin of :func:`dot_fma_blocked`, into ``out``."""
    rows, depth = lhs.shape
    start = 0
    stop = depth
    first = True
    while start < depth:
        remaining = depth - start
        if remaining > 2 * DEPTH_BLOCK:
            stop = start + DEPTH_BLOCK
        elif remaining > DEPTH_BLOCK:
            stop = start + (remaining + 1) // 2
        else:
            stop = depth
        for i in range(rows):
            for j in range(rhs.shape[1]):
                acc = lhs[i, start] * rhs[start, j]
                for k in range(start + 1, stop):
                    acc = fma(lhs[i, k], rhs[k, j], acc)
                out[i, j] = acc if first else out[i, j] + acc
        first = False
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
                if k < 16:
                    lanes[k] = lhs[i, k] * rhs[k, j]
                else:
                    lanes[k % 16] = fma(lhs[i, k], rhs[k, j], lanes[k % 16])
            width = 16
            while width > 1:
                width //= 2
                for lane in range(width):
                    lanes[lane] = lanes[lane] + lanes[lane + width]
            out[i, j] = lanes[0]



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


@register_jitable
def _flush(values):
    """Flush-to-zero, as TensorFlow's threads run oneDNN's kernels (FTZ/DAZ)."""
    return where(np.abs(values) >= _F32(_FLT_MIN), values, values * _F32(0.0))


@register_jitable
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


logistic_loop = activation_loop(_jit(logistic), "onednn_logistic_loop")
logistic_loop.__doc__ = "Numba twin of :func:`logistic` on a 2-D float32 array, in place."
tanh_loop = activation_loop(_jit(tanh), "onednn_tanh_loop")
tanh_loop.__doc__ = "Numba twin of :func:`tanh` on a 2-D float32 array, in place."
