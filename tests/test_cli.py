"""The command lines: `python -m fastfc [--help]`, the argument checks of
`python -m fastfc bench` and the checks of its cases (the benchmark itself runs in bench/,
not here)."""
import numpy as np
import pytest

import fastfc
from fastfc import __main__ as cli
from fastfc import bench


@pytest.mark.parametrize("args,message", [
    (["--threads", "0"], "--threads: must be at least 1, got 0"),
    (["--rounds", "0"], "--rounds: must be at least 1, got 0"),
    (["--pause", "-1"], "--pause: must be at least 0, got -1"),
    (["--only", "forward,bogus"], "--only: unknown table bogus; choose from forward,"),
    (["--threads", "two"], "--threads: invalid int value: 'two'"),
])
def test_bench_rejects_bad_arguments(capsys, args, message):
    with pytest.raises(SystemExit) as e:
        bench.main(args)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--plot", "--json"])
def test_bench_checks_its_output_folders_before_running(capsys, tmp_path, flag):
    """A missing folder is named at once, not after the whole run."""
    path = tmp_path / "missing" / "out.png"
    with pytest.raises(SystemExit) as e:
        bench.main(["--only", "forward", flag, str(path)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"{flag} {path}: the folder {path.parent} does not exist" in err


def test_help_prints_usage_and_runs_nothing(capsys):
    assert cli.main(["--help"]) == 0
    assert "python -m fastfc bench" in capsys.readouterr().out


def test_unknown_command_is_an_error(capsys):
    assert cli.main(["bogus"]) == 2
    assert "python -m fastfc" in capsys.readouterr().err


# The bench checks each case's fastfc result against NumPy before it times anything: the
# cases pass as they are and fail when fastfc is made wrong.

def test_bench_cases_check_their_results():
    for m, k, n in [(7, 63, 10), (65, 17, 130)]:
        bench.forward_case(m, k, n)
        bench.forward_case(m, k, n, np.float64)
        bench.backward_case(m, k, n)
    bench.dropout_case(1 << 16)
    bench.train_case(32)


def _off_by_a_little(fn):
    """fn with one value of its first result (or first output array) off by 1e-3 (a
    relu output may be 0: not only relative)."""
    def wrong(*args, **kw):
        res = fn(*args, **kw)
        first = res[0] if isinstance(res, tuple) else res
        first.flat[first.size // 2] += 1e-3 * (1 + abs(first.flat[first.size // 2]))
        return res
    return wrong


@pytest.mark.parametrize("target,case", [
    ("linear", lambda: bench.forward_case(65, 17, 130)),
    ("linear", lambda: bench.forward_case(65, 17, 130, np.float64)),
    ("linear_backward", lambda: bench.backward_case(65, 17, 130))])
def test_bench_refuses_a_wrong_product(monkeypatch, target, case):
    monkeypatch.setattr(fastfc, target, _off_by_a_little(getattr(fastfc, target)))
    with pytest.raises(AssertionError, match="fastfc differs from NumPy in 1 of"):
        case()


def test_bench_refuses_a_wrong_dropout(monkeypatch):
    drop = fastfc.dropout
    monkeypatch.setattr(fastfc, "dropout", lambda x, p, **kw: drop(x, p * 0.9, **kw))
    with pytest.raises(AssertionError, match="bench case dropout"):
        bench.dropout_case(1 << 16)


def test_bench_refuses_a_wrong_train_step(monkeypatch):
    step = fastfc.optim.Adam.step
    monkeypatch.setattr(fastfc.optim.Adam, "step", lambda self, p, g: step(self, p, -g))
    with pytest.raises(AssertionError, match="after one Adam step"):
        bench.train_case(32)
