"""Each optimizer against a plain NumPy reference over several steps."""
import math

import numpy as np
import pytest

from fastfc import optim


def ref_sgd(p, grads, lr, momentum=0.0, nesterov=False, wd=0.0):
    buf = None
    for t, g in enumerate(grads):
        g = g + wd * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
    return p


def ref_adagrad(p, grads, lr, eps=1e-10, wd=0.0):
    s = np.zeros_like(p)
    for g in grads:
        g = g + wd * p
        s = s + g * g
        p = p - lr * g / (np.sqrt(s) + eps)
    return p


def ref_rmsprop(p, grads, lr, alpha=0.99, eps=1e-8, wd=0.0):
    s = np.zeros_like(p)
    for g in grads:
        g = g + wd * p
        s = alpha * s + (1 - alpha) * g * g
        p = p - lr * g / (np.sqrt(s) + eps)
    return p


def ref_adam(p, grads, lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, decoupled=False):
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, 1):
        if decoupled:
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mhat, vhat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        p = p - lr * mhat / (np.sqrt(vhat) + eps)
    return p


CASES = [
    (lambda: optim.SGD(lr=0.1), lambda p, g: ref_sgd(p, g, 0.1)),
    (lambda: optim.SGD(lr=0.1, momentum=0.9), lambda p, g: ref_sgd(p, g, 0.1, 0.9)),
    (lambda: optim.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
     lambda p, g: ref_sgd(p, g, 0.1, 0.9, True, 0.01)),
    (lambda: optim.AdaGrad(lr=0.1, weight_decay=0.1), lambda p, g: ref_adagrad(p, g, 0.1, wd=0.1)),
    (lambda: optim.RMSProp(lr=0.01), lambda p, g: ref_rmsprop(p, g, 0.01)),
    (lambda: optim.Adam(lr=0.01), lambda p, g: ref_adam(p, g, 0.01)),
    (lambda: optim.Adam(lr=0.01, weight_decay=0.1), lambda p, g: ref_adam(p, g, 0.01, wd=0.1)),
    (lambda: optim.AdamW(lr=0.01, weight_decay=0.1),
     lambda p, g: ref_adam(p, g, 0.01, wd=0.1, decoupled=True)),
    # every hyperparameter away from its default, so none can be ignored
    (lambda: optim.AdaGrad(lr=0.1, eps=0.3), lambda p, g: ref_adagrad(p, g, 0.1, eps=0.3)),
    (lambda: optim.RMSProp(lr=0.01, alpha=0.5, eps=0.2),
     lambda p, g: ref_rmsprop(p, g, 0.01, alpha=0.5, eps=0.2)),
    (lambda: optim.Adam(lr=0.01, betas=(0.5, 0.8), eps=0.1),
     lambda p, g: ref_adam(p, g, 0.01, b1=0.5, b2=0.8, eps=0.1)),
    (lambda: optim.AdamW(lr=0.01, betas=(0.6, 0.7), eps=0.05, weight_decay=0.2),
     lambda p, g: ref_adam(p, g, 0.01, b1=0.6, b2=0.7, eps=0.05, wd=0.2, decoupled=True)),
    # an eps too small to hide a flushed moment: the IEEE step
    (lambda: optim.Adam(lr=0.01, eps=0.0, weight_decay=0.1),
     lambda p, g: ref_adam(p, g, 0.01, eps=0.0, wd=0.1)),
    (lambda: optim.AdamW(lr=0.01, eps=1e-30, weight_decay=0.1),
     lambda p, g: ref_adam(p, g, 0.01, eps=1e-30, wd=0.1, decoupled=True)),
]


@pytest.mark.parametrize("make,reference", CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_optimizer_matches_reference(make, reference, dtype):
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(1000)
    grads = [rng.standard_normal(1000) for _ in range(7)]
    p = p0.astype(dtype)
    opt = make()
    for g in grads:
        opt.step(p, g.astype(dtype))
    want = reference(p0, grads)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(p, want, rtol=tol, atol=tol)


def test_schedules():
    s = optim.step_schedule(2, gamma=0.5)
    assert [s(e) for e in range(5)] == [1, 1, 0.5, 0.5, 0.25]
    c = optim.cosine_schedule(10, min_factor=0.1)
    assert c(0) == pytest.approx(1.0) and c(10) == pytest.approx(0.1)
    assert c(5) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 2)))
    opt = optim.SGD(lr=1.0, schedule=s)
    opt.start_epoch(4)
    assert opt.lr == 0.25


