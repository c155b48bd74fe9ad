"""The console command: version and help, no traceback."""

import subprocess
import sys

from click.testing import CliRunner

import failpattern
from failpattern.cli import main


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert failpattern.__version__ in result.output


def test_help():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0 and "Kaplan-Meier" in result.output


def test_module_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "failpattern", "--version"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and failpattern.__version__ in out.stdout
