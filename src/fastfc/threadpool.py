"""fastfc's thread pool seen by threadpoolctl (>= 3.2), which stays optional.

``import fastfc`` calls :func:`register` when threadpoolctl is installed; then
``threadpoolctl.threadpool_info()`` lists fastfc (``user_api="openmp"``,
``internal_api="fastfc"``) and ``threadpoolctl.threadpool_limits(n)`` (or with
``user_api="openmp"``) limits ``fastfc.set_num_threads`` and restores it afterwards.
"""
from __future__ import annotations

import ctypes
import os
from typing import Optional

# The shared library holding fastfc's C core, which every module of fastfc._core links
# (auditwheel renames it libfastfc_core-<hash>.so, which the prefix still matches).
CORE_LIBRARY_PREFIX = "libfastfc_core"
# register() adds the controller once per process, however often it is called.
_registered = False


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def openmp_library(dynlib: ctypes.CDLL) -> Optional[str]:
    """Path of the OpenMP runtime that `dynlib` calls (the one whose
    ``omp_get_max_threads`` its symbol lookup finds), or None where ``dladdr`` is missing.

    Parameters
    ----------
    dynlib : ctypes.CDLL
        fastfc's loaded C library.

    Returns
    -------
    str or None
        The runtime's file path, e.g. ``/usr/lib/x86_64-linux-gnu/libgomp.so.1``.
    """
    try:
        symbol = dynlib.omp_get_max_threads
        dladdr = ctypes.CDLL(None).dladdr
    except (AttributeError, OSError):
        return None
    info = _DlInfo()
    dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
    if not dladdr(ctypes.cast(symbol, ctypes.c_void_p), ctypes.byref(info)) \
            or not info.dli_fname:
        return None
    return os.path.realpath(os.fsdecode(info.dli_fname))


def _controller_class() -> type:
    """The threadpoolctl controller class (defined here: threadpoolctl is imported only
    when installed)."""
    from threadpoolctl import LibController  # type: ignore[import-untyped,unused-ignore]

    import fastfc

    class FastfcController(LibController):  # type: ignore[misc,unused-ignore]
        """fastfc's thread setting (``fastfc.set_num_threads``) as an OpenMP pool."""

        user_api = "openmp"
        internal_api = "fastfc"
        filename_prefixes = (CORE_LIBRARY_PREFIX,)
        check_symbols = ("fastfc_init",)   # not another library of that name

        def get_num_threads(self) -> int:
            return fastfc.get_num_threads()

        def set_num_threads(self, num_threads: int) -> None:
            fastfc.set_num_threads(num_threads)

        def get_version(self) -> str:
            return fastfc.__version__

        def set_additional_attributes(self) -> None:
            self.openmp_version = fastfc.get_config()["openmp"]
            self.openmp_library = openmp_library(self.dynlib)

    return FastfcController


def register() -> bool:
    """Register fastfc's controller with threadpoolctl when it is installed (once).

    Returns
    -------
    bool
        Whether the controller is registered: False when threadpoolctl is missing or
        older than 3.2 (no ``register``).
    """
    global _registered
    if _registered:
        return True
    try:
        import threadpoolctl  # type: ignore[import-untyped,unused-ignore]
    except ImportError:   # not installed: fastfc.set_num_threads alone
        return False
    if not hasattr(threadpoolctl, "register"):
        return False
    threadpoolctl.register(_controller_class())
    _registered = True
    return True

