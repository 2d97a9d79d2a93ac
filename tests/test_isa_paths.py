"""The correctness sweep on every kernel path this CPU can run (FASTFC_ISA)."""
import os
import subprocess
import sys

import pytest

import fastfc

SWEEP = r"""
import numpy as np, fastfc
from fastfc import reference as ref
from fastfc.__main__ import check_kernels
print(fastfc.get_config()["isa"])
rng = np.random.default_rng(7)
bad = check_kernels(rng)
for dt in (np.float32, np.float64):
    eps = np.finfo(dt).eps
    for m, k, n in [(1, 1, 1), (7, 17, 63), (13, 300, 37), (65, 1000, 33), (100, 64, 10)]:
        for order in "CF":
            x = np.asarray(rng.standard_normal((m, k)), dt, order=order)
            w = np.asarray(rng.standard_normal((k, n)), dt, order=order)[::-1]
            b = rng.standard_normal(n).astype(dt)
            for act in ("relu", "leaky_relu", "sigmoid", "tanh", None):
                y = fastfc.linear(x, w, b, activation=act)
                tol = 8 * eps * (k + 1) * ((np.abs(x) @ np.abs(w)) + np.abs(b))
                if not (np.abs(y - ref.linear(x, w, b, activation=act)) <= tol).all():
                    bad.append(f"linear {act} {dt.__name__} {m}x{k}x{n} {order}")
            c = fastfc.gemm(x.T, w, trans_a=True, alpha=0.5)
            if not (np.abs(c - 0.5 * x @ w) <= 8 * eps * k * (np.abs(x) @ np.abs(w))).all():
                bad.append(f"gemm {dt.__name__} {m}x{k}x{n} {order}")
print("FAIL" if bad else "OK", bad)
"""


def run_with_isa(isa):
    env = dict(os.environ, FASTFC_ISA=isa)
    return subprocess.run([sys.executable, "-c", SWEEP], env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("isa", fastfc.get_config()["isas_testable"])
def test_every_path_passes(isa):
    r = run_with_isa(isa)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0] == isa
    assert lines[1].startswith("OK"), r.stdout


def test_unsupported_isa_warns_and_falls_back():
    cfg = fastfc.get_config()
    r = run_with_isa("avx512")
    assert r.returncode == 0, r.stderr
    if "avx512" in cfg["isas_supported"]:
        assert r.stdout.startswith("avx512")
    else:
        assert "RuntimeWarning" in r.stderr and "not supported by this CPU" in r.stderr
        assert r.stdout.startswith(cfg["cpu_isa"])
    assert "OK" in r.stdout


def test_unknown_isa_warns():
    r = run_with_isa("sse9")
    assert r.returncode == 0 and "is not one of" in r.stderr and "OK" in r.stdout


def test_show_config_reports_path(capsys):
    fastfc.show_config()
    out = capsys.readouterr().out
    cfg = fastfc.get_config()
    assert f"isa in use      : {cfg['isa']}" in out
    assert f"MR={cfg['blocks_float32']['MR']}" in out and "threads" in out
