"""The ``failpattern`` command line.

Each sub-command is a thin layer over the public API: it parses options,
calls the library, prints, and turns :class:`~failpattern.errors.FailpatternError`
into a message on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import importlib

import click

from failpattern._version import __version__


#: Sub-command name -> (module, attribute). Modules are imported when the command is looked
#: up, so ``failpattern --version`` does not pay for pandas, scipy or matplotlib.
COMMANDS = {
    "reproduce": ("failpattern.cli.reproduce", "reproduce"),
    "check": ("failpattern.cli.reproduce", "check"),
    "analyze": ("failpattern.cli.analyze", "analyze"),
    "card": ("failpattern.cli.card", "card"),
    "simulate": ("failpattern.cli.simulate", "simulate_cmd"),
    "calibrate": ("failpattern.cli.simulate", "calibrate_cmd"),
    "study": ("failpattern.cli.study", "study_cmd"),
}


class _LazyGroup(click.Group):
    """A group whose sub-commands are imported on first look-up (see :data:`COMMANDS`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, attribute = COMMANDS[cmd_name]
            command = getattr(importlib.import_module(module), attribute)
            if command.name != cmd_name:
                raise RuntimeError(f"{module}.{attribute} is named {command.name!r}, not {cmd_name!r}")
            self.add_command(command)
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="failpattern")
def main() -> None:
    """failpattern: patterns of failure after crizotinib (Ni et al. 2019), re-analysed.

    Kaplan-Meier, log-rank, Cox, cumulative incidence, Gray's test and
    Fine-Gray in the conventions of R, SPSS and Stata.
    """


if __name__ == "__main__":  # pragma: no cover
    main()
