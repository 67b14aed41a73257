"""``params.yaml`` access: one section per stage or lab, with errors that name key and file."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

import yaml

from labs.common.paths import params_file

T = TypeVar("T")


class ParamsError(KeyError):
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
    """Build the frozen dataclass ``cls`` from ``section``; every field without a default must be
    in the file (or in ``overrides``)."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    values = load_params(section, path)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in overrides:
            kwargs[f.name] = overrides[f.name]
        elif f.name in values:
            kwargs[f.name] = values[f.name]
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ParamsError(f"key {section}.{f.name} is missing in {path or params_file()}")
    unknown = set(overrides) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise TypeError(f"{cls.__name__} has no parameters {sorted(unknown)}")
    return cls(**kwargs)
