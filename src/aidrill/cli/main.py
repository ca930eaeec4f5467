"""The ``aidrill`` command group; each command lives in its own module."""

from __future__ import annotations

import click

from aidrill.cli._common import configure_logging
from aidrill.cli.demo import demo
from aidrill.cli.drill import drill
from aidrill.cli.keygen import keygen
from aidrill.cli.lab import lab
from aidrill.cli.posture import posture
from aidrill.cli.report import report
from aidrill.cli.run import run
from aidrill.cli.tabletop import tabletop
from aidrill.cli.validate import validate
from aidrill.cli.verify import verify


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log what happens at INFO level.")
@click.version_option(package_name="aidrill")
def cli(verbose: bool) -> None:
    """Disaster-recovery drills for AI systems, with measured RTO and RPO."""
    configure_logging(verbose)


cli.add_command(demo)
cli.add_command(drill)
cli.add_command(keygen)
cli.add_command(lab)
cli.add_command(posture)
cli.add_command(run)
cli.add_command(report)
cli.add_command(tabletop)
cli.add_command(validate)
cli.add_command(verify)
