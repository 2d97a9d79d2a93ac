"""Fuzzing against the reference: generated shapes (0-1100 in each dimension, mostly small),
dtypes, activations, layouts (C/F order, slices, negative and zero strides, broadcast bias),
out= aliasing, NaN/Inf, thread counts 1-3, for every functional kernel and the training step,
on every kernel path the CPU has (one child process per forced path: the path is fixed at
import); and generated mistakes that must raise, never crash.

Budget: FUZZ_EXAMPLES (500) examples per property and path (derandomized, the "ci" profile):
5 kernel properties on the 4 paths of an AVX-512 machine and the mistakes, 10,500 cases,
about 3 minutes on 2 cores (figures in the release note). FUZZ_EXAMPLES=N in the
environment scales it (each child runs the same count)."""
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import fastfc
from fastfc import reference as ref
from conftest import assert_close, assert_identical, gemm_scale, layout

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "500"))
fuzz = settings(max_examples=FUZZ_EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
# Set in the children this file starts: the kernel path their import was forced to.
CHILD_ISA = os.environ.get("FASTFC_FUZZ_ISA")

ACTS = [None, "identity", "relu", "leaky_relu", "sigmoid", "tanh"]
# Operand dtypes: what computes (float32/64) and what promotes (ints, bool, float16).
DTYPES = [np.float32, np.float64, np.float16, np.int32, np.int64, np.uint8, np.bool_]
FLOATS = [np.float32, np.float64]
LAYOUTS = ["C", "F", "sliced", "negative", "transposed", "zero"]


@st.composite
def dims(draw, count):
    """`count` sizes, mostly 0-40; one in eight cases one of them in 0-1100 (crossing the
    cache blocks) while the product stays a few million multiply-adds."""
    d = [draw(st.one_of(st.integers(0, 9), st.integers(0, 40))) for _ in range(count)]
    if draw(st.integers(0, 7)) == 0:
        d[draw(st.integers(0, count - 1))] = draw(st.integers(0, 1100))
    return d


def values(seed, shape, dtype, special=False):
    """Standard-normal values (integers: -3..3, bools) of `dtype`; `special` puts a NaN,
    +Inf and -Inf at random places of a float array."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    shape = tuple(shape)
    if dt.kind == "b":
        v = rng.integers(0, 2, shape).astype(bool)
    elif dt.kind in "iu":
        v = rng.integers(0 if dt.kind == "u" else -3, 4, shape).astype(dt)
    else:
        v = rng.standard_normal(shape).astype(dt)
        if special and v.size:
            flat = v.reshape(-1)
            for value in (np.nan, np.inf, -np.inf):
                flat[rng.integers(0, flat.size)] = value
    return np.asarray(v)   # 0-d stays an array


def arrange(v, name):
    """v's values in the layout `name`; "zero" is a broadcast (zero-stride, read-only) view
    along the first axis, the values of the first row repeated."""
    if name == "zero" and v.ndim >= 1 and v.shape[0] > 0:
        return np.broadcast_to(v[:1], v.shape)
    if name == "zero" or v.ndim == 0:   # a 0-d array has one layout
        return v
    return layout(v, name)


def finite(v):
    """v with NaN and infinities as 0 (for the magnitude of a sum's terms)."""
    return np.nan_to_num(np.asarray(v, np.float64), nan=0.0, posinf=0.0, neginf=0.0)


def as_floats(v):
    """The values the kernels compute with: float32 or float64 as fastfc promotes."""
    return np.asarray(v, ref.result_dtype(v))


def with_threads(n, fn):
    """fn() with fastfc's thread count n, restored after."""
    old = fastfc.get_num_threads()
    fastfc.set_num_threads(n)
    try:
        return fn()
    finally:
        fastfc.set_num_threads(old)


def test_child_runs_the_path_it_was_asked_for():
    if CHILD_ISA is None:
        pytest.skip("runs in the per-path children (FASTFC_FUZZ_ISA set)")
    assert fastfc.get_config()["isa"] == CHILD_ISA


# ------------------------------------------------------------------ gemm

@fuzz
@given(mkn=dims(3), da=st.sampled_from(DTYPES), db=st.sampled_from(DTYPES),
       la=st.sampled_from(LAYOUTS), lb=st.sampled_from(LAYOUTS), ta=st.booleans(),
       tb=st.booleans(), alpha=st.sampled_from([1.0, -0.5, 3.0]),
       beta=st.sampled_from([0.0, 1.0, -2.0]), out_layout=st.sampled_from([None] + LAYOUTS[:5]),
       alias=st.booleans(), special=st.booleans(), threads=st.integers(1, 3),
       seed=st.integers(0, 2**32 - 1))
def test_gemm(mkn, da, db, la, lb, ta, tb, alpha, beta, out_layout, alias, special, threads,
              seed):
    m, k, n = mkn
    a = arrange(values(seed, (k, m) if ta else (m, k), da, special), la)
    b = arrange(values(seed + 1, (n, k) if tb else (k, n), db, special), lb)
    dt = ref.result_dtype(a, b)
    if out_layout is None and beta != 0:
        out_layout = "C"
    out = None
    if out_layout is not None:
        out = layout(values(seed + 2, (m, n), dt), out_layout)
        # aliasing: out is a itself (same shape and dtype), read as an input and written
        if alias and a.shape == (m, n) and a.dtype == dt and a.flags.writeable:
            out = a
    af, bf = as_floats(a), as_floats(b)
    with np.errstate(invalid="ignore", over="ignore"):   # NaN and Inf are data here
        want = ref.gemm(af, bf, trans_a=ta, trans_b=tb, alpha=alpha, beta=beta,
                        out=None if out is None else out.copy())
    opa, opb = (af.T if ta else af), (bf.T if tb else bf)
    scale = abs(alpha) * gemm_scale(finite(opa), finite(opb))
    if out is not None:
        scale = scale + abs(beta) * np.abs(finite(out))
    got = with_threads(threads, lambda: fastfc.gemm(a, b, trans_a=ta, trans_b=tb, alpha=alpha,
                                                    beta=beta, out=out))
    assert got.dtype == dt and (out is None or got is out)
    assert_close(got, want, scale, k + 1, dt)
    if out is None and threads > 1:   # bit-identical for any thread count
        assert_identical(got, with_threads(1, lambda: fastfc.gemm(a, b, trans_a=ta, trans_b=tb,
                                                                  alpha=alpha)))


# ------------------------------------------------------------------ linear

@fuzz
@given(batch=st.lists(st.integers(0, 4), max_size=2), kn=dims(3), dx=st.sampled_from(DTYPES),
       dw=st.sampled_from(FLOATS), bias=st.sampled_from([None, "C", "sliced", "negative",
                                                          "broadcast"]),
       lx=st.sampled_from(LAYOUTS), lw=st.sampled_from(LAYOUTS), act=st.sampled_from(ACTS),
       slope=st.sampled_from([0.01, 0.0, 0.3]), out_mode=st.sampled_from([None, "C", "F",
                                                                           "alias"]),
       special=st.booleans(), threads=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
def test_linear(batch, kn, dx, dw, bias, lx, lw, act, slope, out_mode, special, threads, seed):
    rows, k, n = kn
    shape = tuple(batch) + (rows, k)
    x = arrange(values(seed, shape, dx, special), lx)
    w = arrange(values(seed + 1, (k, n), dw), lw)
    b = None
    if bias == "broadcast":
        b = np.broadcast_to(values(seed + 2, (1,), dw), (n,))
    elif bias is not None:
        b = layout(values(seed + 2, (n,), dw), bias)
    dt = ref.result_dtype(x, w) if b is None else ref.result_dtype(x, w, b)
    with np.errstate(invalid="ignore", over="ignore"):
        want = ref.linear(as_floats(x), w, b, activation=act, negative_slope=slope)
    out = None
    if out_mode == "alias" and k == n and x.dtype == dt and x.flags.writeable:
        out = x   # written in place over its own input
    elif out_mode in ("C", "F"):
        out = np.zeros(shape[:-1] + (n,), dt, order=out_mode)
    scale = gemm_scale(finite(as_floats(x).reshape(int(np.prod(shape[:-1])), k)),
                       w).reshape(want.shape)
    if b is not None:
        scale = scale + np.abs(b)
    got = with_threads(threads, lambda: fastfc.linear(x, w, b, activation=act, out=out,
                                                      negative_slope=slope))
    assert got.dtype == dt and got.shape == want.shape
    assert_close(got, want, scale, k + 1, dt)


# ------------------------------------------------------------------ linear_backward

@fuzz
@given(batch=st.lists(st.integers(0, 4), max_size=1), kn=dims(3), dtype=st.sampled_from(FLOATS),
       lg=st.sampled_from(LAYOUTS), lx=st.sampled_from(LAYOUTS), lw=st.sampled_from(LAYOUTS),
       act=st.sampled_from(ACTS), outs=st.sampled_from([None, "given", "strided"]),
       want_gx=st.booleans(), threads=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
def test_linear_backward(batch, kn, dtype, lg, lx, lw, act, outs, want_gx, threads, seed):
    rows, k, n = kn
    lead = tuple(batch) + (rows,)
    x = arrange(values(seed, lead + (k,), dtype), lx)
    w = arrange(values(seed + 1, (k, n), dtype), lw)
    y = ref.linear(x, w, activation=act)
    gy = arrange(values(seed + 2, lead + (n,), dtype), lg)
    want = ref.linear_backward(gy, x, w, y=y, activation=act)
    out = None
    if outs == "given":
        out = (np.empty(lead + (k,), dtype), np.empty((k, n), dtype), np.empty(n, dtype))
    elif outs == "strided":
        out = (np.empty(lead + (2 * k,), dtype)[..., ::2], np.empty((n, k), dtype).T,
               np.empty(2 * n, dtype)[::2])
    got = with_threads(threads, lambda: fastfc.linear_backward(
        gy, x, w, y=y, activation=act, out=out, compute_grad_x=want_gx))
    m = int(np.prod(lead))
    x2, gy2 = x.reshape(m, k), np.asarray(gy).reshape(m, n)
    scales = (gemm_scale(gy2, np.abs(w).T).reshape(want[0].shape), gemm_scale(x2.T, gy2),
              np.abs(gy2).sum(0))
    for i, (g, r, s, kk) in enumerate(zip(got, want, scales, (n + 2, m + 2, m + 2))):
        if i == 0 and not want_gx:
            assert g is None
            continue
        if out is not None:
            assert g is out[i]
        assert_close(g, r, s, kk, dtype)


# ------------------------------------------------------------------ dropout

@fuzz
@given(shape=st.lists(st.integers(0, 40), max_size=3), big=st.integers(0, 7),
       dtype=st.sampled_from(DTYPES), lx=st.sampled_from(LAYOUTS),
       p=st.sampled_from([0.0, 0.1, 0.5, 0.99]), seed=st.integers(0, 2**64 - 1),
       stream=st.integers(0, 2**64 - 1), in_place=st.booleans(), special=st.booleans(),
       threads=st.integers(1, 3))
def test_dropout(shape, big, dtype, lx, p, seed, stream, in_place, special, threads):
    if big == 0:   # one case in eight: a long vector (several threads' worth)
        shape = [1100 + seed % 20000]
    x = arrange(values(seed % 2**32, tuple(shape), dtype, special), lx)
    g = arrange(values(seed % 2**32 + 1, tuple(shape), dtype, special), lx)
    with np.errstate(invalid="ignore"):   # Inf * 0 where dropped: NaN, as fastfc gives
        want_y, want_mask = ref.dropout(as_floats(x), p, seed=seed, stream=stream)
        want_g = ref.dropout_backward(as_floats(g), want_mask, p)
    out = x if in_place and x.dtype in FLOATS and x.flags.writeable else None
    y, mask = with_threads(threads, lambda: fastfc.dropout(x, p, seed=seed, stream=stream,
                                                           out=out))
    assert out is None or y is out
    assert_identical(y, want_y)
    assert_identical(mask, want_mask)
    assert_identical(with_threads(threads, lambda: fastfc.dropout_backward(g, mask, p)), want_g)


# ------------------------------------------------------------------ the training step

LAYER_KINDS = ["relu", "leaky_relu", "sigmoid", "tanh", "dropout"]


@st.composite
def mlps(draw):
    """(batch, widths, per Dense (activation, bias), layers between Denses)."""
    depth = draw(st.integers(1, 3))
    widths = [draw(st.integers(1, 30)) for _ in range(depth)] + [draw(st.integers(1, 12))]
    dense = [(draw(st.sampled_from(ACTS)), draw(st.booleans())) for _ in range(depth)]
    extra = [draw(st.lists(st.sampled_from(LAYER_KINDS), max_size=2)) for _ in range(depth)]
    return draw(st.integers(1, 40)), widths, dense, extra


@fuzz
@given(net=mlps(), dtype=st.sampled_from(FLOATS), threads=st.integers(1, 3),
       lr=st.sampled_from([1e-3, 0.05]), decoupled=st.booleans(),
       wd=st.sampled_from([0.0, 0.01]), seed=st.integers(0, 2**32 - 1))
def test_training_step(net, dtype, threads, lr, decoupled, wd, seed):
    """Model.train_on_batch (the fused C step: forward, softmax cross-entropy, backward,
    Adam) against fastfc.reference's mlp_gradients and adam_update."""
    batch, widths, dense, extra = net
    layers, specs = [], []
    for i, (act, bias) in enumerate(dense):
        layers.append(fastfc.Dense(widths[i], widths[i + 1], activation=act, use_bias=bias,
                                   negative_slope=0.2))
        specs.append({"kind": "dense", "act": act, "slope": 0.2})
        if i + 1 < len(dense):   # between Denses: activations and dropout
            for kind in extra[i]:
                if kind == "dropout":
                    layers.append(fastfc.Dropout(0.25))
                    specs.append({"kind": "dropout", "p": 0.25, "stream": 0})
                else:
                    layers.append({"relu": fastfc.ReLU, "sigmoid": fastfc.Sigmoid,
                                   "tanh": fastfc.Tanh}.get(kind, lambda: fastfc.LeakyReLU(0.2))())
                    specs.append({"kind": "act", "act": kind, "slope": 0.2})
    opt = (fastfc.optim.AdamW if decoupled else fastfc.optim.Adam)(lr=lr, weight_decay=wd)
    model = fastfc.Sequential(layers, optimizer=opt, seed=seed % 1000, dtype=dtype)
    for spec, layer in zip(specs, model.layers):
        if spec["kind"] == "dense":
            spec["w"], spec["b"] = layer.params["W"].copy(), layer.params.get("b")
            spec["b"] = None if spec["b"] is None else spec["b"].copy()
        elif spec["kind"] == "dropout":
            spec["seed"] = layer.seed
    x = values(seed, (batch, widths[0]), dtype)
    labels = np.random.default_rng(seed).integers(0, widths[-1], batch)
    theta = model._theta.copy()
    assert model._plan(batch) is not None   # the fused C path, not the layer-by-layer one
    loss = with_threads(threads, lambda: model.train_on_batch(x, labels))
    want_loss, want_grads = ref.mlp_gradients(specs, x, labels)
    eps = np.finfo(dtype).eps
    reduction = max(widths + [batch])
    depth = len(dense)
    assert abs(loss - want_loss) <= 8 * depth * eps * np.sqrt(reduction) * (1 + abs(want_loss))
    want_flat = np.concatenate([g.reshape(-1) for pair in want_grads for g in pair
                                if g is not None])
    grads = model._dtheta
    off = 0
    for pair in want_grads:   # each gradient normwise: the chain's errors scale with it
        for g in (a for a in pair if a is not None):
            got = grads[off:off + g.size]
            tol = 8 * depth * eps * np.sqrt(reduction) * (np.abs(g).max() + np.finfo(dtype).tiny)
            assert np.all(np.abs(got - g.reshape(-1)) <= tol), (off, g.size)
            off += g.size
    assert off == want_flat.size == grads.size
    # the update from fastfc's own gradients: well-conditioned (Adam divides by |g|)
    want_theta, _, _ = ref.adam_update(theta, grads, np.zeros_like(theta),
                                       np.zeros_like(theta), lr=lr, weight_decay=wd,
                                       decoupled=decoupled, step=1)
    # Adam's first step is lr * g'/(|g'| + 1e-8), g' = g + wd * p rounded in the model
    # dtype: where g and wd * p cancel, that rounding moves the step by lr * (|g| + wd|p|)
    # / (|g'| + 1e-8) eps (seed 453: one element off by 25 eps of |theta|)
    g64, p64 = grads.astype(np.float64), theta.astype(np.float64)
    cancel = (np.abs(g64) + (0 if decoupled else wd * np.abs(p64))) / \
        (np.abs(g64 + (0 if decoupled else wd * p64)) + 1e-8)
    assert_close(model._theta, want_theta, np.abs(want_theta) + lr * cancel, 4, dtype)


# ------------------------------------------------------------------ mistakes

BAD_DTYPES = [np.complex64, np.complex128, object, "U3", "datetime64[s]", np.longdouble]


def _mistake(kind, seed):
    """(call, exception type, words the message must hold) for one generated mistake."""
    rng = np.random.default_rng(seed)
    f = np.float32 if seed % 2 else np.float64
    good = np.ones((3, 4), f)
    w = np.ones((4, 5), f)
    if kind == "dtype":
        dt = BAD_DTYPES[seed % len(BAD_DTYPES)]
        if np.dtype(dt) == np.longdouble and np.dtype(np.longdouble).itemsize <= 8:
            dt = np.complex64   # a platform whose long double is a double
        bad = np.zeros((3, 4), dt) if np.dtype(dt).kind != "M" else \
            np.zeros((3, 4), "datetime64[s]")
        which = seed % 4
        return [(lambda: fastfc.gemm(bad, w), TypeError, "a"),
                (lambda: fastfc.linear(good, bad.T), TypeError, "w"),
                (lambda: fastfc.dropout(bad, 0.5, seed=1), TypeError, "x"),
                (lambda: fastfc.linear_backward(bad[:, :1].repeat(5, 1) if
                                                np.dtype(dt).kind != "M" else bad,
                                                good, w), TypeError, "grad_y")][which]
    if kind == "ndim":
        shapes = [(), (3,), (2, 3, 4), (1, 1, 1, 1)]
        bad = np.ones(shapes[seed % 4], f)
        return [(lambda: fastfc.gemm(bad, w), ValueError, "a"),
                (lambda: fastfc.gemm(good, bad), ValueError, "b"),
                (lambda: fastfc.linear(good, bad), ValueError, "w"),
                (lambda: fastfc.linear(good, w, np.ones((5, 1), f)), ValueError, "b")][
                    (seed // 4) % 4] if shapes[seed % 4] else \
            (lambda: fastfc.linear(bad, w), ValueError, "x")
    if kind == "read_only":
        out = np.empty((3, 5), f)
        out.flags.writeable = False
        return [(lambda: fastfc.gemm(good, w, out=out), ValueError, "read-only"),
                (lambda: fastfc.linear(good, w, out=out), ValueError, "read-only"),
                (lambda: fastfc.linear_backward(np.ones((3, 5), f), good, w,
                                                out=(None, None, out[0])), ValueError,
                 "read-only")][seed % 3]
    if kind == "overlap":
        buf = np.empty(40, f)
        gx, gw = buf[:12].reshape(3, 4), buf[int(rng.integers(0, 12)):][:20].reshape(4, 5)
        return (lambda: fastfc.linear_backward(np.ones((3, 5), f), good, w, out=(gx, gw, None)),
                ValueError, "share memory")
    if kind == "out_shape":
        return (lambda: fastfc.linear(good, w, out=np.empty((3, 6 + seed % 3), f)),
                ValueError, "out has shape")
    if kind == "zero_stride_out":
        out = np.lib.stride_tricks.as_strided(np.empty(5, f), (3, 5), (0, f().itemsize))
        return (lambda: fastfc.gemm(good, w, out=out), ValueError, "zero stride")
    # huge shapes: zero-size operands whose product's shape overflows (NumPy's own
    # ValueError, its wording varies) or whose other arguments are wrong
    big = 2 ** int(rng.integers(33, 58))  # (big, 0, 3) float64 inputs stay creatable
    return [(lambda: fastfc.gemm(np.empty((big, 0), f), np.empty((0, big), f)), ValueError,
             ""),
            (lambda: fastfc.linear(np.empty((big, 0), f), np.empty((0, big), f)), ValueError,
             ""),
            (lambda: fastfc.linear_backward(np.empty((big, 0, 2), f), np.empty((big, 0, 3), f),
                                            np.ones((3, 2), f), out=(None, None, np.empty(3, f))),
             ValueError, "grad_b")][seed % 3]


@fuzz
@given(kind=st.sampled_from(["dtype", "ndim", "read_only", "overlap", "out_shape",
                             "zero_stride_out", "huge"]), seed=st.integers(0, 2**16))
def test_mistakes_raise(kind, seed):
    call, exc, words = _mistake(kind, seed)
    with pytest.raises(exc) as e:
        call()
    assert words in str(e.value), str(e.value)


# ------------------------------------------------------------------ every kernel path

def _paths():
    return [isa for isa in fastfc.get_config()["isas_testable"]
            if isa != fastfc.get_config()["isa"]]


@pytest.mark.skipif(CHILD_ISA is not None, reason="runs in the parent only")
@pytest.mark.parametrize("isa", _paths())
def test_every_kernel_path(isa):
    """This file's kernel properties again in a child forced to `isa` (the parent ran them
    on the default path)."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(fastfc.__file__)))  # this fastfc
    env = dict(os.environ, FASTFC_ISA=isa, FASTFC_FUZZ_ISA=isa,
               PYTHONPATH=os.pathsep.join([here] + os.environ.get("PYTHONPATH", "").split(
                   os.pathsep)))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                        "-k", "not mistakes", os.path.join(TESTS_DIR, "test_fuzz.py")],
                       env=env, cwd=TESTS_DIR, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
