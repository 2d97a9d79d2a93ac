# cython: language_level=3, cdivision=True
"""The library's settings: the ISA path chosen at import, the thread count, the configuration."""
import os
import sys
import warnings
from types import MappingProxyType

import numpy as np
cimport numpy as cnp
from libc.stdint cimport uint32_t

from fastfc._core.capi cimport *

cnp.import_array()

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int fastfc_openmp_version(void) { return _OPENMP; }
    #else  /* a serial build (FASTFC_OPENMP=OFF or a compiler without OpenMP) */
    static int fastfc_openmp_version(void) { return 0; }
    static int omp_get_max_threads(void) { return 1; }
    #endif
    """
    int fastfc_openmp_version()
    int omp_get_max_threads() nogil

ISA_NAMES = ("generic", "avx2", "avx512")
# Test-only: the AVX-512 kernels' source compiled for AVX2 (needs an AVX2 CPU and a build
# with the CMake option FASTFC_TEST_KERNELS, on by default and off in release wheels).
EMULATED_ISA = "avx512-emulated"
TEST_KERNELS = bool(fastfc_test_kernels_built())


def _warn_at_import(str message):
    """A RuntimeWarning that names the caller's `import fastfc`: the frames between are
    importlib's and fastfc's own."""
    cdef int level = 1
    f = sys._getframe(0)
    while f is not None and f.f_globals.get("__name__", "").startswith(
            ("importlib", "_frozen_importlib", "fastfc")):
        f, level = f.f_back, level + 1
    warnings.warn(message, RuntimeWarning, stacklevel=level)


def _init_isa():
    wanted = os.environ.get("FASTFC_ISA", "").strip().lower()
    best = fastfc_cpu_best_isa()
    if wanted == EMULATED_ISA and not TEST_KERNELS:
        _warn_at_import(f"FASTFC_ISA={wanted!r}: this fastfc is built without the test-only "
                        f"emulated kernels (FASTFC_TEST_KERNELS=OFF, as release wheels are); "
                        f"using {ISA_NAMES[best]!r}")
        return ISA_NAMES[fastfc_init(best)]
    if wanted == EMULATED_ISA and best >= ISA_NAMES.index("avx2"):
        fastfc_init(3)
        return EMULATED_ISA
    if not wanted:
        return ISA_NAMES[fastfc_init(best)]
    if wanted not in ISA_NAMES:
        _warn_at_import(f"FASTFC_ISA={wanted!r} is not one of {ISA_NAMES + (EMULATED_ISA,)}; "
                        f"using {ISA_NAMES[best]!r}")
        return ISA_NAMES[fastfc_init(best)]
    if ISA_NAMES.index(wanted) > best:
        _warn_at_import(f"FASTFC_ISA={wanted!r} is not supported by this CPU; using "
                        f"{ISA_NAMES[best]!r}")
    return ISA_NAMES[fastfc_init(ISA_NAMES.index(wanted))]


ISA = _init_isa()
CPU_ISA = ISA_NAMES[fastfc_cpu_best_isa()]


def _default_threads():
    text = os.environ.get("OMP_NUM_THREADS", "").strip()
    try:
        n = int(text.split(",")[0])
    except ValueError:
        n = 0
    if n > 2**31 - 1:  # set_num_threads' maximum (a call runs at most 4 per processor)
        _warn_at_import(f"OMP_NUM_THREADS={text!r} is more than 2**31 - 1 threads; "
                        f"using {2**31 - 1}")
        return 2**31 - 1
    if n >= 1:
        return n
    fallback = max(1, omp_get_max_threads())
    if text:
        _warn_at_import(f"OMP_NUM_THREADS={text!r} is not a thread count >= 1; "
                        f"using {fallback}")
    return fallback


# The only module state: a plain int read once per call (set_num_threads is a setting,
# like OMP_NUM_THREADS; every C call receives its value as an argument).
cdef int _nthreads = _default_threads()


def set_num_threads(n):
    """Set the number of threads fastfc's kernels may use (its own pool, not OpenMP's).

    A setting like ``OMP_NUM_THREADS`` (its default; else all cores): each call reads it
    and uses at most four threads per processor, fewer for small products. A model's
    training step takes the count among n, n // 2, ..., 1 whose steps ran fastest, timed on
    the steps themselves (any count gives the same bits).
    ``threadpoolctl.threadpool_limits`` changes it too (see ``fastfc.threadpool``).

    Parameters
    ----------
    n : int
        Number of threads, in ``[1, 2**31 - 1]``.

    Raises
    ------
    TypeError
        `n` is not an int (bool and float included).
    ValueError
        `n` is out of range.

    Examples
    --------
    >>> import fastfc
    >>> fastfc.set_num_threads(1)
    >>> fastfc.get_num_threads()
    1
    """
    global _nthreads
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"set_num_threads: n must be an int, got {type(n).__name__}")
    if not 1 <= n <= 2**31 - 1:
        raise ValueError(f"set_num_threads: n must be in [1, 2**31 - 1], got {n}")
    _nthreads = int(n)


def get_num_threads():
    """Number of threads fastfc kernels may use.

    Returns
    -------
    int
        The value of the last ``set_num_threads`` (or its default).

    Examples
    --------
    >>> import fastfc
    >>> fastfc.get_num_threads() >= 1
    True
    """
    return _nthreads


def get_config():
    """The build and run-time configuration (what ``show_config`` prints).

    Returns
    -------
    dict
        ``isa`` (the kernel path in use), ``cpu_isa``, ``isas_supported``,
        ``isas_testable``, ``threads``, ``openmp`` (the OpenMP version the core was built
        with), ``blocks_float32`` / ``blocks_float64`` (block sizes MR, NR, MC, KC, NC),
        ``tuning`` (the per-CPU table, name -> (value, source)), ``wait_policy`` (how
        idle threads wait) and ``forked_single_thread`` (always False: fastfc's thread
        pool starts anew in a forked child).

    Examples
    --------
    >>> import fastfc
    >>> fastfc.get_config()["isa"] in ("generic", "avx2", "avx512", "avx512-emulated")
    True
    """
    import fastfc._core
    from fastfc._core import _tuning
    cdef int s[5]
    cdef int d[5]
    fastfc_block_sizes(4, s)
    fastfc_block_sizes(8, d)
    names = ("MR", "NR", "MC", "KC", "NC")
    return {
        "isa": ISA,
        "cpu_isa": CPU_ISA,
        "isas_supported": ISA_NAMES[:ISA_NAMES.index(CPU_ISA) + 1],
        "isas_testable": ISA_NAMES[:ISA_NAMES.index(CPU_ISA) + 1] + (
            (EMULATED_ISA,) if CPU_ISA != "generic" and TEST_KERNELS else ()),
        "threads": _nthreads,
        "openmp": f"OpenMP {fastfc_openmp_version()}" if fastfc_openmp_version() else
                  "none (a serial build: one thread)",
        "blocks_float32": dict(zip(names, [s[i] for i in range(5)])),
        "blocks_float64": dict(zip(names, [d[i] for i in range(5)])),
        "forked_single_thread": bool(fastfc_forked_single_thread()),
        "tuning": _tuning.tuning_table(),
        "wait_policy": fastfc._core.WAIT_POLICY,
    }


def _wide_regions():
    """Parallel regions that got more than one thread, opened by this Python thread: lets
    the tests see that a team ran."""
    return fastfc_wide_regions()


def _row_owner_cuts(p, int nt):
    """Where Adam on nt threads cuts the flat buffer p (an ndarray): the list of nt + 1 cuts
    following the rows of the last K-split training forward, or None for an even split."""
    cdef cnp.ndarray a = p
    cdef int64_t cuts[FASTFC_ROW_OWNERS_MAX_SEATS + 1]
    if nt < 2 or nt > FASTFC_ROW_OWNERS_MAX_SEATS:
        return None
    if not fastfc_row_owner_cuts(cnp.PyArray_DATA(a), a.size, a.itemsize, nt, cuts):
        return None
    return [cuts[i] for i in range(nt + 1)]


def _set_thread_cap(int cap):
    """At most `cap` threads for the calls this Python thread makes (0: no cap); returns
    the cap before. Leaves set_num_threads alone: a model's step uses it for its calls."""
    return fastfc_set_thread_cap(cap)


def _hold_team(int delta):
    """Adds delta to the holds on fastfc's team (a model's step and its predict hold it:
    workers spin between their regions, not sleep); returns the holds now."""
    return fastfc_hold_team(delta)


def _flush_subnormals(int on):
    """1: this Python thread's fastfc calls (and their workers) flush subnormal numbers to
    zero, 0: IEEE; returns the mode before. A model's training step flushes."""
    return fastfc_flush_subnormals(on)


def fma_peak_gflops(dtype=np.float32):
    """Measured single-thread FMA peak of the path in use, in GFLOP/s."""
    cdef int size = np.dtype(dtype).itemsize
    cdef double r
    with nogil:
        r = fastfc_fma_peak_gflops(size)
    return r


def philox4x32_10(ctr, key):
    """One Philox4x32-10 block: 4 counter words and 2 key words -> 4 words."""
    cdef uint32_t c[4]
    cdef uint32_t k[2]
    cdef uint32_t o[4]
    for i in range(4):
        c[i] = int(ctr[i])
    for i in range(2):
        k[i] = int(key[i])
    fastfc_philox4x32_10(c, k, o)
    return tuple(int(o[i]) for i in range(4))



cdef int num_threads() noexcept nogil:
    return _nthreads
