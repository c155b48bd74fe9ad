"""The ``failpattern`` command line.

Each sub-command is a thin layer over the public API: it parses options,
calls the library, prints, and turns :class:`~failpattern.errors.FailpatternError`
into a message on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import click

from failpattern._version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="failpattern")
def main() -> None:
    """failpattern: patterns of failure after crizotinib (Ni et al. 2019), re-analysed.

    Kaplan-Meier, log-rank, Cox, cumulative incidence, Gray's test and
    Fine-Gray in the conventions of R, SPSS and Stata.
    """


def _register() -> None:
    # imported here so that ``failpattern --version`` does not pay for pandas
    from failpattern.cli.analyze import analyze
    from failpattern.cli.card import card
    from failpattern.cli.reproduce import check, reproduce
    from failpattern.cli.simulate import calibrate_cmd, simulate_cmd
    from failpattern.cli.study import study_cmd

    main.add_command(reproduce)
    main.add_command(check)
    main.add_command(analyze)
    main.add_command(card)
    main.add_command(simulate_cmd)
    main.add_command(calibrate_cmd)
    main.add_command(study_cmd)


_register()

if __name__ == "__main__":  # pragma: no cover
    main()