def test_bad_optimizer_arguments():
    with pytest.raises(ValueError, match="unknown optimizer 'adamax'; valid: sgd, adagrad"):
        optim.get("adamax")
    with pytest.raises(ValueError, match="lr must be > 0, got -1"):
        optim.Adam(lr=-1)
    with pytest.raises(ValueError, match="nesterov needs momentum"):
        optim.SGD(nesterov=True)
    with pytest.raises(ValueError, match="betas must be in"):
        optim.Adam(betas=(1.0, 0.9))


@pytest.mark.parametrize("make,match", [
    (lambda: optim.SGD(momentum=-0.5), "momentum must be >= 0 and finite, got -0.5"),
    (lambda: optim.SGD(momentum=float("nan")), "momentum must be >= 0 and finite, got nan"),
    (lambda: optim.Adam(eps=-1e-8), "eps must be >= 0 and finite, got -1e-08"),
    (lambda: optim.AdaGrad(eps=-1), "eps must be >= 0 and finite, got -1"),
    (lambda: optim.RMSProp(eps=float("inf")), "eps must be >= 0 and finite, got inf"),
    (lambda: optim.Adam(weight_decay=float("nan")), "weight_decay must be >= 0 and finite, "
                                                    "got nan"),
    (lambda: optim.SGD(weight_decay=-0.1), "weight_decay must be >= 0 and finite, got -0.1"),
    (lambda: optim.RMSProp(alpha=1.0), r"alpha must be in \[0, 1\), got 1.0"),
    (lambda: optim.RMSProp(alpha=-0.1), r"alpha must be in \[0, 1\), got -0.1"),
    (lambda: optim.Adam(lr=float("nan")), "lr must be > 0, got nan"),
])
def test_bad_hyperparameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_hyperparameters_must_be_numbers():
    with pytest.raises(TypeError, match="lr must be a real number, got str"):
        optim.SGD(lr="0.1")
    with pytest.raises(TypeError, match="momentum must be a real number, got NoneType"):
        optim.SGD(momentum=None)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_stores_subnormal_moments_as_zero(dtype):
    """Moments that decay under the smallest normal number (a dead relu's: its gradients
    are 0) are stored as 0, NaN stays NaN, and the parameters are the reference's."""
    from fastfc import _core
    tiny = np.finfo(dtype).tiny
    m = np.array([1.05 * tiny, -1.05 * tiny, tiny / 8, 0.5, np.nan, 2 * tiny, 0, -3.0], dtype)
    v = np.array([1.0005 * tiny, tiny / 4, 0.25, 0.5, 0.1, 1e-3, 0, 0.5], dtype)
    g = np.array([0, 0, 0, 0.1, 0.2, 0, 1.0, -0.5], dtype)
    p = np.linspace(-1, 1, m.size).astype(dtype)
    p0, m0, v0 = p.copy(), m.copy(), v.copy()
    _core._adam_update(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 0.0, False, 7)
    want_m, want_v = 0.9 * m0 + 0.1 * g, 0.999 * v0 + 0.001 * g * g
    normal = lambda a: np.where(np.abs(a) < tiny, 0, a)   # noqa: E731
    np.testing.assert_allclose(m, normal(want_m), rtol=4 * np.finfo(dtype).eps, atol=0)
    np.testing.assert_allclose(v, normal(want_v), rtol=4 * np.finfo(dtype).eps, atol=0)
    assert m[0] == 0 and m[1] == 0 and m[2] == 0 and v[0] == 0 and v[1] == 0 and m[5] != 0
    assert np.isnan(m[4]) and np.isnan(p[4])
    sub = lambda a: (a != 0) & (np.abs(a) < tiny)   # noqa: E731
    assert not sub(m).any() and not sub(v).any()
    from fastfc import reference as ref
    want_p = ref.adam_update(p0, g, m0, v0, lr=1e-3, step=7)[0].astype(dtype)
    ok = ~np.isnan(want_p)
    np.testing.assert_allclose(p[ok], want_p[ok], rtol=8 * np.finfo(dtype).eps, atol=0)


