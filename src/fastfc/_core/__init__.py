"""The compiled boundary: Cython modules over one shared C core library (libfastfc_core),
so the process has one kernel table and one thread team whichever module calls it.

_config  ISA path, threads, configuration      _args     argument checks (cimported)
_linear  gemm, linear, linear_backward         _dropout  dropout, dropout_backward
_plan    the training-step kernels and MLPPlan      _tuning   the per-CPU tuning table, fork
"""
import os as _os


def _gomp_loaded():
    try:
        with open("/proc/self/maps") as maps:
            return "libgomp" in maps.read()
    except OSError:
        return False


# libgomp's idle threads spin 300000 pauses by default (26 ms on Zen 4, 88 ns a pause) and
# starve NumPy's BLAS threads beside them; 1000 (~20-90 us) still bridges back-to-back calls
# (docs/tuning.md). libgomp reads GOMP_SPINCOUNT once, when it loads (the next import), so
# it is set for that moment only and never for other libraries or child processes.
WAIT_POLICY = "libgomp: the environment's OMP_WAIT_POLICY / GOMP_SPINCOUNT"
if not {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"} & set(_os.environ):
    if _gomp_loaded():
        WAIT_POLICY = "libgomp loaded before fastfc: its default spin (300000 pauses)"
    else:
        _os.environ["GOMP_SPINCOUNT"] = "1000"
        WAIT_POLICY = "libgomp: GOMP_SPINCOUNT=1000 set for fastfc's load"
try:
    from fastfc._core import _config  # noqa: F401 - loads libfastfc_core and libgomp
finally:
    if WAIT_POLICY.endswith("for fastfc's load"):
        del _os.environ["GOMP_SPINCOUNT"]

from fastfc._core._config import (CPU_ISA, EMULATED_ISA, ISA, ISA_NAMES, _wide_regions,
                                  fma_peak_gflops, get_config, get_num_threads, philox4x32_10,
                                  set_num_threads)
from fastfc._core._tuning import forked_single_thread, tuning_table
from fastfc._core._args import ACTIVATIONS
from fastfc._core._linear import gemm, linear, linear_backward
from fastfc._core._dropout import dropout, dropout_backward
from fastfc._core._plan import (MLPPlan, _adam_update, _all_finite, _labels_in_range,
                                _softmax_xent)
