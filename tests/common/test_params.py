"""params.yaml access: errors name the key and the file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from labs.common.model import TrainParams
from labs.common.params import ParamsError, load_params, params_for, require


@dataclass(frozen=True)
class Demo:
    alpha: float
    n: int = 3


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def test_params_for_fills_dataclass_and_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "demo:\n  alpha: 0.5\n")
    assert params_for(Demo, "demo", path) == Demo(alpha=0.5, n=3)
    assert params_for(Demo, "demo", path, n=9) == Demo(alpha=0.5, n=9)


def test_missing_key_names_key_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, "demo:\n  n: 2\n")
    with pytest.raises(ParamsError, match=rf"demo\.alpha is missing in {path}"):
        params_for(Demo, "demo", path)
    with pytest.raises(ParamsError, match=r"demo\.beta is missing"):
        require(load_params("demo", path), "beta", "demo", path)


def test_missing_section_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, "other:\n  x: 1\n")
    with pytest.raises(ParamsError, match=r"section 'demo' is missing.*\['other'\]"):
        load_params("demo", path)
    with pytest.raises(ParamsError, match="does not exist"):
        load_params("demo", tmp_path / "nope.yaml")


def test_unknown_override_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "demo:\n  alpha: 1\n")
    with pytest.raises(TypeError, match=r"no parameters \['beta'\]"):
        params_for(Demo, "demo", path, beta=1)


def test_project_params_file_builds_train_params(repo_root: Path) -> None:
    params = params_for(TrainParams, "train", repo_root / "params.yaml")
    assert params.model_type in ("logistic_regression", "random_forest")
    with pytest.raises(ValueError, match="train.model_type"):
        TrainParams(model_type="xgboost")  # type: ignore[arg-type]
