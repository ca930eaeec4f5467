"""``aidrill keygen``: the Ed25519 key pair a team signs its reports with."""

from __future__ import annotations

from pathlib import Path

import click

from aidrill.cli._common import console, reports_errors
from aidrill.report import generate_key_pair


@click.command()
@click.argument(
    "private_key",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("aidrill-signing.key"),
)
@reports_errors
def keygen(private_key: Path) -> None:
    """Write a new signing key (readable by you only) and its public key (KEY.pub).

    Keep the private key where the team keeps secrets; give auditors the .pub file."""
    public = generate_key_pair(private_key)
    console.print(f"private key: {private_key} (keep it secret)")
    console.print(f"public key:  {public} (give it to whoever verifies: aidrill verify --key)")
