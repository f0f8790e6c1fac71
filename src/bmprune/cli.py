"""The ``bmprune`` command line (Typer + Rich), DESIGN.md §Command line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="bmprune",
    help="Prune Boltzmann machines by Fisher information (Scholl, Rule & Hennig 2021).",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def version() -> None:
    """Print the bmprune version."""
    from . import __version__

    typer.echo(__version__)


# --------------------------------------------------------------------------------------------
# bmprune data fetch | info
# --------------------------------------------------------------------------------------------
data_app = typer.Typer(
    help="Download the official MNIST / CIFAR-10 files and show what is found where.",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")

_DATA_DIR_HELP = "Data directory (default: $BMPRUNE_DATA_DIR, else the user cache directory)."


@data_app.command("fetch")
def data_fetch(
    name: Annotated[str, typer.Argument(help="mnist | cifar10 (binary batches) | cifar10-python")],
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help=_DATA_DIR_HELP)] = None,
    mirror: Annotated[
        list[str] | None, typer.Option("--mirror", help="Base URL to try instead of the official one (repeatable).")
    ] = None,
    keep_archive: Annotated[
        bool, typer.Option("--keep-archive", help="Keep the CIFAR tarball after extracting it.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Download an official dataset and verify it against pinned checksums."""
    from rich.console import Console
    from rich.markup import escape

    from .data import store
    from .errors import BmpruneError

    console = Console(stderr=True)
    root = store.data_dir(data_dir)
    try:
        paths = store.fetch(name, root, mirrors=mirror or None, progress=not quiet, keep_archive=keep_archive)
    except BmpruneError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    for p in paths:
        typer.echo(f"ok  {p}")
    typer.echo(f"{name}: {len(paths)} file(s) verified in {root}")


@data_app.command("info")
def data_info(
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help=_DATA_DIR_HELP)] = None,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="Do not hash the files.")] = False,
) -> None:
    """Show which data files are found where, with their checksums verified."""
    from rich.console import Console
    from rich.table import Table

    from .data import store

    root = store.data_dir(data_dir)
    rows = store.info(root, verify=not no_verify)
    style = {"ok": "green", "mismatch": "bold red", "missing": "dim", "unverified": "yellow"}
    table = Table(title=f"bmprune data in {root}")
    table.add_column("dataset")
    table.add_column("file", overflow="fold")
    table.add_column("status")
    table.add_column("bytes", justify="right")
    for r in rows:
        try:
            shown = str(r.path.relative_to(root))
        except ValueError:
            shown = str(r.path)
        table.add_row(r.dataset, shown, f"[{style[r.status]}]{r.status}[/]", "" if r.size is None else f"{r.size:,}")
    console = Console()
    console.print(table)
    env = store.ENV_VAR
    console.print(f"{env}={'(unset)' if not os.environ.get(env) else os.environ[env]}", highlight=False)
    if any(r.status == "mismatch" for r in rows):
        console.print("[bold red]checksum mismatch:[/] `bmprune data fetch mnist|cifar10` replaces such files")
        raise typer.Exit(1)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
