"""The model layer, one job per module:

- ``sequential.py``: Sequential, the composition (building, a step, predict/evaluate,
  summary, config);
- ``params.py``: the flat parameter and gradient buffers, snapshots;
- ``plan.py``: the C fast path (MLPPlan per batch size, training and inference) and its
  caches;
- ``frozen.py``: freeze() and FrozenModel, the inference form (BatchNorm folded, weights
  packed, fp32 or bf16);
- ``trainer.py``: the fit loop (validation split, shuffling, epochs, batches, callbacks);
- ``step_threads.py``: a training step's thread count, from the times of its steps;
- ``callbacks.py``: Callback and the built-in ones (History, EarlyStopping,
  ProgbarLogger, ModelCheckpoint, NonFiniteGuard);
- ``io.py``: save and load (.npz + JSON);
- ``inputs.py``: the checks of the arrays a model is given.
"""
from fastfc.model.callbacks import History
from fastfc.model.frozen import FrozenModel
from fastfc.model.io import load
from fastfc.model.sequential import Sequential

__all__ = ["Sequential", "FrozenModel", "History", "load"]
