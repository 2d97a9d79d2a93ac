"""The non-finite check made as the GEMM writes dW (MLPPlan.check_finite): on every path
(FASTFC_ISA in a fresh interpreter), float32 and float64, one and two threads, for dW made
plainly, transposed (a narrow layer: dW^T = dZ^T.X), streamed (few inputs, no bias, identity)
and split over a team, grads_finite equals what NumPy finds in gw and gb; a NaN or an Inf
that reaches exactly one layer's dW is caught; a finite step reports finite."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastfc

# Runs in a child process under FASTFC_ISA: prints the path in use and the cases that failed.
SWEEP = r"""
import json
import numpy as np
import fastfc
from fastfc._core import MLPPlan

fails, checks = [], 0

def plan_for(sizes, batch, dt, bias, act, rng, wscale=None):
    specs, arrays = [], []
    for i, (fin, fout) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = (rng.standard_normal((fin, fout)) if wscale is None
             else np.full((fin, fout), wscale)).astype(dt)
        b = (rng.standard_normal(fout).astype(dt) if wscale is None
             else np.zeros(fout, dt)) if bias else None
        gw = np.full((fin, fout), 7, dt)
        gb = np.full(fout, 7, dt) if bias else None
        specs.append({"kind": "dense", "w": w, "b": b, "gw": gw, "gb": gb, "act": act})
        arrays.append((w, b, gw, gb))
    plan = MLPPlan(specs, batch, dt)
    plan.check_finite = True
    return plan, arrays

def truth(arrays):
    return all(np.isfinite(gw).all() and (gb is None or np.isfinite(gb).all())
               for _, _, gw, gb in arrays)

def check(plan, arrays, x, g, label, want=None):
    global checks
    checks += 1
    plan.forward(x)
    plan.grad_output[...] = g
    plan.backward(x)
    t = truth(arrays)
    if want is not None and t != want:
        fails.append(f"{label}: the case is {'finite' if t else 'not finite'}, meant otherwise")
    if plan.grads_finite != int(t):
        fails.append(f"{label}: grads_finite {plan.grads_finite}, NumPy finds finite={t}")

mr = fastfc.get_config()
# (in, out, bias, act): plain; narrow out (dW transposed); streamed (in <= 16, no bias,
# identity: no dZ to make); wide enough for two threads to split the product
SHAPES = [(37, 45, True, "relu"), (64, 10, True, "relu"), (29, 3, False, "identity"),
          (8, 70, False, "identity"), (5, 33, False, "identity"), (300, 200, True, "tanh"),
          (130, 7, True, "identity"), (900, 260, True, "relu"), (600, 40, False, "identity")]
for threads in (1, 2):
    fastfc.set_num_threads(threads)
    for dt in (np.float32, np.float64):
        huge = np.finfo(dt).max / 2
        rng = np.random.default_rng(5)
        for fin, fout, bias, act in SHAPES:
            for batch in (3, 32):
                lab = f"{dt.__name__} t={threads} {fin}x{fout} bias={bias} {act} batch={batch}"
                plan, arrays = plan_for([fin, fout], batch, dt, bias, act, rng)
                x = rng.standard_normal((batch, fin)).astype(dt)
                g = rng.standard_normal((batch, fout)).astype(dt)
                check(plan, arrays, x, g, lab + " finite", True)
                # a NaN / Inf in x: row c of dW (forward on a clean x, backward on this one)
                for c in sorted({0, 1, fin // 2, fin - 1}):
                    for v in (np.nan, np.inf, -np.inf):
                        xb = x.copy()
                        xb[batch - 1, c] = v
                        plan.forward(x)
                        plan.grad_output[...] = g
                        plan.backward(xb)
                        checks += 1
                        if plan.grads_finite != int(truth(arrays)) or truth(arrays):
                            fails.append(f"{lab} x[{batch - 1},{c}]={v}: grads_finite "
                                         f"{plan.grads_finite}")
                # one element of dW overflows: x[:, c] huge, dZ[:, o] large, the rest 0
                if act != "identity":
                    continue
                for c, o in sorted({(0, 0), (fin - 1, fout - 1), (fin // 2, fout // 2),
                                    (fin - 1, 0), (1 % fin, fout - 1)}):
                    xo = np.zeros((batch, fin), dt)
                    xo[:, c] = huge
                    go = np.zeros((batch, fout), dt)
                    go[:, o] = 4 if (c + o) % 2 else -4
                    check(plan, arrays, xo, go, f"{lab} dW[{c},{o}] overflows", False)
                # AVX2 bounds dW by batch * max|x| * max|dZ| before it scans dW: here the
                # bound fails (x huge only in the row where dZ is 0) and dW is finite
                xo = np.zeros((batch, fin), dt)
                xo[0] = huge
                go = np.zeros((batch, fout), dt)
                go[1:] = 4
                check(plan, arrays, xo, go, f"{lab} bound fails, dW finite", True)
        # exactly one layer of three: its input column c huge (x, or the bias of the layer
        # below with that column's weights 0), the column's weights in it 0
        sizes = [20, 30, 12, 6]
        for target in range(3):
            plan, arrays = plan_for(sizes, 4, dt, True, "identity", rng, wscale=0.5)
            x = np.ones((4, sizes[0]), dt)
            c = 3
            if target == 0:
                x[:, c] = huge
            else:
                w, b, _, _ = arrays[target - 1]
                w[:, c] = 0
                b[c] = huge
            arrays[target][0][c, :] = 0
            check(plan, arrays, x, np.ones((4, sizes[-1]), dt), f"{dt.__name__} t={threads} "
                  f"layer {target} of 3", False)
            bad = [i for i, a in enumerate(arrays) if not np.isfinite(a[2]).all()]
            if bad != [target]:
                fails.append(f"layer {target} of 3: non-finite dW in layers {bad}")
            arrays[target][0][c, :] = 1
            plan.check_finite = False
            plan.forward(x)
            plan.backward(x)
            if plan.grads_finite != -1:
                fails.append(f"unchecked: grads_finite {plan.grads_finite}")

print(json.dumps({"isa": fastfc.get_config()["isa"], "checks": checks, "fails": fails}))
"""

CFG = fastfc.get_config()
ISAS = list(dict.fromkeys(list(CFG["isas_supported"]) + list(CFG["isas_testable"])))


def _sweep(**env):
    """SWEEP in a fresh interpreter under `env`; its checks must all have passed."""
    r = subprocess.run([sys.executable, "-c", SWEEP], env=dict(os.environ, **env),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["checks"] > 500
    assert res["fails"] == [], res["fails"][:10]
    return res


@pytest.mark.parametrize("isa", ISAS)
def test_every_path_checks_dw_as_the_gemm_writes_it(isa):
    assert _sweep(FASTFC_ISA=isa)["isa"] == isa


def test_a_k_split_stream_checks_dw_too():
    # tiny K blocks, no work threshold and no run length: streamed dW products (in <= 16)
    # on two threads split K, and the group's last chunk checks what it adds up
    _sweep(FASTFC_KC="8", FASTFC_MIN_PARALLEL_MNK="0", FASTFC_NAP_SOLO_MNK="0",
           FASTFC_STREAM_READ_COST="1", FASTFC_STREAM_RUN_BYTES="1G")
