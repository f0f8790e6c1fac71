"""The ``bmprune`` command line (Typer + Rich), DESIGN.md §Command line."""

from __future__ import annotations

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


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
