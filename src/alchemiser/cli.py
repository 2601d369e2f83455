"""The `alchemiser` command.

Each command is a thin shell: it parses arguments, calls into the package and
prints. Heavy imports happen inside the commands so that `--help` stays fast.
"""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="alchemiser")
def main() -> None:
    """Run Composer strategies on your own Alpaca account, each in its own book."""


if __name__ == "__main__":
    main()
