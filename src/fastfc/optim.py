"""Optimizers over one flat parameter buffer, updated in place.

A model keeps all its parameters in one contiguous array (each layer's weights are views
into it) and its gradients in another, so a step is one pass, not a loop over layers.
``step(params, grads)`` updates ``params``; the state is created on the first step with
``zeros_like``. ``schedule`` maps the epoch to a factor of the learning rate.
"""
import math
from typing import Callable, Optional, Sequence, Union

import numpy as np

from fastfc import _core
from fastfc._checks import bounded, flag, non_negative, real
from fastfc._state import Plain
from fastfc.schedules import (SCHEDULES, CosineSchedule, Schedule, StepSchedule,  # noqa: F401
                              cosine_schedule as cosine_schedule,
                              step_schedule as step_schedule)

# epoch (counted from 0) -> factor of the learning rate
_ScheduleFn = Optional[Callable[[int], float]]

def saved_schedule(schedule: _ScheduleFn) -> bool:
    """Whether save() can rebuild `schedule`: None, or one of SCHEDULES.

    Parameters
    ----------
    schedule : callable or None
        An optimizer's learning-rate schedule.

    Returns
    -------
    bool
        True for None and the schedules of ``fastfc.schedules.SCHEDULES``; False for any
        other callable (which save() leaves out).
    """
    return schedule is None or type(schedule) in SCHEDULES.values()


def _eps_hides_flush(eps: float, dtype, scale: float = 1.0) -> bool:
    """True when eps (the denominator's floor) is at least the root of the dtype's smallest
    normal number, times `scale` (Adam's largest bias correction), over its precision: a
    squared gradient flushed to zero then moves the update by less than its rounding."""
    fi = np.finfo(dtype)
    return eps * float(fi.eps) >= math.sqrt(float(fi.tiny)) * scale


class Optimizer(Plain):
    """Base class: ``step(params, grads)`` updates the flat ``params`` in place.

    Optimizers pickle and deep-copy as plain objects (their state, step count and lr
    included); a deep copy of an optimizer that a model owns still belongs to that model
    (its state fits that model's parameters), a pickled one to none.

    Parameters
    ----------
    lr : float > 0
        The learning rate (the base one, which `schedule` scales).
    weight_decay : float >= 0
        L2 regularization: ``weight_decay * params`` added to the gradient.
    schedule : callable, optional
        ``schedule(epoch)`` is the factor of lr for that epoch (counted from 0), e.g.
        ``cosine_schedule(10)``; save() keeps the ones of ``fastfc.schedules.SCHEDULES``.
    """
    _unpickled = ("_owner",)
    _user_callables = ("schedule",)

    def __init__(self, lr: float, weight_decay: float = 0.0,
                 schedule: _ScheduleFn = None) -> None:
        self.base_lr = self.lr = bounded(lr, "lr", lambda x: 0 < x < math.inf, "> 0")
        self.weight_decay = non_negative(weight_decay, "weight_decay")
        if schedule is not None and not callable(schedule):
            raise TypeError(f"schedule must map the epoch to a factor of lr (e.g. "
                            f"cosine_schedule(10)), got {schedule!r}")
        self.schedule = schedule
        self.t = 0
        self.state = None

    def start_epoch(self, epoch):
        """Apply the learning-rate schedule for `epoch` (counted from 0)."""
        if self.schedule is not None:
            self.lr = self.base_lr * non_negative(self.schedule(epoch), f"schedule({epoch})")

    def step(self, params, grads):
        """One update of the float array `params` in place from `grads` (same shape and
        dtype; a model passes its flat parameter and gradient buffers)."""
        if not isinstance(params, np.ndarray) or not isinstance(grads, np.ndarray) or \
                params.dtype.kind != "f":
            raise TypeError(f"step(params, grads) takes two float ndarrays, got "
                            f"{type(params).__name__} and {type(grads).__name__}")
        if grads.shape != params.shape or grads.dtype != params.dtype:
            raise ValueError(f"grads must match params: got {grads.dtype}{grads.shape} for "
                             f"{params.dtype}{params.shape}")
        if not (params.flags.c_contiguous and grads.flags.c_contiguous and
                params.flags.writeable):
            raise ValueError("step(params, grads) updates params in place: both must be "
                             "C-contiguous and params writable")
        largest = float(np.finfo(params.dtype).max)
        if self.lr > largest:   # Inf in the dtype: every weight it moves would be Inf
            raise ValueError(f"lr = {self.lr!r} overflows the model's {params.dtype} "
                             f"(largest {largest:.4g})")
        if self.state is None:
            self.state = self.init_state(params)
        # the states of this module's init_state are arrays like params (a subclass's may
        # be anything); checked before the step counts: a refused call changes nothing
        ours = getattr(type(self).init_state, "__module__", None) == __name__
        for s in self.state if ours else ():
            if s.shape != params.shape or s.dtype != params.dtype:
                raise ValueError(f"params ({params.dtype}{params.shape}) do not match this "
                                 f"optimizer's state ({s.dtype}{s.shape}): it steps the "
                                 f"parameters it first stepped; make another for others")
        self.t += 1
        self.update(params, grads, *self.state)

    def init_state(self, params):
        return ()

    def flushes_subnormals(self, dtype) -> bool:
        """Whether a step of a model of `dtype` may treat subnormal numbers as zero (a
        step's arithmetic on them is ~100x slower): yes unless an eps too small to hide a
        squared gradient flushed to zero would turn a tiny gradient into a huge step."""
        eps = self._hyperparameters().get("eps")
        return eps is None or _eps_hides_flush(eps, dtype, self._bias_correction())

    def _bias_correction(self) -> float:
        return 1.0

    def _hyperparameters(self):
        return {}

    def get_config(self):
        """The constructor's arguments (the schedule's where saved_schedule holds)."""
        sched = (self.schedule.get_config() if self.schedule is not None
                 and saved_schedule(self.schedule) else None)
        return {"lr": self.base_lr, "weight_decay": self.weight_decay, "schedule": sched,
                **self._hyperparameters()}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        sched = config.pop("schedule", None)
        if sched is not None:
            sched = dict(sched)
            sched = SCHEDULES[sched.pop("name")](**sched)
        return cls(schedule=sched, **config)

    def _l2(self, params, grads):
        """grads + weight_decay * params (L2 regularization), without touching grads."""
        if self.weight_decay:
            return grads + self.weight_decay * params
        return grads

    def __repr__(self):
        return f"{type(self).__name__}(lr={self.lr})"


