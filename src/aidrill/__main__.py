from aidrill.cli.main import cli

cli()
