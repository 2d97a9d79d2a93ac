"""Indices past 2**31: elements past 2**31 of an array and strides past 2**31 bytes (every
index and offset in C is 64-bit).

The cheap test reads and writes through views with huge strides into big zero-filled
buffers: NumPy's zeros are calloc'd, so only the pages the few elements touch are ever
backed by memory. The slow test (marked `slow`, ~11 GB) runs the kernels over an array of
more than 2**31 elements."""
import os

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

import fastfc
from fastfc import reference as ref
from conftest import assert_close, assert_identical, gemm_scale

F32 = np.dtype(np.float32)


def virtual_zeros(n, dtype=np.float32):
    """n zeros that cost memory only where written (calloc: untouched pages stay unmapped)."""
    try:
        return np.zeros(n, dtype)
    except MemoryError:
        pytest.skip(f"the system refuses a {n * np.dtype(dtype).itemsize / 2**30:.1f} GiB "
                    f"mapping (overcommit off?)")


def view(buf, offset, shape, strides):
    """A view of buf from element `offset` with strides in elements (negative allowed:
    the view starts at the far end of that axis)."""
    start = offset + sum(-s * (d - 1) for s, d in zip(strides, shape) if s < 0)
    # the view spans [offset, offset + sum |s| (d - 1)]: as_strided checks no bounds
    assert offset >= 0 and offset + sum(abs(s) * (d - 1) for s, d in zip(strides, shape)) \
        < buf.size
    return as_strided(buf[start:], shape, tuple(s * buf.itemsize for s in strides),
                      writeable=True)


def test_huge_strides_and_offsets_past_2_31(rng):
    """A has rows 2**30 + 7 elements apart (4 GiB: its last row starts past element 2**31),
    B columns 2**29 + 3 apart, with a negative row stride on the outputs: every kernel reads
    and writes the right elements and nothing else (sentinels stay)."""
    ins = virtual_zeros(2**31 + 2**29)
    outs = virtual_zeros(2**30 + 2**22)   # C spans 2 * (2**29 + 11) + 3 * 2**20 past 50
    m, k, n = 3, 5, 4
    a = view(ins, 0, (m, k), (2**30 + 7, 1))
    b = view(ins, 100, (k, n), (1, 2**29 + 3))
    bias = view(ins, 2**31 + 2**28, (n,), (-(2**20 + 1),))
    for v in (a, b, bias):
        v[...] = rng.standard_normal(v.shape)
    ins[2**31 + 12] = 7.0   # a sentinel beside A's last row, which ends at 2**31 + 19
    c = view(outs, 50, (m, n), (-(2**29 + 11), 2**20))
    c[...] = rng.standard_normal(c.shape)
    c0 = np.array(c)
    ac, bc, biasc = np.array(a), np.array(b), np.array(bias)
    assert a.strides[0] > 2**32 and b.strides[1] > 2**31 and c.strides[0] < -2**31

    fastfc.gemm(a, b, alpha=0.5, beta=2.0, out=c)
    assert_close(c, ref.gemm(ac, bc, alpha=0.5, beta=2.0, out=c0),
                 0.5 * gemm_scale(ac, bc) + 2 * abs(c0), k + 1, F32)
    fastfc.linear(a, b, bias, activation="tanh", out=c)
    assert_close(c, ref.linear(ac, bc, biasc, activation="tanh"),
                 gemm_scale(ac, bc) + abs(biasc), k + 1, F32)
    y = np.array(c)
    gy = view(ins, 2**31 + 2**27, (m, n), (2**26 + 1, -(2**25 + 3)))
    gy[...] = rng.standard_normal(gy.shape)
    gx = view(outs, 2**29, (m, k), (1, 2**27 + 9))
    gw = view(outs, 2**28, (k, n), (-(2**26 + 5), 2**24 + 1))
    gb = view(outs, 2**30 + 2**20, (n,), (2**18,))
    fastfc.linear_backward(gy, a, b, y=c, activation="tanh", out=(gx, gw, gb))
    want = ref.linear_backward(np.array(gy), ac, bc, y=y, activation="tanh")
    for got, w, s, kk in zip((gx, gw, gb), want, (gemm_scale(np.array(gy), abs(bc).T),
                                                  gemm_scale(abs(ac).T, np.array(gy)),
                                                  abs(np.array(gy)).sum(0)), (n + 2, m + 2, m + 2)):
        assert_close(got, w, s, kk, F32)
    assert ins[2**31 + 12] == 7.0
    # nothing but the views' elements was written: the buffers hold exactly their values
    written = sum(v.size for v in (c, gx, gw, gb))
    assert np.count_nonzero(outs[::2**14]) <= written   # a cheap sample of the pages


