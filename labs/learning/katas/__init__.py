"""Katas: a production incident, one broken file, and an honest checker.

A kata starts from one of a lab's counterfactuals (``labs/<topic>/counterfactuals.py``): the
broken component is copied into the learner's workspace (``.katas/<id>/``, git-ignored) with a
neutral name, and the scenario tells the incident as on-call saw it, never the fault's name.
``make kata-check`` loads the learner's file, hands its function to the lab's own ``run()`` in
place of the real component (dependency injection, not text matching), on a seed drawn at
check time, and reads the lab's own claims — both sides of the behaviour (the alarm is quiet
on clean data *and* still fires on drift). ``make test`` proves each checker honest: the
starting file fails it, the reference solution passes it, and plausible wrong fixes fail it.
"""
