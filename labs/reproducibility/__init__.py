"""Lab ``reproducibility``: the same inputs give the same bytes — and where that breaks.

``python -m labs.reproducibility`` runs the lab; ``python -m labs.reproducibility.rebuild
RUN_ID`` rebuilds a recorded run from its commit and data and compares.
"""
