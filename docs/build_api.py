"""Write docs/api.md, the API reference, from the numpydoc docstrings of ``fastfc.__all__``.

    python docs/build_api.py           # rewrite docs/api.md
    python docs/build_api.py --check   # exit 1 when docs/api.md is not what this writes

Needs numpydoc (``pip install fastfc[docs]``) for its docstring parser.
"""
from __future__ import annotations

import argparse
import inspect
import os
import re
import sys
import types
from typing import Any, Callable, Iterator

from numpydoc.docscrape import (  # type: ignore[import-untyped,unused-ignore]
    ClassDoc, FunctionDoc, NumpyDocString)

import fastfc

API_MD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "api.md")
# sections rendered as lists of names with types, then sections of text, in this order
LIST_SECTIONS = ("Parameters", "Other Parameters", "Returns", "Yields", "Raises", "Warns",
                 "Attributes")
TEXT_SECTIONS = ("Warnings", "Notes", "References")


def is_routine(obj: Any) -> bool:
    """Functions and methods, Python or compiled (Cython's are not ``FunctionType``)."""
    return callable(obj) and not inspect.isclass(obj)


def _default(value: Any) -> str:
    if inspect.isclass(value) or inspect.isroutine(value):   # numpy.float32, not <class ...>
        return f"{value.__module__}.{value.__qualname__}"
    return repr(value)


def signature(obj: Any, method: bool = False) -> str:
    """``(a, b, *, alpha=1.0)`` (a method's without ``self``); ``(...)`` where Python cannot
    tell."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return "(...)"
    params = list(sig.parameters.values())
    if method and params and params[0].name in ("self", "cls"):
        params = params[1:]
    sig = sig.replace(parameters=[p.replace(default=_Literal(_default(p.default)))
                                  if p.default is not p.empty else p for p in params])
    return str(sig)


class _Literal(str):
    """A default value shown as written."""

    def __repr__(self) -> str:
        return str(self)


def docstring(obj: Any) -> NumpyDocString:
    """The parsed docstring of a class or routine (an empty one when it has none)."""
    if inspect.isclass(obj):
        return ClassDoc(obj, doc=inspect.getdoc(obj) or "", config={"show_class_members": False})
    return FunctionDoc(obj, doc=inspect.getdoc(obj) or "")


def module_members(module: types.ModuleType) -> list[tuple[str, Any]]:
    """A module's public classes and routines: its ``__all__``, else the public names it
    defines itself, in source order."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, v in vars(module).items() if not n.startswith("_")
                 and (inspect.isclass(v) or is_routine(v))
                 and getattr(v, "__module__", None) == module.__name__]
    return [(n, getattr(module, n)) for n in names]


def class_methods(cls: type) -> tuple[list[tuple[str, Any]], list[tuple[str, type]]]:
    """The public methods written in a fastfc class's body, and those it inherits from a
    fastfc base (by name and base), each sorted by name."""
    own, inherited = [], []
    for name in sorted(dir(cls)):
        if name.startswith("_"):
            continue
        for base in cls.__mro__:
            if name in vars(base):
                break
        attr = vars(base)[name]
        func = attr.__func__ if isinstance(attr, (classmethod, staticmethod)) else attr
        # a function written in the class body (not a module function stored on it)
        if not (is_routine(func) and getattr(func, "__module__", "").startswith("fastfc")
                and getattr(func, "__qualname__", "").startswith(base.__qualname__ + ".")):
            continue
        if base is cls:
            own.append((name, getattr(cls, name)))
        else:
            inherited.append((name, base))
    return own, inherited


def _markdown(text: str) -> str:
    """reST cross-references (``:func:`dropout```) as code."""
    return re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text)


def _paragraphs(lines: list[str]) -> Iterator[str]:
    text = _markdown("\n".join(lines).strip())
    if text:
        yield text
        yield ""


def _sections(doc: NumpyDocString) -> Iterator[str]:
    yield from _paragraphs(doc["Summary"])
    yield from _paragraphs(doc["Extended Summary"])
    for section in LIST_SECTIONS:
        if not doc[section]:
            continue
        yield f"**{section}**"
        yield ""
        for p in doc[section]:
            head = " : ".join(part for part in (f"`{p.name}`" if p.name else "",
                                                f"*{p.type}*" if p.type else "") if part)
            desc = _markdown(" ".join(line.strip() for line in p.desc if line.strip()))
            yield f"- {head}" + (f" — {desc}" if desc and head else desc)
        yield ""
    for section in TEXT_SECTIONS:
        if doc[section]:
            yield f"**{section}**"
            yield ""
            yield from _paragraphs(doc[section])
    if doc["Examples"]:
        yield "**Examples**"
        yield ""
        yield "```python"
        yield "\n".join(doc["Examples"]).strip()
        yield "```"
        yield ""


def render_object(qualname: str, obj: Any, level: int, method: bool = False) -> Iterator[str]:
    """One class (with its methods, a level down) or routine."""
    kind = "class " if inspect.isclass(obj) else ""
    yield f"{'#' * level} {kind}`{qualname}{signature(obj, method)}`"
    yield ""
    yield from _sections(docstring(obj))
    if inspect.isclass(obj):
        own, inherited = class_methods(obj)
        if inherited:
            yield "Inherited: " + ", ".join(f"`{name}` (`{base.__name__}`)"
                                           for name, base in inherited)
            yield ""
        for name, func in own:
            yield from render_object(f"{qualname}.{name}", func, level + 1, method=True)


def render() -> str:
    """The whole of docs/api.md."""
    names = list(fastfc.__all__)
    kinds: list[tuple[str, Callable[[Any], bool]]] = [
        ("Functions", is_routine),
        ("Classes", inspect.isclass),
        ("Modules", inspect.ismodule),
        ("Constants", lambda v: not (is_routine(v) or inspect.isclass(v) or inspect.ismodule(v))),
    ]
    out = ["# fastfc API reference", "",
           f"fastfc {fastfc.__version__}. Generated by `docs/build_api.py` from the numpydoc "
           "docstrings of the names in `fastfc.__all__`; edit the docstrings, then run "
           "`python docs/build_api.py`.", ""]
    for title, belongs in kinds:
        chosen = [n for n in names if belongs(getattr(fastfc, n))]
        out += [f"- {title}: " + ", ".join(f"`{n}`" for n in chosen)] if chosen else []
    out.append("")
    for title, belongs in kinds:
        chosen = [n for n in names if belongs(getattr(fastfc, n))]
        if not chosen:
            continue
        out += [f"## {title}", ""]
        for name in chosen:
            obj = getattr(fastfc, name)
            if inspect.ismodule(obj):
                out += [f"### `fastfc.{name}`", ""]
                out += list(_paragraphs((inspect.getdoc(obj) or "").splitlines()))
                for member, value in module_members(obj):
                    out += list(render_object(f"fastfc.{name}.{member}", value, 4))
            elif title == "Constants":
                out += [f"### `fastfc.{name}`", "", f"`{dict(obj)!r}`" if isinstance(
                    obj, types.MappingProxyType) else f"`{obj!r}`", ""]
            else:
                out += list(render_object(f"fastfc.{name}", obj, 3))
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when docs/api.md differs from what would be written")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        with open(API_MD, encoding="utf-8") as f:
            stale = f.read() != text
        if stale:
            print(f"{API_MD} is stale: run python docs/build_api.py", file=sys.stderr)
        return int(stale)
    with open(API_MD, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
