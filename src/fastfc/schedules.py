"""Learning-rate schedules: a factor of the optimizer's lr per epoch (counted from 0).

Plain classes (a model that holds one pickles), each with the arguments that rebuild it
(``get_config``, which save() writes); SCHEDULES names them for load().
"""
import math

from fastfc._checks import bounded, integer, positive


class Schedule:
    """Base class: ``schedule(epoch)`` is the factor of lr for that epoch."""
    name = ""

    def __call__(self, epoch: int) -> float:
        raise NotImplementedError

    def get_config(self) -> dict:
        """``{"name": ..., **arguments}``, which ``SCHEDULES[name](**arguments)`` rebuilds."""
        return {"name": self.name, **vars(self)}

    def __repr__(self) -> str:
        return f"{self.name}_schedule({', '.join(f'{k}={v}' for k, v in vars(self).items())})"


class StepSchedule(Schedule):
    """lr * gamma ** (epoch // step_size).

    Examples
    --------
    >>> from fastfc.optim import step_schedule
    >>> [step_schedule(2, gamma=0.5)(e) for e in range(4)]
    [1.0, 1.0, 0.5, 0.5]
    """
    name = "step"

    def __init__(self, step_size: int, gamma: float = 0.1):
        self.step_size = integer(step_size, "step_size", 1)
        self.gamma = positive(gamma, "gamma")

    def __call__(self, epoch: int) -> float:
        return self.gamma ** (epoch // self.step_size)


class CosineSchedule(Schedule):
    """Cosine annealing from lr to min_factor * lr over total_epochs, then min_factor."""
    name = "cosine"

    def __init__(self, total_epochs: int, min_factor: float = 0.0):
        self.total_epochs = integer(total_epochs, "total_epochs", 1)
        self.min_factor = bounded(min_factor, "min_factor", lambda x: 0 <= x <= 1,
                                  "in [0, 1]")

    def __call__(self, epoch: int) -> float:
        return self.min_factor + (1 - self.min_factor) * 0.5 * (
            1 + math.cos(math.pi * min(epoch, self.total_epochs) / self.total_epochs))


step_schedule, cosine_schedule = StepSchedule, CosineSchedule
SCHEDULES = {"step": StepSchedule, "cosine": CosineSchedule}
