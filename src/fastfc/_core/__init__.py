"""The compiled boundary: Cython modules over one shared C core library (libfastfc_core),
so the process has one kernel table and one thread team whichever module calls it.

_config  ISA path, threads, configuration      _args     argument checks (cimported)
_linear  gemm, linear, linear_backward         _dropout  dropout, dropout_backward
_plan    the training-step kernels and MLPPlan      _tuning   the per-CPU tuning table, fork
"""

# Threads are fastfc's own pool (csrc/gemm/pool.c): idle workers spin POOL_SPIN_NS of the
# tuning table (through a training step or a prediction and 1 ms after), then sleep, and a
# region never waits for a sleeping one (docs/tuning.md).
# libgomp is still linked (omp_get_max_threads, OMP_THREAD_LIMIT) but runs no threads.
WAIT_POLICY = ("fastfc's pool: idle workers spin POOL_SPIN_NS (through a training step or "
               "a prediction and 1 ms after), then sleep")
from fastfc._core import _config  # noqa: F401,E402 - loads libfastfc_core
from fastfc._core._config import (CPU_ISA, EMULATED_ISA, ISA, ISA_NAMES, _set_thread_cap,
                                  _hold_team, _flush_subnormals, _row_owner_cuts,
                                  _wide_regions, fma_peak_gflops, get_config, get_num_threads,
                                  philox4x32_10, set_num_threads)
from fastfc._core._tuning import forked_single_thread, tuning_table
from fastfc._core._args import ACTIVATIONS
from fastfc._core._linear import gemm, linear, linear_backward, pack_panels, panel_width
from fastfc._core._dropout import dropout, dropout_backward
from fastfc._core._plan import (MLPPlan, _act_forward, _adam_update, _all_finite,
                                _labels_in_range, _softmax_xent)
