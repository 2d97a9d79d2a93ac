# cython: language_level=3
"""The per-CPU tuning table (csrc/tune/) and the threads after a fork, seen from Python."""

from fastfc._core._config import _warn_at_import
from fastfc._core.capi cimport *


def tuning_table():
    """The tuning table derived at import: ``{name: (value, source)}``.

    Names are the environment overrides' without ``FASTFC_`` (``MC``, ``KC``, ``NC`` once per
    dtype, as ``"float32 KC"``); sources say where a value came from (``cpuid``, ``sysfs``,
    ``model: ...``, ``env``).
    """
    cdef int size = fastfc_tune_describe(NULL, 0) + 1
    cdef bytearray buf = bytearray(size)
    fastfc_tune_describe(buf, size)
    table = {}
    for line in buf[:size - 1].decode().splitlines():
        name, value, source = line.split("\t")
        table[name] = (int(value), source)
    return table


def forked_single_thread():
    """Always False: fastfc's own thread pool starts new workers in a forked child (the
    OpenMP build of old ran such a child on one thread)."""
    return bool(fastfc_forked_single_thread())


# the values echo the environment's bytes (any, maybe cut); the block sizes are read per
# dtype, so one bad FASTFC_KC gives the same line twice
for _line in dict.fromkeys(fastfc_tune_warnings().decode(errors="replace").splitlines()):
    _warn_at_import(_line)
