"""Model files are attack surface: a crafted file must not run code, a changed file must not
load, and two registrations of the same bytes must not make two versions."""

from __future__ import annotations

import io
import json
import multiprocessing
import zipfile
from pathlib import Path
from urllib.parse import unquote, urlparse

import mlflow
import numpy as np
import pytest
import skops.io

from labs.common.data import make_churn_data
from labs.common.model import TrainParams, split_xy, train_model
from labs.common.registration import register_version
from labs.common.registry import SHA_TAG
from labs.common.tracking import (
    ALLOWED_TYPES,
    ARTIFACT_SHA_TAG,
    UntrustedModelError,
    configure_tracking,
    load_model_file,
    load_sklearn_model,
    logged_model_file,
)

# numpy's test helper exec()s a string: trusted by a "numpy." prefix, it runs code on load.
EXEC_TYPE = "numpy.testing._private.utils.runstring"


def crafted_skops(marker: Path) -> bytes:
    """A skops file whose root is a constructor call of ``runstring`` with code that writes
    ``marker`` — harmless, but proof that code ran."""
    args = json.loads(
        zipfile.ZipFile(io.BytesIO(skops.io.dumps((f"open({str(marker)!r}, 'w')", {}))))
        .read("schema.json")
        .decode()
    )
    schema = {
        "__class__": "runstring",
        "__module__": "numpy.testing._private.utils",
        "__loader__": "ConstructorFromReduceNode",
        "content": args,
        "__id__": 1,
        "protocol": args["protocol"],
        "_skops_version": args["_skops_version"],
    }
    for key in ("protocol", "_skops_version"):
        schema["content"].pop(key, None)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("schema.json", json.dumps(schema))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def frame():
    return make_churn_data(600, seed=5)


def test_the_crafted_file_really_runs_code_when_its_type_is_trusted(tmp_path: Path) -> None:
    """The attack is real: what the old prefix allowlist let through executes on load."""
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.skops"
    path.write_bytes(crafted_skops(marker))
    assert skops.io.get_untrusted_types(file=path) == [EXEC_TYPE]
    assert EXEC_TYPE.startswith("numpy.")  # the old allowlist trusted every "numpy." type
    skops.io.load(path, trusted=[EXEC_TYPE])
    assert marker.exists()


def test_a_crafted_model_file_is_refused_by_name_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.skops"
    path.write_bytes(crafted_skops(marker))
    with pytest.raises(UntrustedModelError, match=EXEC_TYPE.replace(".", r"\.")):
        load_model_file(path)
    assert not marker.exists()


def test_the_allowlist_is_exact_type_names_only() -> None:
    assert ALLOWED_TYPES == {"sklearn.tree._tree.Tree", "numpy.dtype"}
    assert all(not name.endswith(".") for name in ALLOWED_TYPES)


@pytest.mark.parametrize("model_type", ["logistic_regression", "random_forest"])
def test_the_projects_own_models_still_load_from_the_registry(frame, model_type) -> None:
    configure_tracking()
    model = train_model(frame, TrainParams(model_type=model_type, n_estimators=5))
    client = mlflow.MlflowClient()
    name = f"safety-own-{model_type}"
    version, created = register_version(client, name, model, experiment="test-safety")
    assert created
    mv = client.get_model_version(name, version)
    assert len(mv.tags[ARTIFACT_SHA_TAG]) == 64 and len(mv.tags[SHA_TAG]) == 64
    x, _ = split_xy(frame)
    loaded = load_sklearn_model(f"models:/{name}/{version}")
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))


def _store_path(model_uri: str) -> Path:
    """The logged skops file inside the local artifact store (not a downloaded copy)."""
    model_id = model_uri.removeprefix("models:/")
    location = mlflow.get_logged_model(model_id).artifact_location
    root = Path(unquote(urlparse(location).path))
    return next(root.rglob("*.skops"))


def test_a_model_changed_after_registration_is_refused_with_both_hashes(frame) -> None:
    configure_tracking()
    client = mlflow.MlflowClient()
    name = "safety-tampered"
    version, _ = register_version(client, name, train_model(frame, TrainParams()), experiment="t")
    mv = client.get_model_version(name, version)
    stored = _store_path(mv.source)
    # Change one byte of the coefficients inside the zip (valid CRC: a careful attacker).
    original = zipfile.ZipFile(stored)
    members = {info.filename: original.read(info) for info in original.infolist()}
    original.close()
    npy = next(n for n in members if n.endswith(".npy") and len(members[n]) > 140)
    data = bytearray(members[npy])
    data[-1] ^= 0x01
    members[npy] = bytes(data)
    with zipfile.ZipFile(stored, "w") as archive:
        for member, content in members.items():
            archive.writestr(member, content)
    assert load_model_file(logged_model_file(mv.source)) is not None  # still a valid file
    with pytest.raises(UntrustedModelError) as err:
        load_sklearn_model(f"models:/{name}/{version}")
    assert mv.tags[ARTIFACT_SHA_TAG] in str(err.value)
    assert "differs from the registered" in str(err.value)


def test_a_registered_version_without_a_recorded_hash_is_refused(frame) -> None:
    from labs.common.tracking import start_run

    configure_tracking()
    client = mlflow.MlflowClient()
    with start_run("test-safety", "out-of-band"):
        info = mlflow.sklearn.log_model(
            train_model(frame, TrainParams()),
            name="model",
            serialization_format="skops",
            registered_model_name="safety-unverified",
        )
    with pytest.raises(UntrustedModelError, match=f"no recorded {ARTIFACT_SHA_TAG}"):
        load_sklearn_model(f"models:/safety-unverified/{info.registered_model_version}")
    assert client.get_registered_model("safety-unverified") is not None


def _register(args: tuple[str, int]) -> tuple[str, bool]:
    name, seed = args
    configure_tracking()
    model = train_model(make_churn_data(600, seed=seed), TrainParams())
    return register_version(mlflow.MlflowClient(), name, model, experiment="test-safety")


def test_concurrent_registrations_of_the_same_bytes_make_one_version() -> None:
    name = "safety-concurrent"
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.map(_register, [(name, 5)] * 2)
    versions = {v for v, _ in results}
    assert len(versions) == 1, results
    assert sum(created for _, created in results) == 1
    configure_tracking()
    found = mlflow.MlflowClient().search_model_versions(f"name='{name}'")
    assert len(found) == 1
