"""threadpoolctl sees and limits fastfc's threads (fastfc.threadpool), and fastfc imports
and runs without threadpoolctl."""
import os
import subprocess
import sys
import types

import numpy as np
import pytest

import fastfc
from fastfc import _core

threadpoolctl = pytest.importorskip("threadpoolctl", reason="threadpoolctl is optional")


def _fastfc_pools():
    return [p for p in threadpoolctl.threadpool_info() if p["internal_api"] == "fastfc"]


def _wide_product():
    """Back-to-back products big enough to split over threads, up to 50 of them until one
    gets a team (the first may run alone if the team slept, and on a loaded machine a
    woken worker can come after the caller took every chunk); returns the number of
    parallel regions that got a team."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 512)).astype(np.float32)
    w = rng.standard_normal((512, 512)).astype(np.float32)
    before = _core._wide_regions()
    for _ in range(50):
        fastfc.linear(x, w, activation="relu")
        if _core._wide_regions() > before:
            break
    return _core._wide_regions() - before


def test_info_lists_fastfc_once(keep_threads):
    fastfc.set_num_threads(3)
    (pool,) = _fastfc_pools()
    assert pool["user_api"] == "openmp"
    assert pool["num_threads"] == 3
    assert pool["version"] == fastfc.__version__
    assert os.path.isfile(pool["filepath"])
    assert os.path.basename(pool["filepath"]).lower().startswith(pool["prefix"])
    assert pool["openmp_version"] == fastfc.get_config()["openmp"]
    openmp = os.path.basename(pool["openmp_library"] or "")
    assert openmp.startswith(("libgomp", "libomp", "libiomp", "vcomp")), pool


def test_info_follows_set_num_threads(keep_threads):
    for n in (1, 2, 5):
        fastfc.set_num_threads(n)
        assert [p["num_threads"] for p in _fastfc_pools()] == [n]


@pytest.mark.parametrize("user_api", [None, "openmp"])
def test_limits_change_and_restore(keep_threads, user_api):
    fastfc.set_num_threads(3)
    with threadpoolctl.threadpool_limits(1, user_api=user_api):
        assert fastfc.get_num_threads() == 1
    assert fastfc.get_num_threads() == 3
    limiter = threadpoolctl.threadpool_limits(2, user_api=user_api)
    assert fastfc.get_num_threads() == 2
    limiter.restore_original_limits()
    assert fastfc.get_num_threads() == 3


def test_limits_by_library_and_other_apis(keep_threads):
    fastfc.set_num_threads(3)
    (pool,) = _fastfc_pools()
    for key in (pool["prefix"], pool["filepath"]):   # a dict of limits names libraries so
        with threadpoolctl.threadpool_limits({key: 2}):
            assert fastfc.get_num_threads() == 2
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        assert fastfc.get_num_threads() == 3   # not an OpenMP pool limit: fastfc untouched
    assert fastfc.get_num_threads() == 3


def test_limits_as_decorator(keep_threads):
    fastfc.set_num_threads(3)

    @threadpoolctl.threadpool_limits.wrap(limits=1)
    def inside():
        return fastfc.get_num_threads()

    @threadpoolctl.ThreadpoolController().wrap(limits=2, user_api="openmp")
    def inside_controller():
        return fastfc.get_num_threads()

    assert inside() == 1
    assert inside_controller() == 2
    assert fastfc.get_num_threads() == 3


def test_limits_restore_after_an_error(keep_threads):
    fastfc.set_num_threads(3)
    with pytest.raises(RuntimeError, match="inside"):
        with threadpoolctl.threadpool_limits(1):
            raise RuntimeError("inside")
    assert fastfc.get_num_threads() == 3


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="a team needs two processors")
def test_a_limited_region_runs_on_one_thread(keep_threads):
    fastfc.set_num_threads(2)
    assert _wide_product() > 0        # the check can see a team
    with threadpoolctl.threadpool_limits(1):
        assert _wide_product() == 0
    assert _wide_product() > 0


def test_the_pool_is_fastfcs_core_library():
    (pool,) = _fastfc_pools()
    assert pool["prefix"] == "libfastfc_core"
    # the library fastfc's modules link, installed with the package (or vendored beside it)
    site = os.path.dirname(os.path.dirname(os.path.realpath(fastfc.__file__)))
    assert os.path.realpath(pool["filepath"]).startswith(site + os.sep), pool


RUN = r"""
import sys
sys.path.insert(0, sys.argv[1])
{before}
import fastfc
import numpy as np
assert np.array_equal(fastfc.linear(np.ones((2, 3)), np.ones((3, 4))), np.full((2, 4), 3.0))
fastfc.set_num_threads(2)
{after}
print("ok")
"""


def _run(before="", after=""):
    src = os.path.dirname(os.path.dirname(fastfc.__file__))
    out = subprocess.run([sys.executable, "-c", RUN.format(before=before, after=after), src],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.split() == ["ok"], out.stderr


def test_without_threadpoolctl():
    # None in sys.modules: the import system treats threadpoolctl as not installed
    _run(before="sys.modules['threadpoolctl'] = None",
         after="assert fastfc.threadpool.register() is False\n"
               "assert sys.modules['threadpoolctl'] is None\n"
               "assert fastfc.get_num_threads() == 2")


def test_register_without_threadpoolctl_or_with_an_old_one(monkeypatch):
    monkeypatch.setattr(fastfc.threadpool, "_registered", False)
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)   # as if not installed
    assert fastfc.threadpool.register() is False
    old = types.ModuleType("threadpoolctl")   # before 3.2: no register()
    monkeypatch.setitem(sys.modules, "threadpoolctl", old)
    assert fastfc.threadpool.register() is False


def test_threadpoolctl_imported_and_listed_first():
    # a library list threadpoolctl made before fastfc was imported is not kept stale
    _run(before="import threadpoolctl; threadpoolctl.threadpool_info()",
         after="import threadpoolctl\n"
               "pools = [p for p in threadpoolctl.threadpool_info() "
               "if p['internal_api'] == 'fastfc']\n"
               "assert [p['num_threads'] for p in pools] == [2], pools")
