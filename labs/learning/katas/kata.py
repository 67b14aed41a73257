"""A kata, the learner's file, and the checker that runs it through the lab's measurement path."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.util
import inspect
import os
import secrets
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labs.common.errors import Refusal

FILES = Path(__file__).parent / "files"  # each kata's start.py, solution.py, wrong_*.py


class KataError(Refusal):
    """A kata command refused: an unknown kata, a check of edits outside the kata's file, a
    solution asked for before a first check. The message is one readable line."""


class LearnerFileError(KataError):
    """The learner's file cannot be used as it is: one readable line, with its line number."""


@dataclass(frozen=True)
class Kata:
    """One break-and-fix exercise built from a lab's counterfactual.

    The learner edits ``file`` (a copy of ``files/<id>/start.py``); the checker calls the lab's
    ``run()`` with ``function`` from it as the keyword ``component``, on the lab's audit
    parameters (plus ``params``) with the ``seed_fields`` drawn at check time, and reads the
    lab's ``checks`` claims. ``wrong_fixes`` name ``files/<id>/wrong_<name>.py``: plausible
    repairs that must fail the checker (``make test`` proves they do).
    """

    id: str
    topic: str
    difficulty: str
    title: str
    scenario: str
    file: str
    function: str
    component: str
    counterfactual: str
    checks: tuple[str, ...]
    hints: tuple[str, str, str]
    wrong_fixes: tuple[str, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    seed_fields: tuple[str, ...] = ("seed",)
    # settings drawn at check time too (by the seed), so a fix tuned to the story's numbers fails
    draws: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    # seeds per check, a check passing on most of them: for claims that are statistical tests
    # themselves (a correct fix fails one seed in ten), so luck neither passes nor fails a fix
    repeats: int = 1
    # errors by which the lab says a seed cannot set its scenario up (before the learner's part
    # matters, e.g. a champion failing its own bootstrap gate): that seed is skipped
    unusable_seed: tuple[str, ...] = ()

    @property
    def folder(self) -> Path:
        return FILES / self.id.replace("-", "_")

    def source(self, name: str) -> str:
        """The text of ``start``, ``solution`` or ``wrong_<name>`` for this kata."""
        return (self.folder / f"{name}.py").read_text()

    def spec(self) -> Any:
        """The lab's counterfactuals (its runner, parameters and audit settings)."""
        module = importlib.import_module(f"labs.{self.topic}.counterfactuals")
        return module.COUNTERFACTUALS

    def real_component(self) -> Callable[..., Any]:
        """The lab's own part the learner's function stands in for (its signature is the
        contract)."""
        return self.spec().run.__kwdefaults__[self.component]

    def question(self) -> str:
        from labs.common.catalogue import topic

        return topic(self.topic).question


@dataclass(frozen=True)
class CheckResult:
    """One check: the lab's claim, whether it held with the learner's part, its numbers."""

    claim: str
    statement: str
    passed: bool
    measured: Mapping[str, Any]


@contextlib.contextmanager
def learner_function(
    path: Path, name: str, like: Callable[..., Any]
) -> Iterator[Callable[..., Any]]:
    """``name`` from the learner's file at ``path``, with the parameters of ``like``.

    The file is imported as a module named after it, with its folder first on ``sys.path`` and
    ``PYTHONPATH`` while the block runs, so a lab can hand the function to its sidecar or a
    subprocess (pickled by reference, or named, and imported there); all undone on exit.

    Raises :class:`LearnerFileError` with one line (and the line number) for a syntax error,
    an exception while the file is executed, a missing function or a changed signature.
    """
    try:
        text = path.read_text()
    except OSError as err:
        raise LearnerFileError(f"{path}: cannot read it ({err.strerror})") from None
    try:
        compile(text, str(path), "exec")
    except SyntaxError as err:
        raise LearnerFileError(f"{path.name} line {err.lineno}: syntax error: {err.msg}") from None
    folder, module_name = str(path.parent.resolve()), path.stem
    saved = sys.modules.pop(module_name, None)
    sys.path.insert(0, folder)
    pythonpath = os.environ.get("PYTHONPATH")  # and for the processes the lab starts
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (folder, pythonpath) if p)
    importlib.invalidate_caches()
    try:
        spec = importlib.util.spec_from_file_location(module_name, path.resolve())
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as err:  # noqa: BLE001 — any error in their file is theirs to read
            raise LearnerFileError(_where(path, err, "while loading it")) from None
        fn = getattr(module, name, None)
        if not callable(fn):
            raise LearnerFileError(f"{path.name}: no function {name}() (the lab calls it)")
        want, have = _required(like), _required(fn)
        if len(have) != len(want):  # the lab passes them by position
            raise LearnerFileError(
                f"{path.name}: {name}({', '.join(have)}) — the lab calls {name}({', '.join(want)})"
            )
        yield fn
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)
        if pythonpath is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = pythonpath
        sys.modules.pop(module_name, None)
        if saved is not None:
            sys.modules[module_name] = saved