def _available_gib():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


N_BIG = 2**31 + 77   # elements: indices and byte offsets past 2**31 (bytes past 2**33)
BIG_GIB = 11.5      # the float32 array (8 GiB), dropout's mask (2 GiB) and room


@pytest.mark.slow
@pytest.mark.skipif(_available_gib() < BIG_GIB + 2, reason=(
    f"needs {BIG_GIB + 2:.0f} GiB of available memory, has {_available_gib():.1f}"))
def test_arrays_past_2_31_elements():
    """One float32 array of 2**31 + 77 elements (8 GiB): a row and a column of it through
    gemm/linear (K past 2**31), a batch of it through linear_backward's dW and db, and
    dropout over all of it. Values +-1 alternate, so every partial sum is exact in float32
    whatever the blocking, plus markers past 2**31 that a wrong index would miss."""
    x = np.empty(N_BIG, np.float32)
    x[0::2], x[1::2] = 1.0, -1.0
    markers = {2**31 - 1: 3.0, 2**31: 100.0, 2**31 + 40: -12.0, N_BIG - 1: 1000.0}
    for i, v in markers.items():
        x[i] = v
    total = 1.0 if N_BIG % 2 else 0.0   # the +-1 pairs cancel
    for i, v in markers.items():
        total += v - (1.0 if i % 2 == 0 else -1.0)
    coefs = np.array([1.0, -2.0, 0.5, 4.0], np.float32)
    w = np.broadcast_to(coefs, (N_BIG, 4))   # zero stride: no memory
    want = (total * coefs.astype(np.float64))[None, :]
    # a row past 2**31 elements (x as (1, K)) and a column of them (trans_a: (K, 1) of it)
    np.testing.assert_array_equal(fastfc.linear(x[None, :], w), want)
    np.testing.assert_array_equal(fastfc.gemm(x[:, None], w, trans_a=True), want)
    # dW and db over a batch of 2**31 + 77 rows: x as dY, a broadcast input of ones
    ones = np.broadcast_to(np.ones((1, 1), np.float32), (N_BIG, 1))
    _, gw, gb = fastfc.linear_backward(x[:, None], ones, np.ones((1, 1), np.float32),
                                       compute_grad_x=False)
    assert gw[0, 0] == total and gb[0] == total
    # dropout in place over all of it: the kept elements scaled, the mask from Philox
    # words at element indices past 2**31 (checked at a few hundred places)
    p, seed = 0.25, 2**40 + 17
    places = list(markers) + list(range(2**31 - 50, 2**31 + 50)) + list(range(N_BIG - 300, N_BIG))
    before = {i: float(x[i]) for i in places}
    y, mask = fastfc.dropout(x, p, seed=seed, out=x)
    assert y is x
    threshold = int(np.floor(p * 2.0**32 + 0.5))
    for i, v in before.items():
        word = ref.philox4x32_10((i // 4 & 0xFFFFFFFF, i // 4 >> 32, 0, 0),
                                 (seed & 0xFFFFFFFF, seed >> 32))[i % 4]
        assert mask[i] == (word >= threshold), i
        assert y[i] == (np.float32(v) * np.float32(1 / (1 - p)) if mask[i] else 0.0), i
    assert abs(mask[::4096].mean() - (1 - p)) < 0.01
