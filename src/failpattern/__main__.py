"""``python -m failpattern`` runs the command line."""

from failpattern.cli import main

main(prog_name="failpattern")
