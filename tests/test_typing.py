"""The typed API: ``mypy --strict`` passes on a user's program (tests/typing_snippet.py),
which also runs, and the .pyi stubs of the compiled modules match what they export."""
import os
import pkgutil
import subprocess
import sys
import sysconfig

import pytest

import fastfc
from fastfc import _core

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE = os.path.dirname(os.path.abspath(fastfc.__file__))
# every module of fastfc._core (compiled; its libfastfc_core is the C library, no module)
COMPILED = sorted(f"fastfc._core.{m.name}" for m in pkgutil.iter_modules(_core.__path__)
                  if m.name.startswith("_"))


def _mypy_env():
    """MYPYPATH pointing at fastfc when it is imported from a source tree (PYTHONPATH=src);
    an installed fastfc is found in site-packages, which mypy refuses in MYPYPATH."""
    root = os.path.dirname(PACKAGE)
    installed = {os.path.realpath(sysconfig.get_paths()[k]) for k in ("purelib", "platlib")}
    env = dict(os.environ)
    if os.path.realpath(root) not in installed:
        env["MYPYPATH"] = root
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory):
    """One mypy cache for the module: numpy's stubs are read once (a cold run takes ~10 s)."""
    pytest.importorskip("mypy", reason="mypy is not installed (pip install fastfc[test])")
    return str(tmp_path_factory.mktemp("mypy_cache"))


def _run(args, env, timeout=300):
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=HERE)


def test_package_is_marked_typed():
    assert os.path.isfile(os.path.join(PACKAGE, "py.typed"))
    for module in COMPILED:
        stub = os.path.join(os.path.dirname(PACKAGE), *module.split(".")) + ".pyi"
        assert os.path.isfile(stub), stub


def test_mypy_strict_passes_on_a_users_program(mypy_cache):
    snippet = os.path.join(HERE, "typing_snippet.py")
    # errors inside fastfc's own modules are not the user's: silent, as for any installed
    # package; every error in the snippet is reported
    out = _run(["-m", "mypy", "--strict", "--follow-imports=silent", "--no-error-summary",
                "--cache-dir", mypy_cache, snippet], _mypy_env())
    assert out.returncode == 0, out.stdout + out.stderr
    ran = _run([snippet], _mypy_env(), timeout=120)
    assert ran.returncode == 0 and ran.stderr.startswith("ok"), ran.stdout + ran.stderr


def test_mypy_strict_catches_a_misuse(tmp_path, mypy_cache):
    """The check above can fail: a wrong argument type is an error."""
    bad = tmp_path / "bad.py"
    bad.write_text("import fastfc\nimport numpy as np\n"
                   "fastfc.linear(np.ones((2, 3)), np.ones((3, 4)), activation='rleu')\n"
                   "n: str = fastfc.get_num_threads()\n")
    out = _run(["-m", "mypy", "--strict", "--follow-imports=silent",
                "--cache-dir", mypy_cache, str(bad)], _mypy_env())
    assert out.returncode == 1, out.stdout + out.stderr
    assert "bad.py:3: error" in out.stdout and "bad.py:4: error" in out.stdout, out.stdout


def test_stubs_match_the_compiled_modules(tmp_path, mypy_cache):
    assert len(COMPILED) >= 5, COMPILED
    config = tmp_path / "mypy.ini"
    config.write_text(f"[mypy]\ncache_dir = {mypy_cache}\n")
    out = _run(["-m", "mypy.stubtest", *COMPILED, "--mypy-config-file", str(config),
                "--allowlist", os.path.join(HERE, "stubtest_allowlist.txt"),
                "--ignore-unused-allowlist"], _mypy_env())
    assert out.returncode == 0, out.stdout + out.stderr
