"""Learning tools: they consume the labs and are never imported by them.

- :mod:`labs.learning.katas` — break-and-fix exercises: a lab's counterfactual handed to the
  learner as one file to repair, checked by the lab's own claims on seeds drawn at check time.
"""
