"""The NaN / Inf check of fit(on_nonfinite=) on every path (FASTFC_ISA in a fresh interpreter,
the path being picked at import): each kind of non-finite value at every position mod 64 of
odd sizes (the vector body, its remainder and the masked tail), at every start mod 16 (views
one element apart), on one thread and split over a team; no finite value is flagged."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastfc

# Runs in a child process under FASTFC_ISA: prints the path in use and the cases that failed.
SWEEP = r"""
import json, sys
import numpy as np
import fastfc
from fastfc import _core

SIZES = [0, 1, 2, 3, 4, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 127, 129, 1000, 1031]
fails, checks = [], 0

def bad_values(dt):
    # quiet and signalling NaNs of both signs, a NaN payload with all bits set, +-Inf
    u = np.uint32 if dt == np.float32 else np.uint64
    e = 23 if dt == np.float32 else 52
    inf, top = u(((1 << (8 if dt == np.float32 else 11)) - 1) << e), u(1) << u(e - 1)
    sign = u(1) << u(31 if dt == np.float32 else 63)
    bits = [inf | top, inf | u(1), inf | top | sign, inf | u(1) | sign, ~u(0), inf, inf | sign]
    return [np.array(b, u).view(dt) for b in bits]

def finite_values(dt):
    fi = np.finfo(dt)
    return [fi.max, -fi.max, fi.tiny, fi.smallest_subnormal, -fi.smallest_subnormal, -0.0]

def check(x, want, label):
    global checks
    checks += 1
    got = _core._all_finite(x)
    if got != want:
        fails.append(f"{label}: got {got}, want {want}")

for threads in (1, 2):
    fastfc.set_num_threads(threads)
    for dt in (np.float32, np.float64):
        rng = np.random.default_rng(3)
        for n in SIZES:
            for start in range(16):
                base = rng.standard_normal(n + 16).astype(dt)
                base[start:start + n][::3] = finite_values(dt)[0]
                x = base[start:start + n]
                check(x, True, f"{dt.__name__} n={n} start={start} finite")
                if n:
                    x[n - 1] = finite_values(dt)[start % 6]
                    check(x, True, f"{dt.__name__} n={n} start={start} edge finite")
                # every position of the first two 64-element blocks and of the tail
                for pos in [p for p in range(n) if p < 130 or p >= n - 70]:
                    if start % 4 and pos % 3:   # every position from start 0; a third elsewhere
                        continue
                    v = bad_values(dt)[(pos + start) % 7]
                    keep = x[pos]
                    x[pos] = v
                    check(x, False, f"{dt.__name__} n={n} start={start} pos={pos} bits={v!r}")
                    x[pos] = keep
        # past the team threshold (~0.5 M elements): parts on two threads, each checked
        n = 1_200_007
        x = rng.standard_normal(n).astype(dt)
        check(x, True, f"{dt.__name__} n={n} threads={threads} finite")
        for pos in (0, 63, 64, n // 3, n // 2 + 1, n - 65, n - 1):
            for v in (np.nan, np.inf, -np.inf):
                keep = x[pos]
                x[pos] = v
                check(x, False, f"{dt.__name__} n={n} threads={threads} pos={pos} {v}")
                x[pos] = keep

print(json.dumps({"isa": fastfc.get_config()["isa"], "checks": checks, "fails": fails}))
"""

CFG = fastfc.get_config()
ISAS = list(dict.fromkeys(list(CFG["isas_supported"]) + list(CFG["isas_testable"])))


@pytest.mark.parametrize("isa", ISAS)
def test_every_path_finds_every_nonfinite_value(isa):
    env = dict(os.environ, FASTFC_ISA=isa)
    r = subprocess.run([sys.executable, "-c", SWEEP], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["isa"] == isa
    assert res["checks"] > 10_000
    assert res["fails"] == [], res["fails"][:10]

