"""The one base class of every *typed refusal*: an input or request the project turns down on
purpose (bad parameters, a registry move that is not allowed, an untrusted model file).

A lab that meets one exits 2 with its message as one readable line; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations


class Refusal(Exception):
    """Raised for input the project refuses on purpose; the message is meant for the user."""
