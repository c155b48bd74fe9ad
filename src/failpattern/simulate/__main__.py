"""``python -m failpattern.simulate``: the ``failpattern simulate`` command before it is registered."""

from failpattern.cli.simulate import simulate_cmd

if __name__ == "__main__":  # pragma: no cover
    simulate_cmd(prog_name="python -m failpattern.simulate")
