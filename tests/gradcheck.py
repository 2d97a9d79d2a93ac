"""Central differences (float64) for layer, loss and model gradient checks."""
import numpy as np


def numeric_grad(f, arr, eps=1e-6):
    """d f() / d arr by central differences, perturbing arr in place."""
    g = np.zeros_like(arr)
    for idx in np.ndindex(arr.shape):
        old = arr[idx]
        arr[idx] = old + eps
        up = f()
        arr[idx] = old - eps
        down = f()
        arr[idx] = old
        g[idx] = (up - down) / (2 * eps)
    return g


def check_layer(layer, x, rng, training=True, rtol=1e-5, atol=1e-7):
    """Compare backward() of `layer` with central differences of sum(forward(x) * R)."""
    y = layer.forward(x, training)
    r = rng.standard_normal(y.shape)

    def f():
        return float(np.sum(layer.forward(x, training) * r))

    layer.forward(x, training)
    gx = layer.backward(r.copy())
    grads = {k: v.copy() for k, v in layer.grads.items()}
    if layer.needs_input_grad:
        assert gx is not None, f"{layer!r} returned no input gradient"
        np.testing.assert_allclose(gx, numeric_grad(f, x), rtol=rtol, atol=atol)
    for name, p in layer.params.items():
        np.testing.assert_allclose(grads[name], numeric_grad(f, p), rtol=rtol, atol=atol,
                                   err_msg=name)