class SGD(Optimizer):
    """SGD with optional (Nesterov) momentum, PyTorch's formulation.

    Parameters
    ----------
    lr : float > 0, default 0.01
        The learning rate (the base one, which `schedule` scales).
    momentum : float >= 0
        The decay of the velocity buffer (0: plain SGD).
    nesterov : bool
        Nesterov momentum (needs momentum > 0).
    weight_decay : float >= 0
        L2 regularization: ``weight_decay * params`` added to the gradient.
    schedule : callable, optional
        ``schedule(epoch)`` is the factor of lr for that epoch (counted from 0), e.g.
        ``cosine_schedule(10)``; save() keeps the ones of ``fastfc.schedules.SCHEDULES``.
    """

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, schedule: _ScheduleFn = None) -> None:
        super().__init__(lr, weight_decay, schedule)
        momentum, nesterov = non_negative(momentum, "momentum"), flag(nesterov, "nesterov")
        if nesterov and momentum <= 0:
            raise ValueError("nesterov needs momentum > 0")
        self.momentum, self.nesterov = momentum, nesterov

    def _hyperparameters(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov}

    def init_state(self, params):
        return (np.zeros_like(params),) if self.momentum else ()

    def update(self, params, grads, buf=None):
        g = self._l2(params, grads)
        if self.momentum:
            if self.t == 1:
                buf[...] = g
            else:
                buf *= self.momentum
                buf += g
            g = g + self.momentum * buf if self.nesterov else buf
        params -= self.lr * g


class AdaGrad(Optimizer):
    """AdaGrad (Duchi et al.): lr divided by the root of the summed squared gradients.

    Parameters
    ----------
    lr : float > 0, default 0.01
        The learning rate (the base one, which `schedule` scales).
    eps : float >= 0
        Added to the root in the denominator.
    weight_decay : float >= 0
        L2 regularization: ``weight_decay * params`` added to the gradient.
    schedule : callable, optional
        ``schedule(epoch)`` is the factor of lr for that epoch (counted from 0), e.g.
        ``cosine_schedule(10)``; save() keeps the ones of ``fastfc.schedules.SCHEDULES``.
    """

    def __init__(self, lr: float = 0.01, eps: float = 1e-10, weight_decay: float = 0.0,
                 schedule: _ScheduleFn = None) -> None:
        super().__init__(lr, weight_decay, schedule)
        self.eps = non_negative(eps, "eps")

    def _hyperparameters(self):
        return {"eps": self.eps}

    def init_state(self, params):
        return (np.zeros_like(params),)

    def update(self, params, grads, sq):
        g = self._l2(params, grads)
        sq += g * g
        params -= self.lr * g / (np.sqrt(sq) + self.eps)


class RMSProp(Optimizer):
    """RMSProp (Hinton): lr divided by the root of a running mean of squared gradients.

    Parameters
    ----------
    lr : float > 0, default 0.01
        The learning rate (the base one, which `schedule` scales).
    alpha : float in [0, 1)
        The decay of the running mean.
    eps : float >= 0
        Added to the root in the denominator.
    weight_decay : float >= 0
        L2 regularization: ``weight_decay * params`` added to the gradient.
    schedule : callable, optional
        ``schedule(epoch)`` is the factor of lr for that epoch (counted from 0), e.g.
        ``cosine_schedule(10)``; save() keeps the ones of ``fastfc.schedules.SCHEDULES``.
    """

    def __init__(self, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, schedule: _ScheduleFn = None) -> None:
        super().__init__(lr, weight_decay, schedule)
        self.alpha = bounded(alpha, "alpha", lambda x: 0 <= x < 1, "in [0, 1)")
        self.eps = non_negative(eps, "eps")

    def _hyperparameters(self):
        return {"alpha": self.alpha, "eps": self.eps}

    def init_state(self, params):
        return (np.zeros_like(params),)

    def update(self, params, grads, sq):
        g = self._l2(params, grads)
        sq *= self.alpha
        sq += (1 - self.alpha) * g * g
        params -= self.lr * g / (np.sqrt(sq) + self.eps)


