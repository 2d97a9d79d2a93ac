"""How fastfc's objects are pickled and deep-copied: their ``__dict__``, less what a copy
must not share, with a format version that a newer, incompatible state is refused by.

Layers, optimizers and models inherit `Plain`. Class attributes name what is special:
``_not_copied`` (buffers of the last call, rebuilt by the next, and what ties an object to
its model: neither copied nor pickled),
``_unpickled`` (kept by a deep copy, dropped by pickle: weak references),
``_user_callables`` (attributes that may hold a user's function: pickle checks it can write
them, so that the error names the attribute).
"""
import copy
import pickle

import numpy as np

# Bump when a state written now could not be read by the code of today: a newer state
# with a bigger number is then refused with both versions named.
FORMAT = 1


def fastfc_version() -> str:
    import fastfc   # at call time: fastfc imports this module
    return fastfc.__version__


def check_picklable(obj: object, what: str) -> None:
    """A TypeError naming `what` when pickle cannot write `obj` (a lambda, a local
    function), instead of pickle's error naming only the function."""
    try:
        pickle.dumps(obj)
    except Exception as e:   # PicklingError, AttributeError, TypeError: all "cannot"
        raise TypeError(f"{what} = {obj!r} cannot be pickled ({e}); use a function defined "
                        f"at module level or an instance of a class") from None


def check_format(state: dict, cls: type) -> None:
    """Pops the version of `state`; a ValueError when a newer fastfc wrote it."""
    fmt, version = state.pop("_fastfc_format", (FORMAT, fastfc_version()))
    if fmt > FORMAT:
        raise ValueError(f"this pickle holds a {cls.__name__} written by fastfc {version} "
                         f"(state format {fmt}); fastfc {fastfc_version()} reads formats up "
                         f"to {FORMAT}: upgrade fastfc to load it")


def writeable(value):
    """`value` with every array in it a writeable ndarray: pickle may give arrays back
    read-only or as memory maps (joblib's mmap_mode, protocol-5 buffers), training writes
    them in place and the C plans take plain ndarrays."""
    if isinstance(value, np.ndarray):
        plain = type(value) is np.ndarray and value.flags.writeable
        return value if plain else np.array(value, subok=False)
    if isinstance(value, (list, tuple)):
        return type(value)(writeable(v) for v in value)
    if isinstance(value, dict):
        return {k: writeable(v) for k, v in value.items()}
    return value


class Plain:
    """Pickled and deep-copied as plain objects (see the module's docstring)."""
    _not_copied: tuple = ()
    _unpickled: tuple = ()
    _user_callables: tuple = ()

    def _copied_state(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in self._not_copied}

    def __getstate__(self) -> dict:
        for name in self._user_callables:
            value = getattr(self, name, None)
            if value is not None:
                check_picklable(value, f"{type(self).__name__}.{name}")
        state = {k: v for k, v in self._copied_state().items() if k not in self._unpickled}
        state["_fastfc_format"] = (FORMAT, fastfc_version())
        return state

    def __setstate__(self, state: dict) -> None:
        check_format(state, type(self))
        self.__dict__.update({k: writeable(v) for k, v in state.items()})

    def __deepcopy__(self, memo: dict) -> "Plain":
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        new.__dict__.update(copy.deepcopy(self._copied_state(), memo))
        return new
