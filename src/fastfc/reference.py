"""Plain NumPy versions of fastfc's GEMM, linear and dropout kernels: the oracle of the tests
(the training kernels, Adam and the fused loss and MLP passes, have theirs in the tests).

Written for clarity, not speed; the semantics (promotion, NaN, dropout counter layout)
are the contract the C kernels must match.
"""
import numpy as np

from fastfc import activations

_PHILOX_M = (0xD2511F53, 0xCD9E8D57)
_PHILOX_W = (0x9E3779B9, 0xBB67AE85)


def result_dtype(*arrays):
    """float32 or float64, as fastfc promotes: NumPy promotion, ints -> float64."""
    dt = np.result_type(*(np.asarray(a) for a in arrays))   # a list is data, not a dtype
    if dt.kind != "f":
        return np.dtype(np.float64)
    return np.dtype(np.float32) if dt.itemsize <= 4 else np.dtype(np.float64)


def activate(z, activation=None, negative_slope=0.01):
    """act(z), from the activation table (``fastfc.activations``)."""
    return activations.get(activation).forward(z, negative_slope)


def activation_grad(grad_y, y, activation=None, negative_slope=0.01):
    """d loss / d z from d loss / d y and the forward output y."""
    return activations.get(activation).derivative(y, grad_y, negative_slope)


def gemm(a, b, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None):
    dt = result_dtype(a, b)
    a = np.asarray(a, dt)
    b = np.asarray(b, dt)
    a = a.T if trans_a else a
    b = b.T if trans_b else b
    r = dt.type(alpha) * (a @ b)
    if beta != 0:
        r = r + dt.type(beta) * out
    return r.astype(dt)


def linear(x, w, b=None, *, activation=None, negative_slope=0.01):
    dt = result_dtype(x, w) if b is None else result_dtype(x, w, b)
    z = np.asarray(x, dt) @ np.asarray(w, dt)
    if b is not None:
        z = z + np.asarray(b, dt)
    return activate(z, activation, negative_slope)


def linear_backward(grad_y, x, w, *, y=None, activation=None, negative_slope=0.01):
    arrays = [grad_y, x, w] + ([] if y is None else [y])
    dt = result_dtype(*arrays)
    grad_y, x, w = (np.asarray(a, dt) for a in (grad_y, x, w))
    dz = activation_grad(grad_y, None if y is None else np.asarray(y, dt), activation,
                         negative_slope)
    rows = int(np.prod(x.shape[:-1]))   # not -1: a reshape cannot infer it beside a 0
    dz2 = dz.reshape(rows, w.shape[1])
    x2 = x.reshape(rows, w.shape[0])
    return (dz @ w.T).astype(dt), (x2.T @ dz2).astype(dt), dz2.sum(axis=0).astype(dt)


def philox4x32_10(ctr, key):
    """Philox4x32-10 on Python ints (Salmon et al. 2011, Random123)."""
    c = [int(v) & 0xFFFFFFFF for v in ctr]
    k = [int(v) & 0xFFFFFFFF for v in key]
    for _ in range(10):
        p0, p1 = _PHILOX_M[0] * c[0], _PHILOX_M[1] * c[2]
        c = [(p1 >> 32) ^ c[1] ^ k[0], p1 & 0xFFFFFFFF, (p0 >> 32) ^ c[3] ^ k[1],
             p0 & 0xFFFFFFFF]
        k = [(k[0] + _PHILOX_W[0]) & 0xFFFFFFFF, (k[1] + _PHILOX_W[1]) & 0xFFFFFFFF]
    return tuple(c)


def philox_words(n, seed, stream=0):
    """The first n words of the dropout stream, vectorized over blocks with uint64 maths."""
    nblk = (n + 3) // 4
    blk = np.arange(nblk, dtype=np.uint64)
    m32 = np.uint64(0xFFFFFFFF)
    c0, c1 = blk & m32, blk >> np.uint64(32)
    c2 = np.full(nblk, stream & 0xFFFFFFFF, np.uint64)
    c3 = np.full(nblk, (stream >> 32) & 0xFFFFFFFF, np.uint64)
    k0, k1 = seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF
    for _ in range(10):
        p0 = np.uint64(_PHILOX_M[0]) * c0
        p1 = np.uint64(_PHILOX_M[1]) * c2
        c0, c1, c2, c3 = ((p1 >> np.uint64(32)) ^ c1 ^ np.uint64(k0), p1 & m32,
                          (p0 >> np.uint64(32)) ^ c3 ^ np.uint64(k1), p0 & m32)
        k0 = (k0 + _PHILOX_W[0]) & 0xFFFFFFFF
        k1 = (k1 + _PHILOX_W[1]) & 0xFFFFFFFF
    return np.stack([c0, c1, c2, c3], axis=1).reshape(-1)[:n]


def dropout_mask(shape, p, seed, stream=0):
    """Element i (C order) is kept when its word >= round(p * 2**32)."""
    n = int(np.prod(shape, dtype=np.int64))
    threshold = int(np.floor(p * 2.0 ** 32 + 0.5))
    return (philox_words(n, seed, stream) >= threshold).reshape(shape)


def dropout(x, p, *, seed, stream=0):
    dt = result_dtype(x)
    x = np.asarray(x, dt)
    mask = dropout_mask(x.shape, p, seed, stream)
    scale = dt.type(1.0 / (1.0 - p))
    return x * np.where(mask, scale, dt.type(0)), mask


def dropout_backward(grad_y, mask, p):
    dt = result_dtype(grad_y)
    scale = dt.type(1.0 / (1.0 - p))
    return np.asarray(grad_y, dt) * np.where(mask, scale, dt.type(0))