@pytest.mark.parametrize("dtype,x", [(np.float32, 1e-18), (np.float64, 1e-160)])
@pytest.mark.parametrize("make,lr", [
    (lambda x: optim.Adam(lr=1e-3, eps=0.0), 1e-3),
    (lambda x: optim.AdamW(lr=1e-3, eps=x * 1e-12, weight_decay=0.0), 1e-3),
    (lambda x: optim.RMSProp(lr=1e-2, eps=0.0), 1e-1),
    (lambda x: optim.AdaGrad(lr=1e-3, eps=0.0), 1e-3)])
def test_a_tiny_eps_keeps_a_tiny_gradients_step_near_lr(dtype, x, make, lr):
    """Adam and the root-of-squares optimizers are scale-invariant: with an eps far under
    the gradient a gradient whose square is subnormal still moves a weight by about lr
    (RMSProp: lr / sqrt(1 - alpha)), as in PyTorch, not by Inf (a flushed moment under m)
    or a huge finite step."""
    import fastfc
    model = fastfc.Sequential([fastfc.Dense(2, 1, use_bias=False)], loss="mse", dtype=dtype,
                              optimizer=make(x), seed=0)
    w0 = model.layers[0].params["W"].copy()
    model.train_on_batch(np.full((1, 2), x, dtype), np.ones((1, 1), dtype))
    step = model.layers[0].params["W"] - w0
    np.testing.assert_allclose(step, lr, rtol=0.01)
    assert model.optimizer.flushes_subnormals(dtype) is False
    assert optim.Adam().flushes_subnormals(dtype) and optim.RMSProp().flushes_subnormals(dtype)


def test_step_checks_its_arrays():
    opt = optim.Adam()
    with pytest.raises(TypeError, match="takes two float ndarrays, got list and list"):
        opt.step([1.0], [1.0])
    p = np.ones(3, np.float32)
    for g, shown in ((np.ones(4, np.float32), r"float32\(4,\)"), (np.ones(3), r"float64\(3,\)")):
        with pytest.raises(ValueError, match=rf"grads must match params: got {shown} for "
                                             r"float32\(3,\)"):
            opt.step(p, g)
    for params, g in ((np.ones(6, np.float32)[::2], np.ones(3, np.float32)),
                      (p, np.ones(6, np.float32)[::2]), (np.ones(3, np.float32), None)):
        if g is None:   # read-only params
            params.flags.writeable, g = False, np.ones(3, np.float32)
        with pytest.raises(ValueError, match="must be C-contiguous and params writable"):
            opt.step(params, g)
    np.testing.assert_array_equal(p, 1.0)
    assert opt.t == 0 and opt.state is None


@pytest.mark.parametrize("make", [lambda: optim.Adam(lr=0.1), lambda: optim.RMSProp(lr=0.1),
                                  lambda: optim.SGD(lr=0.1, momentum=0.9),
                                  lambda: optim.AdaGrad(lr=0.1)])
def test_a_step_on_other_params_changes_nothing(make):
    """Params of another shape or dtype than the state's are refused before the step is
    counted or the state decayed: the next steps are those of an optimizer never misused."""
    used, clean = make(), make()
    pu, pc, g = np.ones(4, np.float32), np.ones(4, np.float32), np.full(4, 0.5, np.float32)
    used.step(pu, g)
    clean.step(pc, g)
    for other in (np.ones(3, np.float32), np.ones(4)):
        with pytest.raises(ValueError, match=r"do not match this optimizer's state "
                                             r"\(float32\(4,\)\)"):
            used.step(other, np.ones_like(other))
    used.step(pu, g)
    clean.step(pc, g)
    assert used.t == clean.t == 2
    np.testing.assert_array_equal(pu, pc)


def test_a_subclass_keeps_a_state_of_its_own():
    """Optimizer subclasses may hold any state (a float64 master copy, a list): only the
    built-in states are checked against params."""
    class Master(optim.Optimizer):
        def init_state(self, params):
            return params.astype(np.float64), []

        def update(self, params, grads, master, log):
            master -= self.lr * grads
            params[...] = master
            log.append(self.t)

    opt, p = Master(lr=0.5), np.ones(3, np.float32)
    for _ in range(2):
        opt.step(p, np.ones(3, np.float32))
    np.testing.assert_array_equal(p, 0.0)
    assert opt.state[1] == [1, 2]
