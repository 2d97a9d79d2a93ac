"""Holding the pool's team between a body's parallel regions."""
from fastfc import _core


class held_team:
    """Idle workers spin between the body's parallel regions and 1 ms after it (pool.c):
    a step's or a forward's regions come tens of us apart with Python between, and a worker
    woken from sleep on the 2-vCPU VM takes 30-50 us to join (docs/tuning.md). A class, not
    a generator: a one-row prediction takes 6 us, and the generator's frames took 0.9."""
    __slots__ = ("held",)

    def __init__(self, threads: int) -> None:
        self.held = threads > 1

    def __enter__(self) -> None:
        self.held = self.held and _core._hold_team(1) > 0

    def __exit__(self, *exc) -> None:
        if self.held:
            _core._hold_team(-1)