def _required(fn: Callable[..., Any]) -> list[str]:
    """The parameters a call must fill (the lab passes these; others may have defaults)."""
    empty, variadic = inspect.Parameter.empty, (inspect.Parameter.VAR_POSITIONAL,
                                                 inspect.Parameter.VAR_KEYWORD)  # fmt: skip
    return [
        p.name
        for p in inspect.signature(fn).parameters.values()
        if p.default is empty and p.kind not in variadic
    ]


def _where(path: Path, err: BaseException, when: str) -> str:
    """One line: the error, and the last line of the learner's file it went through."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename == str(path)]
    line = f" line {frames[-1].lineno}" if frames else ""
    last = traceback.format_exception_only(type(err), err)[-1].strip()
    return f"{path.name}{line}: {last} ({when})"


def check_params(kata: Kata, seed: int) -> Any:
    """The lab's audit parameters with the long measurements of the kata's checks, the kata's
    own settings and draws, and ``seed`` in every seed field — never ``params.yaml``."""
    spec = kata.spec()
    params = spec.deciding(spec.small(spec.params_cls()), kata.checks)
    seeds = {name: seed + i for i, name in enumerate(kata.seed_fields)}
    drawn = {name: values[seed % len(values)] for name, values in kata.draws.items()}
    return dataclasses.replace(params, **{**kata.params, **drawn}, **seeds)


SEED_STEP = 7919  # between the seeds of one check (a prime: no overlap with the labs' offsets)


def draw_seed() -> int:
    """A seed the learner has never seen (the labs' own examples use small ones)."""
    return 1000 + secrets.randbelow(1_000_000)


def run_check(
    kata: Kata,
    fn: Callable[..., Any],
    seed: int,
    learner_file: Path | None = None,
    echo: Callable[[str], None] = lambda _: None,
    tracking_uri: str | None = None,
) -> list[CheckResult]:
    """Run the kata's lab with ``fn`` in place of its component, on ``seed`` (and on
    ``kata.repeats - 1`` seeds after it, where a check passes if it holds on most); the kata's
    checks, with the numbers of a seed that went the verdict's way.

    The lab's MLflow runs go to ``tracking_uri`` if given (else wherever MLflow is pointed).
    An exception raised through the learner's file is a :class:`LearnerFileError` naming its
    line; one raised elsewhere names the lab's error.
    """

    spec = kata.spec()
    saved = os.environ.get("MLFLOW_TRACKING_URI")
    if tracking_uri:
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    runs: list[Any] = []
    try:
        for i in range(3 * kata.repeats):  # a few spare seeds for the unusable ones
            if len(runs) == kata.repeats:
                break
            params = check_params(kata, seed + SEED_STEP * i)
            with tempfile.TemporaryDirectory(prefix=f"kata-{kata.id}-") as tmp:
                try:
                    runs.append(spec.run(params, Path(tmp), echo=echo, **{kata.component: fn}))
                except Exception as err:
                    if type(err).__name__ not in kata.unusable_seed:
                        raise
                    echo(f"seed {seed + SEED_STEP * i}: the lab could not set up ({err}); next")
        if not runs:
            raise KataError(f"the {kata.topic} lab could not set up its scenario on any seed")
    except (KeyboardInterrupt, KataError):
        raise
    except Exception as err:
        path = learner_file or Path(inspect.getsourcefile(fn) or "?")
        frames = traceback.extract_tb(err.__traceback__)
        if any(f.filename == str(path) for f in frames):
            raise LearnerFileError(_where(path, err, "when the lab called it")) from None
        last = traceback.format_exception_only(type(err), err)[-1].strip()
        raise LearnerFileError(
            f"{path.name}: the lab failed with your {kata.function}() in place: {last}"
        ) from None
    finally:
        if tracking_uri:
            if saved is None:
                os.environ.pop("MLFLOW_TRACKING_URI", None)
            else:
                os.environ["MLFLOW_TRACKING_URI"] = saved
    results = []
    for claim in kata.checks:
        found = [next(c for c in run.claims if c.id == claim) for run in runs]
        held = sum(bool(c.passed) for c in found)
        # the numbers of the first seed where it went the way the verdict says
        passed = 2 * held > len(found)
        shown = next(c for c in found if bool(c.passed) == passed)
        measured = dict(shown.measured)
        if len(found) > 1:
            measured = {"held_on_seeds": f"{held}/{len(found)}", **measured}
        results.append(CheckResult(claim, shown.statement, passed, measured))
    return results