class Adam(Optimizer):
    """Adam (Kingma & Ba), bias-corrected; weight_decay is L2 added to the gradient.
    One fused C pass over all parameters per step. A moment that falls under the dtype's
    smallest normal number (``np.finfo(dtype).tiny``) is stored as 0: arithmetic on
    subnormals is ~100x slower, and their share of an update is below the parameter's
    rounding. Not so with an eps under ``sqrt(tiny / (1 - beta2)) / finfo(dtype).eps``
    (2.9e-11 in float32; eps=0, say): such a step runs in NumPy in IEEE arithmetic, as
    PyTorch's, and a tiny gradient still moves a weight by about lr.

    Parameters
    ----------
    lr : float > 0, default 1e-3
        The learning rate (the base one, which `schedule` scales).
    betas : (float, float) in [0, 1)
        The decays of the running means of the gradient and of its square.
    eps : float >= 0
        Added to the root in the denominator.
    weight_decay : float >= 0
        L2 regularization: ``weight_decay * params`` added to the gradient.
    schedule : callable, optional
        ``schedule(epoch)`` is the factor of lr for that epoch (counted from 0), e.g.
        ``cosine_schedule(10)``; save() keeps the ones of ``fastfc.schedules.SCHEDULES``.
    """
    decoupled = False

    def __init__(self, lr: float = 1e-3, betas: Sequence[float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0,
                 schedule: _ScheduleFn = None) -> None:
        super().__init__(lr, weight_decay, schedule)
        try:
            beta1, beta2 = betas
        except (TypeError, ValueError):
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}") from None
        self.beta1, self.beta2 = real(beta1, "betas"), real(beta2, "betas")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        self.eps = non_negative(eps, "eps")

    def _hyperparameters(self):
        return {"betas": [self.beta1, self.beta2], "eps": self.eps}

    def init_state(self, params):
        return np.zeros_like(params), np.zeros_like(params)

    def _bias_correction(self):
        return 1 / math.sqrt(1 - self.beta2)   # of the root of v, at the first step

    def update(self, params, grads, m, v):
        if self.flushes_subnormals(params.dtype):
            _core._adam_update(params, grads, m, v, self.lr, self.beta1, self.beta2,
                               self.eps, self.weight_decay, self.decoupled, self.t)
            return
        # the C pass stores a moment under the smallest normal number as 0: with this eps,
        # the same operations in NumPy, in IEEE arithmetic (a tiny eps: rare, and slower)
        g = grads if self.decoupled else grads + self.weight_decay * params
        m *= self.beta1
        m += (1 - self.beta1) * g
        v *= self.beta2
        v += (1 - self.beta2) * g * g
        if self.decoupled:
            params *= 1 - self.lr * self.weight_decay
        step_size = self.lr / (1 - self.beta1 ** self.t)
        rbc2 = 1 / math.sqrt(1 - self.beta2 ** self.t)
        params -= step_size * m / (np.sqrt(v) * rbc2 + self.eps)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr * wd.

    Parameters
    ----------
    lr : float > 0, default 1e-3
        The learning rate (the base one, which `schedule` scales).
    betas : (float, float) in [0, 1)
        The decays of the running means of the gradient and of its square.
    eps : float >= 0
        Added to the root in the denominator.
    weight_decay : float >= 0
        Decoupled decay: ``params *= 1 - lr * weight_decay`` each step, apart from the
        gradient.
    schedule : callable, optional
        ``schedule(epoch)`` is the factor of lr for that epoch (counted from 0), e.g.
        ``cosine_schedule(10)``; save() keeps the ones of ``fastfc.schedules.SCHEDULES``.
    """
    decoupled = True

    def __init__(self, lr: float = 1e-3, betas: Sequence[float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01,
                 schedule: _ScheduleFn = None) -> None:
        super().__init__(lr, betas, eps, weight_decay, schedule)


OPTIMIZERS = {"sgd": SGD, "adagrad": AdaGrad, "rmsprop": RMSProp, "adam": Adam, "adamw": AdamW}


def get(optimizer: Union[str, Optimizer]) -> Optimizer:
    """An optimizer from a name in OPTIMIZERS (made with its defaults) or an Optimizer.

    Parameters
    ----------
    optimizer : str or Optimizer
        A name (case-insensitive, e.g. ``"adam"``) or an instance, returned as it is.

    Returns
    -------
    Optimizer

    Examples
    --------
    >>> from fastfc import optim
    >>> optim.get("SGD")
    SGD(lr=0.01)
    """
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in OPTIMIZERS:
        return OPTIMIZERS[optimizer.lower()]()
    raise ValueError(f"unknown optimizer {optimizer!r}; valid: {', '.join(OPTIMIZERS)} or an "
                     f"Optimizer instance")
