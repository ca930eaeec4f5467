"""What every command shares: error reporting, logging set-up and common options."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from aidrill.errors import DrillError

F = TypeVar("F", bound=Callable[..., Any])
console = Console(stderr=False, highlight=False)
errors = Console(stderr=True, highlight=False)


def reports_errors(command: F) -> F:
    """Turn a DrillError into one clear line and its exit code, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except DrillError as exc:
            errors.print(f"[bold red]error:[/] {exc}", markup=True, soft_wrap=True)
            raise SystemExit(exc.exit_code) from None
        except KeyboardInterrupt:
            errors.print("interrupted", soft_wrap=True)
            raise SystemExit(130) from None

    return wrapper  # type: ignore[return-value]


def configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler()
    handler.setLevel(logging.INFO if verbose else logging.ERROR)
    if not verbose:
        # chaostoolkit logs a deviation at CRITICAL; aidrill's own summary says it, and
        # chaostoolkit's full log is in each run's run.log.
        handler.addFilter(lambda record: not record.name.startswith("chaostoolkit"))
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


state_dir_option = click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    envvar="AIDRILL_STATE_DIR",
    default=Path(".aidrill"),
    show_default=True,
    help="Where the lab keeps its state.",
)
plan_option = click.option(
    "--plan",
    "plan_path",
    type=click.Path(path_type=Path),
    envvar="AIDRILL_PLAN",
    default=Path("drplan.yaml"),
    show_default=True,
    help="The DR plan ($AIDRILL_PLAN when set).",
)
reports_option = click.option(
    "--reports",
    "reports_dir",
    type=click.Path(path_type=Path),
    default=Path("reports"),
    show_default=True,
    help="Where run directories are written (runs/<id>/).",
)
