"""A model's training step takes the thread count whose steps ran fastest
(fastfc/model/step_threads.py): the choice from the times, the cap on this thread's calls
only, and the same bits whichever count was chosen."""
import threading

import numpy as np
import pytest

import fastfc
from fastfc import _core
from fastfc.model.step_threads import StepThreads

THREADED = not fastfc.get_config()["openmp"].startswith("none")


def _team_ran(call) -> bool:
    """Whether `call` opened a region with more than one thread (back to back: the first
    call may run alone while the team wakes)."""
    before = _core._wide_regions()
    for _ in range(50):
        call()
        if _core._wide_regions() > before:
            return True
    return False


def _linear_call(rng):
    x = rng.standard_normal((256, 512)).astype(np.float32)
    w = rng.standard_normal((512, 512)).astype(np.float32)
    return lambda: fastfc.linear(x, w)


@pytest.mark.parametrize("n,want", [(1, [1]), (2, [2, 1]), (3, [3, 1]), (8, [8, 4, 2, 1]),
                                    (12, [12, 6, 3, 1])])
def test_candidates_halve_down_to_one(n, want):
    assert StepThreads.candidates(n) == want


def _run(st, batch, times):
    """Steps of `batch` whose time is times[count]; the counts used, in order."""
    used = []
    for _ in range(st.window * 4 + st.hold + 3):
        c = st.next_count(batch)
        st.record(batch, c, times[c])
        used.append(c)
    return used


@pytest.mark.parametrize("fastest", [4, 2, 1])
def test_the_fastest_count_is_held_then_timed_again(keep_threads, fastest):
    fastfc.set_num_threads(4)
    st = StepThreads()
    times = {c: (1.0 if c == fastest else 2.0 + c) for c in (4, 2, 1)}
    used = _run(st, 32, times)
    w = st.window
    # each candidate for a window, until one is far behind: one step of it, none after it;
    # then the thread setting again (here far behind 1 thread)
    timing = {4: [4] * w + [2], 2: [4] * w + [2] * w + [1],
              1: [4] * w + [2] * w + [1] * w + [4, 4]}   # its warm-up, then behind
    t = len(timing[fastest])
    assert used[:t] == timing[fastest]
    assert used[t:t + st.hold] == [fastest] * st.hold
    assert used[t + st.hold:t + st.hold + 3] == [4, 4, 4]   # timed again


def _holds(st, batch, times_of, rounds):
    """(count chosen, steps it is held) for `rounds` rounds of timing the candidates, the
    steps of round r taking times_of(r)[count]."""
    out = []
    for r in range(rounds):
        times = times_of(r)
        while True:   # timing steps until a choice
            c = st.next_count(batch)
            st.record(batch, c, times[c])
            s = st._by_batch[batch]
            if not s["todo"]:
                break
        held = 0
        while s["left"] > 0:
            assert st.next_count(batch) == s["chosen"]
            held += 1
        out.append((s["chosen"], held))
    return out


def test_a_count_that_keeps_winning_is_held_longer(keep_threads):
    fastfc.set_num_threads(2)
    st = StepThreads()
    two_wins = {2: 1.0, 1: 2.0}
    one_wins = {2: 2.0, 1: 1.0}
    got = _holds(st, 32, lambda r: one_wins if r == 6 else two_wins, 9)
    h = st.hold
    assert got == [(2, h), (2, 2 * h), (2, 4 * h), (2, 8 * h), (2, 16 * h), (2, 16 * h),
                   (1, h), (2, h), (2, 2 * h)]
    assert 16 * h == st.most_hold


def test_a_count_far_behind_costs_one_step(keep_threads):
    fastfc.set_num_threads(16)
    st = StepThreads()
    for _ in range(st.window):
        assert st.next_count(9) == 16
        st.record(9, 16, 1.0)
    assert st.next_count(9) == 8
    st.record(9, 8, 1.6)                      # behind by more than 1.5x: 4, 2, 1 not timed
    assert [st.next_count(9) for _ in range(st.hold)] == [16] * st.hold
    st2 = StepThreads()
    for c, t in ((16, 1.0), (8, 1.4)):        # close: timed to the end of its window
        for _ in range(st2.window):
            assert st2.next_count(9) == c
            st2.record(9, c, t)
    assert st2.next_count(9) == 4


@pytest.mark.parametrize("two,chosen", [(1.0, 2), (1.1, 2), (1.2, 1)])
def test_the_warm_up_step_does_not_count_and_fewer_threads_win_by_a_margin(keep_threads,
                                                                           two, chosen):
    fastfc.set_num_threads(2)
    st = StepThreads()
    for c, first, rest in ((2, 9.0, two), (1, 1.0, 1.0), (2, 9.0, two)):   # a slow first step
        for i in range(st.window):
            assert st.next_count(7) == c
            st.record(7, c, first if i == 0 else rest)
    assert st.next_count(7) == chosen   # 1 thread must be more than `margin` faster
    st2 = StepThreads()
    for c, rest in ((2, 1.0), (1, 3.0)):
        for i in range(st2.window):
            st2.next_count(7)
            st2.record(7, c, 100.0 if i == 0 else rest)   # only the warm-up is slow
    assert st2.next_count(7) == 2


def test_a_step_after_an_idle_spell_starts_its_count_again(keep_threads):
    fastfc.set_num_threads(2)
    st = StepThreads()
    times = [1.0, 1.0, 1.0, 1.0]                 # 2 threads: 4 of 5 steps taken, then idle
    for t in times:
        st.record(5, st.next_count(5), t)
    st.record(5, st.next_count(5), 50.0, after_idle=True)   # the warm-up again
    for _ in range(st.window - 1):
        assert st.next_count(5) == 2
        st.record(5, 2, 9.0)
    for i in range(st.window):
        assert st.next_count(5) == 1
        st.record(5, 1, 5.0)
    for _ in range(2):             # timed again: its warm-up, then 9.0, far behind
        assert st.next_count(5) == 2
        st.record(5, 2, 9.0)
    assert st.next_count(5) == 1   # 2 threads' 9.0 after the spell, not the 1.0 before


