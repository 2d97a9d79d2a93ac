"""How many threads a model's training step takes: the count whose steps run fastest.

A small step is many short parallel regions, and each writes what the other threads have
just read (Adam the weights every thread packed, the backward pass the gradients Adam
read). Where a core pays much to take such lines back (the 2-vCPU VM of docs/tuning.md,
"Writing what the other core has read": 7x, and changing from minute to minute), a second
thread costs more than it saves. A step's bits do not depend on its thread count, so the
count is chosen from the steps' own times: each candidate (the thread setting, halved down
to 1) for a few steps, stopping at the first one far behind, then the thread setting again
(its last window counts), then the fastest for the next `hold` steps (twice as many each
time the same count wins again), then again. Fewer threads must be faster by more than
`margin`: the larger count is timed first, and the first steps after an idle spell, or
beside NumPy's BLAS threads still spinning after its last call, run slow (a 784-128-64-10
step at batch 256 timed 0.86-1.0 ms on 2 threads in its first window, 0.55-0.65 ms after;
docs/tuning.md).
"""
import statistics
import threading
import time
from typing import Dict, List

from fastfc import _core
from fastfc.model.team import held_team


class StepThreads:
    """Per batch size: the thread count for the next step, from the times of the last."""
    window = 5    # steps timed per candidate; the first is a warm-up (threads wake)
    hold = 200    # steps on the choice before the candidates are timed again, doubled
    most_hold = 3200  # each time the same count wins, up to this (timing costs steps)
    idle = 0.005  # a step this long after the last one is a warm-up: sleeping workers wake
    behind = 1.5  # a count whose fastest step is this far behind the best so far loses now
    margin = 0.125  # fewer threads win only when this much faster than the fastest count

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_batch: Dict[int, dict] = {}
        self._last_end = 0.0

    @staticmethod
    def candidates(n: int) -> List[int]:
        """n, n // 2, ..., 1."""
        out = [n]
        while out[-1] > 1:
            out.append(out[-1] // 2)
        return out

    @classmethod
    def timing_order(cls, n: int) -> List[int]:
        """The candidates, then n again: a slow spell at the start of the first window
        (workers waking, another library's threads spinning) does not decide."""
        return cls.candidates(n) + ([n] if n > 1 else [])

    def next_count(self, batch: int) -> int:
        """The thread count for the next step of this batch size."""
        n = _core.get_num_threads()
        with self._lock:
            s = self._by_batch.get(batch)
            if s is None or s["of"] != n:   # new, or set_num_threads changed it
                s = self._by_batch[batch] = {"of": n, "todo": self.timing_order(n),
                                             "times": {}, "fresh": True, "chosen": None,
                                             "left": 0, "hold": self.hold}
            if not s["todo"]:
                if s["left"] > 0:
                    s["left"] -= 1
                    return s["chosen"]
                s["todo"], s["times"], s["fresh"] = self.timing_order(n), {}, True
            return s["todo"][0]

    def record(self, batch: int, count: int, seconds: float, after_idle: bool = False) -> None:
        """A step of this batch size took `seconds` on `count` threads (`after_idle`: it
        began after an idle spell, and is the warm-up of its count's steps again)."""
        with self._lock:
            s = self._by_batch.get(batch)
            if s is None or not s["todo"] or s["todo"][0] != count:
                return
            if after_idle or s["fresh"]:   # a window of its own, the first step its warm-up
                s["times"][count], s["fresh"] = [], False
            times = s["times"][count]
            times.append(seconds)
            # the lower median of the steps after the warm-up: a slow step moves it least
            best = min((statistics.median_low(t[1:]) for c, t in s["times"].items()
                        if c != count), default=None)
            # the thread setting again after fewer: its first step wakes the workers
            steps = times[1:] if count == s["of"] else times
            if best is not None and steps and min(steps) > self.behind * best:
                # far behind (a big step on fewer threads): it and the fewer threads after
                # it lose at once, so that timing them costs a step or two, not windows
                del s["times"][count]
                s["todo"] = []
            elif len(times) < self.window:
                return
            else:
                s["todo"].pop(0)
                s["fresh"] = True
            if not s["todo"]:   # after the warm-up step: the most threads near the fastest
                med = {c: statistics.median_low(t[1:]) for c, t in s["times"].items()}
                fastest = min(med.values())
                best = max(c for c, t in med.items() if t <= fastest * (1 + self.margin))
                same = best == s["chosen"]
                s["hold"] = min(2 * s["hold"], self.most_hold) if same else self.hold
                s["chosen"], s["left"] = best, s["hold"]

    def step(self, batch: int) -> "TimedStep":
        """Runs the body (one training step) on the chosen thread count and times it."""
        return TimedStep(self, batch)


class TimedStep:
    """StepThreads.step's context: a class, not a generator (its frames cost ~1 us of a
    step that takes 130). A step that raises is not timed."""
    __slots__ = ("threads", "batch", "count", "before", "team", "t0")

    def __init__(self, threads: StepThreads, batch: int) -> None:
        self.threads, self.batch = threads, batch

    def __enter__(self) -> None:
        self.count = self.threads.next_count(self.batch)
        self.before = _core._set_thread_cap(self.count)
        self.t0 = time.perf_counter()
        self.team = held_team(self.count)
        self.team.__enter__()

    def __exit__(self, kind, *exc) -> None:
        self.team.__exit__()
        _core._set_thread_cap(self.before)
        if kind is not None:
            return
        end, s = time.perf_counter(), self.threads
        s.record(self.batch, self.count, end - self.t0, self.t0 - s._last_end > s.idle)
        s._last_end = end
