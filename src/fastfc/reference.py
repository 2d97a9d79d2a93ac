"""Plain NumPy versions of fastfc's GEMM, linear and dropout kernels and of a training step
(forward, softmax cross-entropy, backward and Adam over Dense/Dropout/activation layers):
the oracle of the tests.

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


def bf16_bound(x, w, b=None):
    """The bound of PackedWeights' docstring on |linear(x, pack(w, 'bfloat16'), b) -
    (x @ w + b)|: (2**-8 + (k + 2) * 2**-24) * (|x| @ |w| + |b|), plus float32's tiny,
    with w the weights before rounding."""
    scale = np.abs(np.asarray(x, np.float64)) @ np.abs(np.asarray(w, np.float64))
    if b is not None:
        scale = scale + np.abs(np.asarray(b, np.float64))
    k = np.shape(w)[0]
    return (2.0 ** -8 + (k + 2) * 2.0 ** -24) * scale + np.finfo(np.float32).tiny


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


def softmax_xent(z, labels):
    """Mean softmax cross-entropy of logits z (batch, classes) against integer labels, and
    its gradient with respect to z: ``(softmax - onehot) / batch``."""
    z = np.asarray(z)
    labels = np.asarray(labels, np.int64)
    rows = np.arange(z.shape[0])
    zmax = z.max(axis=1, keepdims=True)
    e = np.exp(z - zmax)
    s = e.sum(axis=1, keepdims=True)
    loss = (zmax[:, 0] + np.log(s[:, 0]) - z[rows, labels]).astype(np.float64)
    grad = e / s
    grad[rows, labels] -= 1
    return float(loss.sum() / z.shape[0]), (grad / z.dtype.type(z.shape[0])).astype(z.dtype)


def mlp_gradients(layers, x, labels):
    """Forward, mean softmax cross-entropy and backward of an MLP.

    Parameters
    ----------
    layers : list of dict
        In order: ``{"kind": "dense", "w": (in, out), "b": (out,) or None, "act",
        "slope"}``, ``{"kind": "dropout", "p", "seed", "stream"}`` (mask as
        :func:`dropout` of the layer's (batch, features) input) or ``{"kind": "act", "act",
        "slope"}``.
    x : ndarray (batch, in)
    labels : ndarray (batch,) of ints in [0, classes)

    Returns
    -------
    (loss, grads): the mean loss and, per dense layer in order, ``(grad_w, grad_b)``
    (grad_b None without a bias).
    """
    dt = np.asarray(x).dtype
    h, saved = np.asarray(x, dt), []
    for layer in layers:
        kind = layer["kind"]
        if kind == "dense":
            y = linear(h, layer["w"], layer["b"], activation=layer["act"],
                       negative_slope=layer.get("slope", 0.01))
        elif kind == "dropout":
            y, mask = dropout(h, layer["p"], seed=layer["seed"], stream=layer.get("stream", 0))
            layer = dict(layer, mask=mask)
        else:
            y = activate(h, layer["act"], layer.get("slope", 0.01))
        saved.append((layer, h, y))
        h = y
    loss, g = softmax_xent(h, labels)
    grads = []
    for layer, h, y in reversed(saved):
        kind = layer["kind"]
        if kind == "dense":
            gx, gw, gb = linear_backward(g, h, layer["w"], y=y, activation=layer["act"],
                                         negative_slope=layer.get("slope", 0.01))
            grads.append((gw, None if layer["b"] is None else gb))
            g = gx
        elif kind == "dropout":
            g = dropout_backward(g, layer["mask"], layer["p"])
        else:
            g = activation_grad(g, y, layer["act"], layer.get("slope", 0.01))
    return loss, grads[::-1]


def adam_update(p, g, m, v, *, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                decoupled=False, step=1):
    """One Adam (decoupled=False: weight_decay is L2 added to the gradient) or AdamW
    (decoupled=True: p *= 1 - lr * weight_decay) step counted from 1; returns new
    ``(p, m, v)``."""
    p, g, m, v = (np.asarray(a, np.float64) for a in (p, g, m, v))
    if not decoupled:
        g = g + weight_decay * p
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat, v_hat = m / (1 - beta1 ** step), v / (1 - beta2 ** step)
    shrink = 1 - lr * weight_decay if decoupled else 1.0
    return p * shrink - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def mlp_train_step(layers, x, labels, moments=None, *, step=1, **adam):
    """One training step of an MLP: :func:`mlp_gradients`, then :func:`adam_update` of
    every parameter (``moments``: per parameter ``(m, v)``, zeros when None). Returns
    ``(loss, grads, params, moments)`` with params and moments new, in the order of
    ``[w, b]`` per dense layer (a missing bias skipped)."""
    loss, grads = mlp_gradients(layers, x, labels)
    params = [a for layer in layers if layer["kind"] == "dense"
              for a in (layer["w"], layer["b"]) if a is not None]
    flat = [a for pair in grads for a in pair if a is not None]
    if moments is None:
        moments = [(np.zeros(np.shape(a)), np.zeros(np.shape(a))) for a in params]
    out_params, out_moments = [], []
    for p, g, (m, v) in zip(params, flat, moments):
        p, m, v = adam_update(p, g, m, v, step=step, **adam)
        out_params.append(p)
        out_moments.append((m, v))
    return loss, grads, out_params, out_moments
