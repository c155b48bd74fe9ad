"""Names of a package imported on first use (PEP 562), written once for the packages that need it.

Why: ``import failpattern`` (and ``failpattern --version``) must not pay for pandas, scipy and
matplotlib, and ``failpattern.replicate`` must let the CLI start the workers' fork server before
the calling process imports pandas; both packages re-export names from sub-modules, and give them
on first use instead.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping


def lazy_names(package: str, namespace: dict, where: Mapping[str, tuple[str, ...]], public: list[str]
               ) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` that import its public names on first use.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    namespace : dict
        The package's ``globals()``: each name imported is stored there, so later look-ups find it.
    where : Mapping
        Module name -> the names it gives.
    public : list of str
        The package's ``__all__``.

    Returns
    -------
    (__getattr__, __dir__)
        A name of ``where`` comes from its module; any other name that is a sub-module of the
        package is imported as the sub-module; anything else is an ``AttributeError``.
    """
    module_of = {name: module for module, names in where.items() for name in names}

    def __getattr__(name: str):
        module = module_of.get(name)
        if module is not None:
            value = getattr(importlib.import_module(module), name)
        elif not name.startswith("__") and importlib.util.find_spec(f"{package}.{name}") is not None:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(public))

    return __getattr__, __dir__
