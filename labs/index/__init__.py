"""The evidence index and ``make labs``: every seed question with its answer and the evidence
the labs produced (``reports/index.html``), and a runner for all ready labs.

Reads the labs only through their ``summary.json`` files (``labs.common.results``), never their
code. Entry point: ``python -m labs.index.cli`` (not ``__main__``: this package is not a lab).
"""
