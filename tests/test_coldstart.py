"""Cold start: ``import failpattern`` and ``failpattern --version`` load no heavy library.

Public names of :mod:`failpattern` are imported on first use and sub-commands of the
command line when they are looked up (``benchmarks/bench_coldstart.py`` times both);
these tests check that the laziness loses nothing: every public name resolves to the same
object as before, and every sub-command is registered under its name.
"""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

HEAVY = ("pandas", "scipy", "matplotlib")


def _modules_after(code: str) -> set[str]:
    """Top-level packages imported by ``code`` in a fresh interpreter."""
    done = subprocess.run([sys.executable, "-c", f"{code}\nimport sys\nprint(sorted(sys.modules))"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return {name.split(".")[0] for name in eval(done.stdout.strip().splitlines()[-1])}


@pytest.mark.parametrize("code", [
    "import failpattern",
    "import failpattern as fp; fp.__version__; fp.InputError",
    "from failpattern.cli import main\ntry:\n    main(['--version'])\nexcept SystemExit as e:\n    assert e.code == 0",
], ids=["import", "version-and-errors", "cli-version"])
def test_import_and_version_load_no_heavy_library(code):
    assert not _modules_after(code) & set(HEAVY)


def test_public_names_resolve_to_their_objects():
    import failpattern as fp
    from failpattern import cohort, datasets, errors, simulate, stats, study

    homes = (cohort, datasets, errors, stats, study)
    for name in fp.__all__:
        if name in ("__version__", "simulate"):
            continue
        assert any(getattr(home, name, None) is getattr(fp, name) for home in homes), name
    assert set(fp.__all__) <= set(dir(fp))
    with pytest.raises(AttributeError, match="no_such_name"):
        fp.no_such_name  # noqa: B018


def test_subpackages_are_attributes_as_with_eager_imports():
    code = ("import failpattern\nassert failpattern.stats.km.kaplan_meier is failpattern.kaplan_meier\n"
            "assert failpattern.plots.plot_km.__name__ == 'plot_km'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_simulate_is_the_function_even_after_its_subpackage_is_imported():
    code = ("import failpattern as fp\nimport failpattern.simulate.frame\n"
            "from failpattern import simulate\n"
            "assert callable(fp.simulate) and fp.simulate is simulate, fp.simulate\n"
            "assert fp.simulate.__module__ == 'failpattern.simulate'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_every_subcommand_is_registered_under_its_name():
    from failpattern.cli import COMMANDS, main

    ctx = click.Context(main)
    assert main.list_commands(ctx) == sorted(COMMANDS)
    for name in COMMANDS:
        command = main.get_command(ctx, name)
        assert isinstance(command, click.Command) and command.name == name
    assert main.get_command(ctx, "no-such-command") is None
