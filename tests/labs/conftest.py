"""Fixtures of the evidence index's tests (a throw-away project and the summary writer), shared
with tests/labs/test_index.py."""

from tests.index.conftest import project, write_lab  # noqa: F401
