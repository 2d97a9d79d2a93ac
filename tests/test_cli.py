"""The command lines: `python -m fastfc [--help]` and the argument checks of
`python -m fastfc bench` (the benchmark itself runs in bench/, not here)."""
import pytest

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


def test_help_prints_usage_and_runs_nothing(capsys):
    assert cli.main(["--help"]) == 0
    assert "python -m fastfc bench" in capsys.readouterr().out


def test_unknown_command_is_an_error(capsys):
    assert cli.main(["bogus"]) == 2
    assert "python -m fastfc" in capsys.readouterr().err
