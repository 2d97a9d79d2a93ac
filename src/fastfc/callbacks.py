"""The callbacks of ``Sequential.fit`` (``from fastfc.callbacks import EarlyStopping``);
they live in ``fastfc.model.callbacks``."""
from fastfc.model.callbacks import (Callback, CallbackList, EarlyStopping, History,
                                    ModelCheckpoint, NonFiniteGuard, ProgbarLogger)

__all__ = ["Callback", "CallbackList", "EarlyStopping", "History", "ModelCheckpoint",
           "NonFiniteGuard", "ProgbarLogger"]