def test_the_thread_setting_is_timed_again_after_the_fewer_counts(keep_threads):
    """A slow spell at the start (NumPy's BLAS threads spinning after its last call) makes
    the first window of the most threads slow: its last window decides."""
    fastfc.set_num_threads(2)
    st = StepThreads()
    assert StepThreads.timing_order(2) == [2, 1, 2] and StepThreads.timing_order(1) == [1]
    for c, t in ((2, 1.5), (1, 1.2), (2, 1.0)):
        for _ in range(st.window):
            assert st.next_count(3) == c
            st.record(3, c, t)
    assert st._by_batch[3]["chosen"] == 2 and st.next_count(3) == 2


def test_each_batch_size_and_thread_setting_is_timed_apart(keep_threads):
    fastfc.set_num_threads(2)
    st = StepThreads()
    _run(st, 32, {2: 5.0, 1: 1.0})
    assert st._by_batch[32]["chosen"] == 1
    assert st.next_count(64) == 2         # a batch size not timed yet starts with all
    fastfc.set_num_threads(4)
    assert st.next_count(32) == 4         # a new setting: timed again from the top
    st.record(32, 2, 1.0)                 # a time for a count not being timed is dropped
    assert st.next_count(32) == 4


def test_the_cap_holds_in_the_step_on_this_thread_only(rng, keep_threads):
    call = _linear_call(rng)
    fastfc.set_num_threads(2)
    st = StepThreads()
    st.next_count = lambda batch: 1
    seen = {}
    with st.step(8):
        assert not _team_ran(call)       # capped at 1
        t = threading.Thread(target=lambda: seen.update(other=_team_ran(call)))
        t.start()
        t.join()
    assert seen["other"] == THREADED     # another Python thread is not capped
    assert _team_ran(call) == THREADED   # nor this one after the step
    assert _core._set_thread_cap(0) == 0


def test_a_failed_step_restores_the_cap_and_is_not_timed(keep_threads):
    fastfc.set_num_threads(2)
    st = StepThreads()
    outer = _core._set_thread_cap(3)
    try:
        with pytest.raises(RuntimeError):
            with st.step(8):
                assert _core._hold_team(0) == 1   # a step on 2 threads holds the team
                raise RuntimeError("step failed")
        assert _core._set_thread_cap(3) == 3   # the cap from before the step
    finally:
        _core._set_thread_cap(outer)
    assert st._by_batch[8]["times"] == {}
    assert _core._hold_team(0) == 0   # and lets it go


def test_a_step_on_one_thread_does_not_hold_the_team(keep_threads):
    fastfc.set_num_threads(1)
    with StepThreads().step(8):
        assert _core._hold_team(0) == 0
    assert _core._hold_team(1) == 1 and _core._hold_team(1) == 2
    assert _core._hold_team(-1) == 1 and _core._hold_team(-1) == 0


def _fit(threads, chosen, X, y):
    fastfc.set_num_threads(threads)
    model = fastfc.Sequential([fastfc.Dense(20, 33, activation="relu"), fastfc.Dropout(0.3),
                               fastfc.Dense(33, 5)], optimizer=fastfc.optim.Adam(lr=1e-2),
                              seed=4, dtype=X.dtype)
    model._step_threads.next_count = lambda batch: chosen
    model.fit(X, y, epochs=2, batch_size=32, verbose=0)
    model.train_on_batch(X[:17], y[:17])
    return model


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_same_weights_whichever_count_the_step_takes(rng, keep_threads, dtype):
    X = rng.standard_normal((300, 20)).astype(dtype)
    y = rng.integers(0, 5, 300)
    ref = _fit(1, 1, X, y)
    for threads, chosen in ((2, 2), (2, 1), (3, 3), (3, 1)):
        got = _fit(threads, chosen, X, y)
        assert np.array_equal(got._theta, ref._theta), (threads, chosen)
        assert got._theta.dtype == dtype


def test_a_model_times_its_steps_and_pickles_without_them(keep_threads):
    import pickle
    fastfc.set_num_threads(2)
    model = fastfc.Sequential([fastfc.Dense(6, 4, activation="relu"), fastfc.Dense(4, 3)],
                              seed=1)
    x, y = np.ones((16, 6), np.float32), np.arange(16) % 3
    for _ in range(3):
        model.train_on_batch(x, y)
    assert model._step_threads._by_batch[16]["times"][2]   # timed on 2 threads first
    back = pickle.loads(pickle.dumps(model))
    assert back._step_threads._by_batch == {}   # measured on the machine that runs it
    assert np.array_equal(back._theta, model._theta)


@pytest.mark.filterwarnings("ignore:Stochastic Optimizer")
def test_the_scikit_learn_estimators_time_their_steps(keep_threads):
    pytest.importorskip("sklearn")
    from fastfc.sklearn import MLPClassifier
    fastfc.set_num_threads(2)
    X = np.random.default_rng(0).standard_normal((100, 8)).astype(np.float32)
    y = np.arange(100) % 3
    clf = MLPClassifier(hidden_layer_sizes=(16,), batch_size=32, max_iter=3, tol=0,
                        random_state=0).fit(X, y)
    assert set(clf._model._step_threads._by_batch) == {32, 4}   # 3 full batches and 4 rows
