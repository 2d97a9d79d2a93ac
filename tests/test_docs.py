"""The API reference: docs/api.md is what docs/build_api.py writes from the docstrings now,
and every public name's numpydoc docstring documents its arguments and its result."""
import ast
import doctest
import inspect
import os
import sys

import pytest

import fastfc

pytest.importorskip("numpydoc", reason="numpydoc parses the docstrings (pip install fastfc[docs])")
DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")
sys.path.insert(0, DOCS)
import build_api  # noqa: E402

def public_objects():
    """(name, object) of every class and routine in fastfc.__all__ and in the modules it
    names (``optim.Adam``)."""
    found = []
    for name in fastfc.__all__:
        obj = getattr(fastfc, name)
        if inspect.ismodule(obj):
            found += [(f"{name}.{m}", v) for m, v in build_api.module_members(obj)]
        elif inspect.isclass(obj) or build_api.is_routine(obj):
            found.append((name, obj))
    return found


PUBLIC = public_objects()


def _arguments(obj):
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return set()
    return {p for p in params if p not in ("self", "cls")}


def _documented(doc):
    """Parameter names of the Parameters section (``a, b`` documents two; ``**kw`` is kw)."""
    return {n.strip().lstrip("*") for p in doc["Parameters"] for n in p.name.split(",")
            if n.strip()}


def _returns_none(obj):
    """Annotated ``-> None``: in the source, or for a compiled routine in its .pyi stub."""
    try:
        if inspect.signature(obj).return_annotation in (None, "None"):
            return True
    except (TypeError, ValueError):
        pass
    module = sys.modules.get(getattr(obj, "__module__", ""), None)
    path = getattr(module, "__file__", None)
    if not path or path.endswith(".py"):
        return False
    stub = os.path.join(os.path.dirname(path), module.__name__.rsplit(".", 1)[-1] + ".pyi")
    with open(stub, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    return any(isinstance(node, ast.FunctionDef) and node.name == obj.__name__
               and isinstance(node.returns, ast.Constant) and node.returns.value is None
               for node in tree.body)


def missing_sections(obj):
    """What the docstring of a class or routine lacks, as phrases (empty when complete)."""
    doc = build_api.docstring(obj)
    problems = [] if doc["Summary"] else ["a summary line"]
    args, documented = _arguments(obj), _documented(doc)
    if args - documented:
        problems.append(f"Parameters for {sorted(args - documented)}")
    if documented - args:
        problems.append(f"no Parameters for {sorted(documented - args)}, not arguments")
    if not inspect.isclass(obj) and not doc["Returns"] and not _returns_none(obj):
        problems.append("a Returns section")
    return problems


def test_api_md_is_current():
    with open(build_api.API_MD, encoding="utf-8") as f:
        committed = f.read()
    assert committed == build_api.render(), "docs/api.md is stale: run python docs/build_api.py"


def test_api_md_lists_every_public_name():
    text = build_api.render()
    for name, _ in PUBLIC:
        assert f"`fastfc.{name}(" in text, name


@pytest.mark.parametrize("name,obj", PUBLIC, ids=[p[0] for p in PUBLIC])
def test_docstring_sections(name, obj):
    assert missing_sections(obj) == [], f"{name}'s docstring lacks {missing_sections(obj)}"


@pytest.mark.parametrize("name,obj", [p for p in PUBLIC if build_api.docstring(p[1])["Examples"]],
                         ids=[p[0] for p in PUBLIC if build_api.docstring(p[1])["Examples"]])
def test_examples_run(keep_threads, name, obj):
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    test = parser.get_doctest(inspect.getdoc(obj), {}, name, None, 0)
    report = []
    result = runner.run(test, out=report.append)
    assert result.failed == 0, "".join(report)


def test_missing_sections_finds_what_is_missing():
    def documented(x, y=1):
        """Sum.

        Parameters
        ----------
        x : int
        z : int

        Returns
        -------
        int
        """

    def undocumented(a):
        pass

    assert missing_sections(documented) == ["Parameters for ['y']",
                                            "no Parameters for ['z'], not arguments"]
    assert missing_sections(undocumented) == ["a summary line", "Parameters for ['a']",
                                              "a Returns section"]
