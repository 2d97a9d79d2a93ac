"""The per-CPU tuning table: derived from the caches of several CPUs (FASTFC_L1D/L2/L3),
overrides and malformed overrides, results independent of the blocks and of the chunking,
and threads after fork / forkserver / spawn."""
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import fastfc
from fastfc import _core, reference as ref
from conftest import assert_close, assert_identical, gemm_scale

# L1d, L1 ways, L2, L2 ways, L3 of CPUs fastfc runs on (from their CPUID cache leaves)
CPUS = {
    "zen1": ("32K", 8, "512K", 8, "8M"),
    "zen3": ("32K", 8, "512K", 8, "32M"),
    "zen4": ("32K", 8, "1M", 8, "32M"),
    "xeon-skx": ("32K", 8, "1M", 16, "38912K"),
    "xeon-spr": ("48K", 12, "2M", 16, "480M"),
}

CONFIG = r"""
import json, sys, warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    import fastfc
cfg = fastfc.get_config()
print(json.dumps({"tuning": cfg["tuning"], "s": cfg["blocks_float32"], "d": cfg["blocks_float64"],
                  "warnings": [str(w.message) for w in caught]}))
"""


def _config(**env):
    """get_config() and the import's warnings in a fresh interpreter with `env` set."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("FASTFC_")}
    full.update({k: str(v) for k, v in env.items()})
    out = subprocess.run([sys.executable, "-c", CONFIG], env=full, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


def _bytes(text):
    return int(text[:-1]) << {"K": 10, "M": 20}[text[-1]]


@pytest.mark.parametrize("cpu", sorted(CPUS))
@pytest.mark.parametrize("isa", ["avx2", "avx512", "generic"])
def test_blocks_follow_the_caches(cpu, isa):
    if isa not in fastfc.get_config()["isas_supported"]:
        pytest.skip(f"this CPU has no {isa}")
    l1, w1, l2, w2, l3 = CPUS[cpu]
    cfg = _config(FASTFC_ISA=isa, FASTFC_L1D=l1, FASTFC_L1_WAYS=w1, FASTFC_L2=l2,
                  FASTFC_L2_WAYS=w2, FASTFC_L3=l3)
    assert not cfg["warnings"]
    t = cfg["tuning"]
    assert t["L2"] == [_bytes(l2), "env"] and t["L1D"] == [_bytes(l1), "env"]
    for dt, size in (("s", 4), ("d", 8)):
        b, name = cfg[dt], {"s": "float32", "d": "float64"}[dt]
        assert b["MC"] % b["MR"] == 0 and b["KC"] % 8 == 0 and b["NC"] % b["NR"] == 0
        assert t[f"{name} KC"][0] == b["KC"] and t[f"{name} KC"][1].startswith("model")
        # A block in a quarter of L2; B block in half of L2 where the AVX-512 kernels keep it
        # there (A micro-panels in L1), else in a quarter of L3
        assert b["MC"] * b["KC"] * size <= _bytes(l2) // 4
        in_l2 = isa == "avx512"
        home = _bytes(l2) // 2 if in_l2 else _bytes(l3) // 4
        assert b["KC"] * b["NC"] * size <= home
        fits = home // (b["KC"] * size) // b["NR"] * b["NR"]   # the most NR-wide panels
        assert b["NC"] == max(b["NR"], min(fits, 16320 // b["NR"] * b["NR"]))
        assert t[f"{name} NC"][1] == ("model: B block in half of L2" if in_l2
                                      else "model: B block in a quarter of L3")
        # past L1 the micro-panels run from L2: 512 steps, or 256 where a quarter of L2
        # cannot hold that many steps of both, unless the B micro-panel's share of L1's
        # ways is deeper
        fits = [s for s in (512, 256) if s * (b["MR"] + b["NR"]) * size <= _bytes(l2) // 4]
        ways_b = max(1, (w1 - 1) * b["NR"] // (b["MR"] + b["NR"]))
        share = min(2048, ways_b * (_bytes(l1) // w1) // (b["NR"] * size) // 8 * 8)
        if fits and share < fits[0]:
            assert (b["KC"], t[f"{name} KC"][1]) == (fits[0],
                                                     f"model: panel past L1, {fits[0]} steps")
        else:
            assert (b["KC"], t[f"{name} KC"][1]) == (share, "model: B micro-panel in L1 ways")


@pytest.mark.parametrize("cpu", sorted(CPUS))
def test_b_from_memory_is_a_quarter_of_l3_at_most_16_l2s(cpu):
    l1, w1, l2, w2, l3 = CPUS[cpu]
    cfg = _config(FASTFC_L1D=l1, FASTFC_L1_WAYS=w1, FASTFC_L2=l2, FASTFC_L2_WAYS=w2,
                  FASTFC_L3=l3)
    value, source = cfg["tuning"]["B_FROM_MEMORY"]
    assert value == min(_bytes(l3) // 4, 16 * _bytes(l2))
    # only the 480 MiB L3 of the Xeon is capped (docs/tuning.md)
    assert (source == "model: 16 x L2 (a quarter of L3 is more)") == (cpu == "xeon-spr")


# Worked by hand (docs/tuning.md). Zen 4, AVX2 6x16: 16/(6+16) of 7 ways = 5 ways of 4 KiB
# for 16 floats a step -> 320 steps, but 512 steps of both panels (44 KiB) fit a quarter of
# L2 -> KC 512; 256 KiB / (512*4) = 128 -> MC 126; 8 MiB / 2 KiB -> NC 4096; float64 6x8:
# KC 512, MC 60, NC 2048. The Xeon, AVX-512 12x32 (the emulated path has its tiles and rules):
# 12/(12+32) of 11 ways = 3 ways of 4 KiB, 48 bytes a step -> 256 steps, but B's
# micro-panels run from L2 in this order -> KC 512; 512 KiB / 2 KiB -> MC 252; B's block in
# 1 MiB -> NC 512; float64 8x24: 2 ways -> 128 steps, past L1 -> KC 512, MC 128, 1 MiB / 4 KiB
# = 256 -> NC 240.
@pytest.mark.parametrize("isa,caches,want", [
    ("avx2", ("32K", 8, "1M", 8, "32M"), {"s": (126, 512, 4096), "d": (60, 512, 2048)}),
    ("avx512-emulated", ("48K", 12, "2M", 16, "480M"), {"s": (252, 512, 512),
                                                         "d": (128, 512, 240)}),
])
def test_blocks_worked_by_hand(isa, caches, want):
    cfg = fastfc.get_config()
    if isa not in cfg["isas_supported"] + cfg["isas_testable"]:
        pytest.skip(f"this CPU or build has no {isa} path")
    l1, w1, l2, w2, l3 = caches
    cfg = _config(FASTFC_ISA=isa, FASTFC_L1D=l1, FASTFC_L1_WAYS=w1, FASTFC_L2=l2,
                  FASTFC_L2_WAYS=w2, FASTFC_L3=l3)
    for dt, blocks in want.items():
        assert (cfg[dt]["MC"], cfg[dt]["KC"], cfg[dt]["NC"]) == blocks


def test_larger_caches_never_shrink_blocks():
    small = _config(FASTFC_L2="512K", FASTFC_L3="8M")
    large = _config(FASTFC_L2="2M", FASTFC_L3="64M")
    for dt in "sd":
        assert large[dt]["MC"] >= small[dt]["MC"] and large[dt]["NC"] >= small[dt]["NC"]


def test_overrides_apply_and_say_so():
    cfg = _config(FASTFC_KC="192", FASTFC_MC="96", FASTFC_NC="960", FASTFC_CHUNKS_PER_THREAD=2)
    assert not cfg["warnings"]
    assert cfg["s"]["KC"] == cfg["d"]["KC"] == 192
    assert cfg["s"]["MC"] == 96 // cfg["s"]["MR"] * cfg["s"]["MR"]
    assert cfg["tuning"]["float32 KC"] == [192, "env FASTFC_KC"]
    assert cfg["tuning"]["CHUNKS_PER_THREAD"] == [2, "env"]


@pytest.mark.parametrize("var,value", [("FASTFC_KC", "abc"), ("FASTFC_KC", "0"),
                                       ("FASTFC_KC", "100000"), ("FASTFC_MC", "-5"),
                                       ("FASTFC_L2", "1.5M"), ("FASTFC_CHUNKS_PER_THREAD", "0"),
                                       ("FASTFC_MIN_PARALLEL_MNK", "many")])
def test_malformed_override_warns_and_keeps_the_derived_value(var, value):
    derived = _config()
    cfg = _config(**{var: value})
    assert any(f"{var}={value}" in w and "using" in w for w in cfg["warnings"]), cfg["warnings"]
    assert cfg["s"] == derived["s"] and cfg["d"] == derived["d"]
    assert cfg["tuning"] == derived["tuning"]


@pytest.mark.parametrize("value", ["128", "32"])
def test_line_override_applies(value):
    cfg = _config(FASTFC_LINE=value)
    assert not cfg["warnings"] and cfg["tuning"]["LINE"] == [int(value), "env"]


@pytest.mark.parametrize("value,what", [("abc", "not an integer"), ("8", "out of the range"),
                                        ("2048", "out of the range"),
                                        ("96", "not a power of two")])
def test_malformed_line_override_warns(value, what):
    derived = _config()["tuning"]["LINE"]
    cfg = _config(FASTFC_LINE=value)
    assert cfg["tuning"]["LINE"] == derived
    assert [w for w in cfg["warnings"] if w.startswith(f"FASTFC_LINE={value} is {what}")
            and f"using {derived[0]}" in w], cfg["warnings"]


@pytest.mark.parametrize("value", [2**40 + 1, 2**50])
def test_large_thresholds_up_to_the_stated_bound_apply(value):
    cfg = _config(FASTFC_MIN_PARALLEL_MNK=value, FASTFC_B_FROM_MEMORY=value)
    assert not cfg["warnings"]
    assert cfg["tuning"]["MIN_PARALLEL_MNK"] == cfg["tuning"]["B_FROM_MEMORY"] == [value, "env"]


@pytest.mark.parametrize("var,value", [("FASTFC_L3", "0"), ("FASTFC_L3", "1"),
                                       ("FASTFC_L2", "4K"), ("FASTFC_L1D", "1K"),
                                       ("FASTFC_MIN_PARALLEL_MNK", 2**50 + 1),
                                       ("FASTFC_KC", "99999999999999999999")])
def test_override_out_of_range_says_so(var, value):
    derived = _config()
    cfg = _config(**{var: value})
    assert any(w.startswith(f"{var}={value} is out of the range [") and "using" in w
               for w in cfg["warnings"]), cfg["warnings"]
    assert cfg["tuning"] == derived["tuning"] and cfg["s"] == derived["s"]


@pytest.mark.parametrize("value", [" 256", "256 ", " 256\t"])
def test_blanks_around_an_override_are_allowed(value):
    cfg = _config(FASTFC_KC=value)
    assert not cfg["warnings"] and cfg["tuning"]["float32 KC"] == [256, "env FASTFC_KC"]


@pytest.mark.parametrize("value", [os.fsdecode(b"\xff\xfe"), "\u00e4" * 1500])
def test_any_bytes_in_an_override_give_one_warning(value):
    """Bytes that are not UTF-8, or a value cut in a character, still warn (the import
    failed decoding them); one line, not one per dtype."""
    cfg = _config(FASTFC_KC=value)
    lines = [w for w in cfg["warnings"] if w.startswith("FASTFC_KC=")]
    assert len(lines) == 1 and "using" in lines[0] and len(lines[0]) < 200, cfg["warnings"]
    assert cfg["s"] == _config()["s"]


@pytest.mark.parametrize("caches", [{}, dict(FASTFC_L1D="48K", FASTFC_L1_WAYS="12")])
def test_a_block_override_warns_once_with_each_dtypes_value(caches):
    """One line per variable, naming the value kept for each dtype (they differ where the
    L1 is 48 KiB 12-way, as on Intel's Sapphire Rapids)."""
    derived = _config(**caches)["tuning"]
    cfg = _config(FASTFC_KC="abc", **caches)
    lines = [w for w in cfg["warnings"] if w.startswith("FASTFC_KC=")]
    assert lines == [f"FASTFC_KC=abc is not an integer in [8, 2048]; using "
                     f"{derived['float32 KC'][0]} for float32, "
                     f"{derived['float64 KC'][0]} for float64"], cfg["warnings"]


def test_every_override_malformed_at_once_fills_the_warnings_without_harm():
    names = ["L1D", "L1_WAYS", "L2", "L2_WAYS", "L3", "LINE", "MC", "KC", "NC",
             "MIN_PARALLEL_MNK", "MAX_PAIR_MNK", "NAP_NS", "NAP_SOLO_MNK", "B_FROM_MEMORY",
             "CHUNKS_PER_THREAD", "PACK_COST", "STREAM_MAX_M", "STREAM_ACC_BYTES", "STREAM_READ_COST",
             "STREAM_RUN_BYTES", "POOL_SPIN_NS"]
    derived = _config()
    cfg = _config(**{f"FASTFC_{name}": "x" * 200 for name in names})
    assert cfg["tuning"] == derived["tuning"] and cfg["s"] == derived["s"]
    assert cfg["warnings"] and all(w.startswith("FASTFC_") for w in cfg["warnings"])
    # the buffer (2 KiB) holds what it can; a block size is still one line
    assert sum(w.startswith("FASTFC_KC=") for w in cfg["warnings"]) == 1


def test_blocks_beyond_the_caches_are_refused():
    derived = _config()
    cfg = _config(FASTFC_MC="4000", FASTFC_KC="2048")
    assert any("exceed the caches" in w for w in cfg["warnings"]), cfg["warnings"]
    assert cfg["s"] == derived["s"]
    # the refused rows are the ones set: MC alone here (KC and NC keep their sources)
    caches = dict(FASTFC_L2="1M", FASTFC_L3="32M")
    cfg = _config(FASTFC_MC="4000", **caches)
    assert cfg["s"] == _config(**caches)["s"]
    assert "refused" in cfg["tuning"]["float32 MC"][1]
    assert "refused" not in cfg["tuning"]["float32 KC"][1] + cfg["tuning"]["float32 NC"][1]
    # a block that just fits is taken: float64's A block (a quarter of L2 at KC 512) at KC
    # 2048 fills the L2 to within a tile's rows
    cfg = _config(FASTFC_KC="2048", **caches)
    rows = cfg["d"]["MC"] * 2048 * 8
    assert cfg["d"]["KC"] == 2048 and 1 << 20 >= rows > (1 << 20) - cfg["d"]["MR"] * 2048 * 8


def _digest(**env):
    full = {k: v for k, v in os.environ.items() if not k.startswith("FASTFC_")}
    full.update({k: str(v) for k, v in env.items()})
    out = subprocess.run([sys.executable, "-c", SAME_RESULTS_SIMPLE, os.path.dirname(__file__)],
                         env=full, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split()


SAME_RESULTS_SIMPLE = r"""
import hashlib, sys
import numpy as np, fastfc
from fastfc import reference as ref
sys.path.insert(0, sys.argv[1])
from conftest import assert_close, gemm_scale
digests = []
for threads in (1, 2, 3):
    fastfc.set_num_threads(threads)
    rng = np.random.default_rng(5)
    h = hashlib.sha256()
    for dt in (np.float32, np.float64):
        for m, k, n in [(301, 517, 263), (64, 784, 128), (7, 1000, 65), (1000, 17, 300)]:
            x, w = rng.standard_normal((m, k)).astype(dt), rng.standard_normal((k, n)).astype(dt)
            b, gy = rng.standard_normal(n).astype(dt), rng.standard_normal((m, n)).astype(dt)
            for _ in range(3):  # back to back, so the team is awake and takes the chunks
                y = fastfc.linear(x, w, b, activation="relu")
            assert_close(y, ref.linear(x, w, b, activation="relu"),
                         gemm_scale(x, w) + abs(b), k, dt)
            h.update(y.tobytes())
            for g in fastfc.linear_backward(gy, x, w, y=y, activation="relu"):
                h.update(g.tobytes())
    digests.append(h.hexdigest())
print(*digests)
"""


def test_results_do_not_depend_on_threads_or_chunks():
    # 1, 2 and 3 threads, 1 or 7 chunks a thread: every bit the same
    a = _digest(FASTFC_CHUNKS_PER_THREAD=1)
    b = _digest(FASTFC_CHUNKS_PER_THREAD=7, FASTFC_MIN_PARALLEL_MNK=1000)
    assert len(set(a + b)) == 1


def test_tiny_blocks_compute_right():
    # every loop of the five runs many times: blocks of one tile, K blocks of 8
    cfg = _config()
    _digest(FASTFC_MC=cfg["s"]["MR"], FASTFC_KC=8, FASTFC_NC=cfg["s"]["NR"])


def test_show_config_prints_the_table(capsys):
    fastfc.show_config()
    text = capsys.readouterr().out
    for name, (value, source) in fastfc.get_config()["tuning"].items():
        assert name in text and source in text


def _child_work():
    """In a child process: products checked against the reference; whether a team ran.
    They are past NAP_SOLO_MNK, so the nap rule never keeps them on one thread (a call of
    the test-only emulated AVX-512 path lasts longer than NAP_NS: each would follow a nap)."""
    fastfc.set_num_threads(2)
    rng = np.random.default_rng(2)
    side = round(fastfc.get_config()["tuning"]["NAP_SOLO_MNK"][0] ** (1 / 3)) + 12
    x = rng.standard_normal((side, side + 100)).astype(np.float32)
    w = rng.standard_normal((side + 100, side)).astype(np.float32)
    before = _core._wide_regions()
    end = time.monotonic() + 5
    for _ in range(3):  # then on until a worker takes part: one may start late on a busy VM
        y = fastfc.gemm(x, w)
    while (_core._wide_regions() == before and not _core.forked_single_thread()
           and time.monotonic() < end):
        y = fastfc.gemm(x, w)
    ok = bool(np.all(np.abs(y - ref.gemm(x, w)) <= 1e-4 * (gemm_scale(x, w) + 1)))
    return ok, _core._wide_regions() > before, _core.forked_single_thread()


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_children_compute_right_and_use_threads_where_they_can(keep_threads, method):
    if method not in mp.get_all_start_methods():
        pytest.skip(f"no {method} start method here")
    fastfc.set_num_threads(2)
    x = np.ones((600, 600), np.float32)
    for _ in range(3):
        fastfc.gemm(x, x)  # the parent's OpenMP pool exists now
    with mp.get_context(method).Pool(1) as pool:
        ok, team_ran, single = pool.apply_async(_child_work).get(timeout=120)
    assert ok
    # fastfc's pool starts anew in a forked child: every child keeps its threads
    assert not single
    assert team_ran or os.cpu_count() == 1


FORKED = r"""
import os, sys, numpy as np, fastfc
fastfc.set_num_threads(2)
x = np.ones((600, 600), np.float32)
for _ in range(3):
    fastfc.gemm(x, x)
pid = os.fork()
if pid == 0:
    import time
    before, end = fastfc._core._wide_regions(), time.monotonic() + 5
    y = fastfc.gemm(x, x)
    while fastfc._core._wide_regions() == before and time.monotonic() < end:
        y = fastfc.gemm(x, x)  # the child's first worker may start late on a busy VM
    fastfc.show_config()
    team = fastfc._core._wide_regions() > before or os.cpu_count() == 1
    os._exit(0 if np.all(y == 600) and team else 3)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def test_forked_child_keeps_its_threads_without_a_warning():
    out = subprocess.run([sys.executable, "-W", "always", "-c", FORKED], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Warning" not in out.stderr, out.stderr
    assert "forked" not in out.stdout


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_bad_thread_count_in_the_environment_warns(value):
    cfg = _config(OMP_NUM_THREADS=value)
    assert any(f"OMP_NUM_THREADS={value!r}" in w and "using" in w for w in cfg["warnings"])


@pytest.mark.parametrize("value", ["2147483648", "99999999999999999999999"])
def test_huge_thread_count_in_the_environment_warns_and_clamps(value):
    cfg = _config(OMP_NUM_THREADS=value)  # an OverflowError at import before
    assert any(f"OMP_NUM_THREADS={value!r}" in w and f"using {2**31 - 1}" in w
               for w in cfg["warnings"]), cfg["warnings"]
