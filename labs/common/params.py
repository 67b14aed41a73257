"""``params.yaml`` access: one section per stage or lab, with errors that name key and file."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from labs.common.errors import Refusal
from labs.common.paths import params_file

T = TypeVar("T")


class ParamsError(Refusal, KeyError):
    """A key that a stage or lab needs is missing from ``params.yaml`` (or has the wrong type)."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


def load_params(section: str, path: Path | None = None) -> dict[str, Any]:
    """The ``section`` of the params file as a dict."""
    path = path or params_file()
    if not path.exists():
        raise ParamsError(f"params file {path} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    if section not in data or not isinstance(data[section], dict):
        raise ParamsError(f"section {section!r} is missing in {path}; sections: {sorted(data)}")
    return data[section]


def require(params: dict[str, Any], key: str, section: str, path: Path | None = None) -> Any:
    """``params[key]``, or a :class:`ParamsError` naming ``section.key`` and the file."""
    if key not in params:
        raise ParamsError(f"key {section}.{key} is missing in {path or params_file()}")
    return params[key]


def params_for(cls: type[T], section: str, path: Path | None = None, **overrides: Any) -> T:
    """Build the frozen dataclass ``cls`` from ``section``, strictly.

    Every field must be in the file (or in ``overrides``): a default in code is not a
    documented value. A key the dataclass does not have is refused with the closest valid
    name (a typo must not be ignored silently), and types and ranges are checked by pydantic
    and the dataclass's own ``__post_init__``: one line per problem, naming the field, the
    value and what is allowed.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    where = path or params_file()
    values = dict(load_params(section, path))
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise TypeError(f"{cls.__name__} has no parameters {unknown}")
    values.update(overrides)
    problems = []
    for key in sorted(set(values) - set(names)):
        close = difflib.get_close_matches(key, names, n=1)
        hint = f"; did you mean {section}.{close[0]}?" if close else f"; valid keys: {names}"
        problems.append(f"unknown key {section}.{key}{hint}")
    problems += [f"key {section}.{name} is missing" for name in names if name not in values]
    if problems:
        raise ParamsError(f"{'; '.join(problems)} (in {where})")
    return _validated(cls, section, values)


def _validated(cls: type[T], section: str, values: dict[str, Any]) -> T:
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(cls).validate_python(values)
    except ValidationError as err:
        lines = []
        for e in err.errors(include_url=False):
            field = ".".join(str(part) for part in e["loc"] if part != cls.__name__)
            name = f"{section}.{field}" if field else section
            got = e.get("input")
            message = str(e["msg"]).removeprefix("Value error, ")
            lines.append(f"{name}: {message} (got {got!r})" if field else f"{name}: {message}")
        raise ParamsError("; ".join(lines)) from None


def check_at_least(params: object, section: str, minimums: Mapping[str, int]) -> None:
    """Refuse ``params`` (a lab's params dataclass) whose named fields are below their minimum:
    ``ValueError("<section>.<name> must be >= <least>, got <value>")``, in ``minimums`` order."""
    for name, least in minimums.items():
        if int(getattr(params, name)) < least:
            raise ValueError(f"{section}.{name} must be >= {least}, got {getattr(params, name)!r}")


def check_open_unit(params: object, section: str, names: Iterable[str]) -> None:
    """Refuse ``params`` whose named fields (shares, rates, probabilities) are not in (0, 1)."""
    for name in names:
        if not 0 < float(getattr(params, name)) < 1:
            raise ValueError(f"{section}.{name} must be in (0, 1), got {getattr(params, name)!r}")
