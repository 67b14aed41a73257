"""params.yaml access is strict: every key present, no unknown key, types and ranges checked,
and every error names the key (and the closest valid one), the value and the file."""

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

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"demo.alpha must be in (0, 1), got {self.alpha!r}")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def test_params_for_builds_the_dataclass_and_applies_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, "demo:\n  alpha: 0.5\n  n: 4\n")
    assert params_for(Demo, "demo", path) == Demo(alpha=0.5, n=4)
    assert params_for(Demo, "demo", path, n=9) == Demo(alpha=0.5, n=9)


def test_a_missing_key_is_an_error_not_a_silent_default(tmp_path: Path) -> None:
    path = write(tmp_path, "demo:\n  alpha: 0.5\n")
    with pytest.raises(ParamsError, match=rf"key demo\.n is missing \(in {path}\)"):
        params_for(Demo, "demo", path)
    with pytest.raises(ParamsError, match=r"demo\.beta is missing"):
        require(load_params("demo", path), "beta", "demo", path)


def test_an_unknown_key_names_the_closest_valid_one(tmp_path: Path) -> None:
    path = write(tmp_path, "demo:\n  alpah: 0.5\n  n: 2\n")
    with pytest.raises(ParamsError, match=r"unknown key demo\.alpah; did you mean demo\.alpha\?"):
        params_for(Demo, "demo", path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("alpha: abc\n  n: 2", r"demo\.alpha: Input should be a valid number.*\(got 'abc'\)"),
        ("alpha: 0.5\n  n: [1]", r"demo\.n: Input should be a valid integer.*\(got \[1\]\)"),
        ("alpha: 1.5\n  n: 2", r"demo\.alpha must be in \(0, 1\), got 1\.5"),
    ],
)
def test_a_wrong_type_or_range_is_one_line_naming_field_and_value(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, f"demo:\n  {text}\n")
    with pytest.raises(ParamsError, match=message) as err:
        params_for(Demo, "demo", path)
    assert "\n" not in str(err.value)


def test_missing_section_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, "other:\n  x: 1\n")
    with pytest.raises(ParamsError, match=r"section 'demo' is missing.*\['other'\]"):
        load_params("demo", path)
    with pytest.raises(ParamsError, match="does not exist"):
        load_params("demo", tmp_path / "nope.yaml")


def test_unknown_override_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "demo:\n  alpha: 0.5\n  n: 1\n")
    with pytest.raises(TypeError, match=r"no parameters \['beta'\]"):
        params_for(Demo, "demo", path, beta=1)


def test_project_params_file_builds_train_params(repo_root: Path, tmp_path: Path) -> None:
    params = params_for(TrainParams, "train", repo_root / "params.yaml")
    assert params.model_type in ("logistic_regression", "random_forest")
    text = (repo_root / "params.yaml").read_text()
    bad = write(tmp_path, text.replace("model_type: logistic_regression", "model_type: xgboost"))
    with pytest.raises(ParamsError, match=r"train\.model_type: .*'logistic_regression'.*xgboost"):
        params_for(TrainParams, "train", bad)
