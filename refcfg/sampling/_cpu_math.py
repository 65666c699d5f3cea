"""Scalar building blocks for the Numba CPU kernels: a vectorisable exp and a counter-based RNG.

Private module: nothing here validates its input. Importing it imports numba but compiles nothing
(every function is lazily compiled on first call, with ``cache=True``); ``refcfg`` itself never
imports it at import time.

exp
    ``exp_fast(x)`` = 2^n * p(r), x = n ln2 + r, |r| <= ln2/2, n from the 1.5*2^52 rounding trick,
    ln2 split in two parts (Cody-Waite), p the degree-13 Taylor polynomial of e^r (truncation error
    < 4e-18 relative), 2^n assembled from its exponent bits. Only integer adds/shifts and FMAs:
    LLVM vectorises it (libm's ``exp`` is a call and does not vectorise).
    Accuracy: <= 2 ulp against ``np.exp`` on [-708, 709] (tests/sampling/test_cpu_math.py).
    Inputs below -708 return exactly 0 (the true value is < 3.3e-308, subnormal); -inf gives 0;
    NaN gives NaN; inputs above 709.78 give +inf.

RNG
    ``normal_at(seed, particle, step, dim)``: a standard normal that is a pure function of the four
    integers (splitmix64 finaliser applied to a combined counter, then Box-Muller on the pair
    (2 floor(dim/2), 2 floor(dim/2) + 1)). No state is shared between threads, so samples do not
    depend on the number of threads, the chunking of the particle loop or the number of particles.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba.core import types
from numba.extending import intrinsic

_LOG2E = 1.4426950408889634
_LN2_HI = 0.693147180369123816490  # high bits of ln 2 (trailing zeros: n * LN2_HI is exact)
_LN2_LO = 1.90821492927058770002e-10  # ln 2 - LN2_HI
_SHIFTER = 6755399441055744.0  # 1.5 * 2^52: x + SHIFTER rounds x to an integer in the low bits
_SHIFTER_BITS = 0x4338000000000000  # bit pattern of SHIFTER
_INV_FACT = tuple(1.0 / math.factorial(i) for i in range(14))
C2, C3, C4, C5, C6, C7, C8, C9, C10, C11, C12, C13 = _INV_FACT[2:]


@intrinsic
def _f64_bits(typingctx, x):
    """Reinterpret a float64 as int64 (an LLVM bitcast, vectorisable)."""
    if not isinstance(x, types.Float):
        return None
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.int64))

    return sig, codegen


@intrinsic
def _bits_f64(typingctx, x):
    """Reinterpret an int64 as float64 (an LLVM bitcast, vectorisable)."""
    if not isinstance(x, types.Integer):
        return None
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return sig, codegen


@numba.njit(cache=True, fastmath={"contract"})
def exp_fast(x):
    """e^x to <= 2 ulp on [-708, 709]; 0 below -708 (and for -inf); branch-free apart from selects."""
    xc = min(max(x, -708.0), 709.78)  # NaN passes through min/max? handled below
    k = xc * _LOG2E + _SHIFTER  # round(x / ln 2) in the low mantissa bits
    n_f = k - _SHIFTER
    r = xc - n_f * _LN2_HI
    r = r - n_f * _LN2_LO  # |r| <= ln2/2 (+ tiny)
    p = C13
    p = p * r + C12
    p = p * r + C11
    p = p * r + C10
    p = p * r + C9
    p = p * r + C8
    p = p * r + C7
    p = p * r + C6
    p = p * r + C5
    p = p * r + C4
    p = p * r + C3
    p = p * r + C2
    p = p * r + 1.0
    p = p * r + 1.0  # p = e^r in [0.7, 1.42)
    n = _f64_bits(k) - _SHIFTER_BITS  # the integer n, -1022 <= n <= 1024
    # 2^n = 2^(n-1) * 2 so that n = 1024 (x near 709.78) still has a normal exponent
    scale = _bits_f64((n + 1022) << 52)
    out = p * scale * 2.0
    out = 0.0 if x < -708.0 else out
    out = np.inf if x > 709.78 else out
    out = x if x != x else out  # NaN in, NaN out
    return out


@numba.njit(cache=True, fastmath={"contract"})
def exp_fast_array(x, out):
    """out[i] = exp_fast(x[i]) (for the accuracy tests and the benchmark)."""
    for i in range(x.shape[0]):
        out[i] = exp_fast(x[i])


# ----------------------------------------------------------------------------------------------
# counter-based RNG: splitmix64 finaliser (Steele, Lea, Flood 2014) as a hash
# ----------------------------------------------------------------------------------------------

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_TWO_M53 = 1.0 / 9007199254740992.0


@numba.njit(cache=True, inline="always")
def _mix64(z):
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@numba.njit(cache=True, inline="always")
def stream_key(seed, particle, step):
    """A 64-bit key for (seed, particle, step); each argument is hashed in turn."""
    h = _mix64(np.uint64(seed) + _GOLDEN)
    h = _mix64(h ^ (np.uint64(particle) * _GOLDEN + _M1))
    h = _mix64(h ^ (np.uint64(step) * _M2 + _GOLDEN))
    return h


@numba.njit(cache=True, inline="always")
def uniform_open(key, counter):
    """A uniform in (0, 1] (53-bit) from (key, counter)."""
    z = _mix64(key + np.uint64(counter) * _GOLDEN)
    return (np.float64(z >> _S11) + 1.0) * _TWO_M53


@numba.njit(cache=True)
def fill_normals(key, out):
    """out[:] = independent standard normals from the stream ``key`` (Box-Muller on pairs)."""
    d = out.shape[0]
    for p in range((d + 1) // 2):
        u1 = uniform_open(key, 2 * p)
        u2 = uniform_open(key, 2 * p + 1)
        rad = math.sqrt(-2.0 * math.log(u1))
        ang = 2.0 * math.pi * u2
        out[2 * p] = rad * math.cos(ang)
        if 2 * p + 1 < d:
            out[2 * p + 1] = rad * math.sin(ang)


@numba.njit(cache=True)
def normals_table(seed, n, steps, d):
    """(steps, n, d) standard normals exactly as the SDE kernel draws them (for tests/CUDA parity)."""
    out = np.empty((steps, n, d))
    buf = np.empty(d)
    for s in range(steps):
        for i in range(n):
            fill_normals(stream_key(seed, i, s), buf)
            out[s, i, :] = buf
    return out
