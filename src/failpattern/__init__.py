"""failpattern: a survival-analysis reproduction toolkit.

The public API is re-exported here; see the README for the contract.
"""

from failpattern._version import __version__
from failpattern.errors import ConvergenceError, FailpatternError, InputError

__all__ = ["__version__", "ConvergenceError", "FailpatternError", "InputError"]
