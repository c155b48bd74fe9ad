"""Exceptions raised by failpattern.

Every problem with a caller's input is a :class:`InputError`, a subclass of
:class:`ValueError`, so ``except ValueError`` catches all of them. The message
names the argument (or file, row and column), the offending value and the
rule it breaks, so a user can fix the input without reading a traceback.
"""

from __future__ import annotations

__all__ = ["FailpatternError", "InputError", "ConvergenceError"]


class FailpatternError(Exception):
    """Base class of every exception failpattern raises on purpose."""


class InputError(FailpatternError, ValueError):
    """An argument or a data file breaks a documented rule."""


class ConvergenceError(FailpatternError, ValueError):
    """An iterative fit did not converge, or the data make the estimate infinite.

    The message says which model, how far the iterations got, and what to try
    (monotone likelihood from separation, a covariate with one value among
    events, too few events for the number of covariates, ...).
    """
