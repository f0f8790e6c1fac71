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


# --------------------------------------------------------------------------------------------
# bmprune run | presets | demo
# --------------------------------------------------------------------------------------------
_THREADS_HELP = ("CPU threads for torch (default: torch's choice). Use 1 when other jobs share the "
                 "cores: small batched kernels slow down many-fold when threads are oversubscribed.")


class _RichProgress:
    """Turns runner events into Rich progress bars (stages of the study, epochs of training)."""

    def __init__(self, console, quiet: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.quiet = quiet
        self.console = console
        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                            console=console, disable=quiet, transient=False)
        self.stages = None
        self.detail = None

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        self.bar.__exit__(*exc)

    def __call__(self, event: str, **info) -> None:
        if event == "resume":
            self._log(f"resuming: {info['done']} of {info['total']} stages already done")
        elif event == "stage":
            if self.quiet:
                import time as _time
                self._log(f"{_time.strftime('%H:%M:%S')} stage {info['index'] + 1}/{info['total']}: "
                          f"iteration {info['iteration']} · {info['stage']}")
                return
            if self.stages is None:
                self.stages = self.bar.add_task("study", total=info["total"], completed=info["index"])
                self.detail = self.bar.add_task("", total=None)
            self.bar.update(self.stages, completed=info["index"],
                            description=f"iteration {info['iteration']} · {info['stage']}")
            self.bar.update(self.detail, description="  working", completed=0, total=None)
        elif event == "epoch":
            if self.detail is None:   # quiet: stage lines only
                return
            self.bar.update(self.detail, description=f"  {info['phase']} epoch {info['epoch'] + 1}",
                            completed=info["epoch"] + 1)
        elif event == "done":
            if self.stages is not None:
                self.bar.update(self.stages, completed=self.bar.tasks[self.stages].total, description="study done")
                self.bar.update(self.detail, visible=False)

    def _log(self, msg: str) -> None:
        if self.quiet:
            print(msg, flush=True)
        else:
            self.console.print(msg)


def _run_study(config, out: Path | None, seeds, criteria, iterations, device, quiet, threads=None) -> Path:
    from rich.console import Console
    import torch

    if threads is not None:
        torch.set_num_threads(threads)

    from .errors import BmpruneError
    from .experiments import run

    console = Console(stderr=True)
    crit = [c.strip() for c in criteria.split(",")] if criteria else None
    try:
        # a bar redrawn in place shows nothing in a redirected log (nohup, a batch job): plain lines there
        with _RichProgress(console, quiet or not console.is_terminal) as progress:
            result = run(config, out, seeds=seeds, criteria=crit, iterations=iterations, device=device,
                         progress=progress)
    except BmpruneError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    console.print(f"finished in {result.seconds:.0f} s; results in [bold]{result.out_dir}[/bold]")
    try:
        from .report import write_report
    except ImportError:   # the report module arrives with the figures
        return result.out_dir
    path = write_report(result.out_dir)
    console.print(f"report: [bold]{path}[/bold]")
    return result.out_dir


@app.command("run")
def run_cmd(
    config: Annotated[str, typer.Argument(help="A preset name (see `bmprune presets`) or a config.toml path.")],
    seeds: Annotated[int | None, typer.Option(help="Number of seeds (replicas per criterion).")] = None,
    criteria: Annotated[str | None, typer.Option(help="Comma-separated criteria, e.g. variance_fi,random_weights.")] = None,
    iterations: Annotated[int | None, typer.Option(help="Pruning iterations (more than an existing --out run has extends it).")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    out: Annotated[Path | None, typer.Option(help="Run directory; an existing one of the same config is resumed.")] = None,
    quiet: Annotated[bool, typer.Option(help="Plain log lines instead of progress bars (automatic when stderr is not a terminal).")] = False,
    threads: Annotated[int | None, typer.Option(min=1, help=_THREADS_HELP)] = None,
) -> None:
    """Run (or resume) a pruning study and write its run directory."""
    _run_study(config, out, seeds, criteria, iterations, device, quiet, threads)


@app.command("report")
def report_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `bmprune run`.")],
) -> None:
    """Regenerate a run's figures (figures/*.png) and report.md from its metrics and checkpoints."""
    from rich.console import Console
    from rich.markup import escape

    from .errors import BmpruneError
    from .report import write_report

    try:
        path = write_report(run_dir)
    except BmpruneError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    typer.echo(str(path))


@app.command()
def presets() -> None:
    """List the presets with what they run and how long they take."""
    from rich.console import Console
    from rich.table import Table

    from .experiments import PRESETS, get_preset

    table = Table(show_lines=True)
    table.add_column("preset", no_wrap=True, style="bold")
    for col in ("model", "criteria × seeds", "description", "expected time"):
        table.add_column(col)
    for name in PRESETS:
        c = get_preset(name)
        sizes = "–".join(str(n) for n in c.model.hidden)
        table.add_row(name, f"{c.model.kind.upper()} {c.data.source} → {sizes}",
                      f"{len(c.pruning.criteria)} × {c.seeds}", c.description, c.expected_time)
    Console().print(table)


@app.command()
def demo(
    out: Annotated[Path | None, typer.Option(help="Run directory (default: a fresh one under runs/).")] = None,
    quiet: Annotated[bool, typer.Option(help="Plain log lines instead of progress bars (automatic when stderr is not a terminal).")] = False,
    threads: Annotated[int | None, typer.Option(min=1, help=_THREADS_HELP)] = None,
) -> None:
    """A small study on embedded data (no download): minutes on a laptop CPU; writes a report."""
    _run_study("demo", out, None, None, None, "cpu", quiet, threads)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
