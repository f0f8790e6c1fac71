"""The ``bmprune`` command line (Typer + Rich), DESIGN.md §Command line.

Errors (issue 13, item 7): every :class:`~bmprune.errors.BmpruneError` and ``OSError`` that
reaches a command — bad input, a damaged or busy run directory, a failed write — ends as one
line ``error: …`` on stderr with exit code 2; any other exception is a bug in bmprune and ends
as one line naming its type with exit code 1. ``bmprune --debug …`` shows the traceback
instead. Typer's own usage errors keep their format (exit code 2). This is done once, for
every command, by the root group (:class:`_Commands`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

_DEBUG = "bmprune.debug"


def _control_flow() -> tuple[type[BaseException], ...]:
    """Exceptions Typer/Click use to exit or report usage errors themselves (vendored Click in
    recent Typer, Click itself in older ones): passed through, never reported as errors."""
    kinds: set[type[BaseException]] = {typer.Exit, typer.Abort}
    base = getattr(getattr(typer, "exceptions", None), "TyperException", None)
    if base is not None:
        kinds.add(base)
    try:
        import click

        kinds |= {click.exceptions.Exit, click.exceptions.Abort, click.ClickException}
    except ImportError:
        pass
    return tuple(kinds)


def _one_line(text: str) -> str:
    """A message on one line: its lines joined by "; " (multi-line config errors list fields)."""
    out = ""
    for line in (x.strip() for x in str(text).splitlines()):
        if line:
            out += (" " if out.endswith(":") else "; " if out else "") + line
    return out


def _fail(exc: BaseException) -> None:
    """Print ``exc`` as one ``error:`` line on stderr and exit: 2 for bmprune's errors and OSError,
    130 for an interrupt, 1 (a bug) for anything else."""
    from rich.console import Console
    from rich.markup import escape

    from .errors import BmpruneError

    if isinstance(exc, KeyboardInterrupt):
        line, code = "interrupted (a run directory resumes from its last completed stage)", 130
    elif isinstance(exc, (BmpruneError, OSError)):
        line, code = _one_line(str(exc)) or type(exc).__name__, 2
    elif isinstance(exc, MemoryError):
        line, code = "out of memory: reduce seeds, criteria, sampling.chunk_size or the data size", 2
    else:
        line = (f"internal error, a bug in bmprune ({type(exc).__name__}: {_one_line(str(exc))}); "
                "please report it with the output of `bmprune --debug …`")
        code = 1
    Console(stderr=True).print(f"[red]error:[/red] {escape(line)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


class _Commands(TyperGroup):
    """The root group: turns any exception of a command into one line and an exit code (:func:`_fail`)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except _control_flow():
            raise
        except (Exception, KeyboardInterrupt) as exc:
            if ctx.meta.get(_DEBUG):
                raise
            _fail(exc)


app = typer.Typer(
    name="bmprune",
    help="Prune Boltzmann machines by Fisher information (Scholl, Rule & Hennig 2021).",
    no_args_is_help=True,
    add_completion=False,
    cls=_Commands,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback of an error instead of one line.")] = False,
) -> None:
    """Prune Boltzmann machines by Fisher information (Scholl, Rule & Hennig 2021)."""
    ctx.meta[_DEBUG] = debug


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
    from .data import store

    root = store.data_dir(data_dir)
    paths = store.fetch(name, root, mirrors=mirror or None, progress=not quiet, keep_archive=keep_archive)
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


def _criteria_list(criteria: str | None) -> list[str] | None:
    """``--criteria a,b`` as a list; ConfigError for an empty list or an empty entry."""
    from .errors import ConfigError

    if criteria is None:
        return None
    crit = [c.strip() for c in criteria.split(",")]
    if not any(crit):
        raise ConfigError(f"--criteria {criteria!r} names no criterion: give a comma-separated list, e.g. "
                          "variance_fi,random_weights (see `bmprune presets`)")
    if not all(crit):
        raise ConfigError(f"--criteria {criteria!r} has an empty entry (a stray comma?)")
    return crit


def _run_study(config, out: Path | None, seeds, criteria, iterations, device, quiet, threads=None,
               verify: bool = True) -> Path:
    from rich.console import Console
    from rich.markup import escape
    import torch

    from .experiments import run
    from .experiments.rundir import run_dir_writable

    crit = _criteria_list(criteria)
    if threads is not None:
        torch.set_num_threads(threads)
    console = Console(stderr=True)
    # a bar redrawn in place shows nothing in a redirected log (nohup, a batch job): plain lines there
    with _RichProgress(console, quiet or not console.is_terminal) as progress:
        result = run(config, out, seeds=seeds, criteria=crit, iterations=iterations, device=device,
                     progress=progress, verify_data=verify)
    console.print(f"finished in {result.seconds:.0f} s; results in [bold]{escape(str(result.out_dir))}[/bold]",
                  soft_wrap=True)
    from .report import write_report

    if not run_dir_writable(result.out_dir):   # a finished run reopened read-only: its report stays as it is
        console.print(f"report: not rewritten ({escape(str(result.out_dir))} is read-only); `bmprune report "
                      f"{escape(str(result.out_dir))} --out DIR` writes one elsewhere", highlight=False, soft_wrap=True)
        return result.out_dir
    path = write_report(result.out_dir)
    console.print(f"report: [bold]{escape(str(path))}[/bold]", soft_wrap=True)
    return result.out_dir


_NO_VERIFY_HELP = "Do not check the real data files (MNIST, CIFAR-10) against their pinned checksums."


@app.command("run")
def run_cmd(
    config: Annotated[str, typer.Argument(help="A preset name (see `bmprune presets`) or a config.toml path.")],
    seeds: Annotated[int | None, typer.Option(help="Number of seeds (replicas per criterion).")] = None,
    criteria: Annotated[str | None, typer.Option(help="Comma-separated criteria, e.g. variance_fi,random_weights.")] = None,
    iterations: Annotated[int | None, typer.Option(help="Pruning iterations (more than an existing --out run has extends it).")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    out: Annotated[Path | None, typer.Option(help="Run directory; an existing one of the same config is resumed.")] = None,
    quiet: Annotated[bool, typer.Option(help="Plain log lines instead of progress bars (automatic when stderr is not a terminal).")] = False,
    threads: Annotated[int | None, typer.Option(min=1, max=4096, help=_THREADS_HELP)] = None,
    no_verify: Annotated[bool, typer.Option("--no-verify", help=_NO_VERIFY_HELP)] = False,
) -> None:
    """Run (or resume) a pruning study and write its run directory."""
    _run_study(config, out, seeds, criteria, iterations, device, quiet, threads, verify=not no_verify)


@app.command("report")
def report_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `bmprune run`.")],
    out: Annotated[Path | None, typer.Option(help="Write figures/ and report.md here instead of into the run "
                                                  "directory (e.g. a read-only one).")] = None,
) -> None:
    """Regenerate a run's figures (figures/*.png) and report.md from its metrics and checkpoints."""
    from .errors import ConfigError
    from .report import write_report

    if (run_dir / "sweep.toml").is_file():   # a sweep directory (issue 17): its summary report
        from .report.sweep import write_sweep_report

        if out is not None:
            raise ConfigError("--out applies to a run directory; a sweep's report is written into the sweep directory")
        path = write_sweep_report(run_dir)
    else:
        path = write_report(run_dir, out_dir=out)
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
    threads: Annotated[int | None, typer.Option(min=1, max=4096, help=_THREADS_HELP)] = None,
    no_verify: Annotated[bool, typer.Option("--no-verify", help=_NO_VERIFY_HELP)] = False,
) -> None:
    """A small study on embedded data (no download): minutes on a laptop CPU; writes a report."""
    _run_study("demo", out, None, None, None, "cpu", quiet, threads, verify=not no_verify)


# --------------------------------------------------------------------------------------------
# bmprune sweep (issue 17): a grid of studies as Dask tasks, one run directory per point.
# Everything of the command is in this block; the work is bmprune.experiments.sweep.
# --------------------------------------------------------------------------------------------
class _SweepProgress:
    """Points done / running / failed: a live Rich bar with a line per running point on a
    terminal, plain timestamped lines otherwise (a redirected log, a batch job)."""

    def __init__(self, console, plain: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console, self.plain = console, plain
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=console, disable=plain, transient=False)
        self.total_task = None
        self.rows: dict[str, int] = {}
        self.done = self.failed = self.total = 0

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        self.bar.__exit__(*exc)

    def _counts(self) -> str:
        return f"points: {self.done} done · {len(self.rows)} running · {self.failed} failed"

    def _log(self, msg: str) -> None:
        import time as _time

        if self.plain:
            print(f"{_time.strftime('%H:%M:%S')} {msg}", file=self.console.file, flush=True)

    def _row(self, point: str, text: str) -> None:
        from rich.markup import escape

        desc = f"  [dim]{escape(point)}[/dim] {escape(text)}"
        if point not in self.rows:
            self.rows[point] = self.bar.add_task(desc, total=None)
        else:
            self.bar.update(self.rows[point], description=desc)

    def _finish_row(self, point: str) -> None:
        task = self.rows.pop(point, None)
        if task is not None:
            self.bar.remove_task(task)

    def __call__(self, event: str, **info) -> None:
        if event == "sweep":
            self.total, self.done = info["total"], info["skipped"]
            self._log(f"sweep of {info['total']} points into {info['out_dir']}: {info['skipped']} already finished, "
                      f"{info['todo']} to run")
            if not self.plain:
                self.console.print(f"sweep of {info['total']} points: {info['skipped']} already finished, "
                                   f"{info['todo']} to run", highlight=False)
                self.total_task = self.bar.add_task(self._counts(), total=info["total"], completed=info["skipped"])
            return
        if event == "cluster":
            self._log(f"on a {info['where']}")
        elif event == "point_start":
            again = f" (attempt {info['attempt']})" if info.get("attempt", 1) > 1 else ""
            self._log(f"{info['point']}: started{again}")
            self._row(info["point"], f"started{again}")
        elif event == "point_resume":
            self._log(f"{info['point']}: resuming after {info['done']} of {info['total']} stages")
        elif event == "point_stage":
            text = f"stage {info['index'] + 1}/{info['total']}: iteration {info['iteration']} · {info['stage']}"
            self._log(f"{info['point']}: {text}")
            self._row(info["point"], text)
        elif event == "point_done":
            self.done += 1
            self._finish_row(info["point"])
            self._log(f"{info['point']}: finished in {info['seconds']:.0f} s ({self._counts()})")
        elif event == "point_failed":
            self.failed += 1
            self._finish_row(info["point"])
            self._log(f"{info['point']}: FAILED: {info['error']}")
            if not self.plain:
                from rich.markup import escape

                self.console.print(f"[red]failed[/red] {escape(info['point'])}: {escape(info['error'])}",
                                   highlight=False, soft_wrap=True)
        if self.total_task is not None:
            self.bar.update(self.total_task, completed=self.done + self.failed, description=self._counts())


@app.command("sweep")
def sweep_cmd(
    sweep_file: Annotated[Path, typer.Argument(help="A sweep file (TOML) with base, set and grid; see docs/sweeps.md.")],
    out: Annotated[Path, typer.Option(help="Sweep directory: one run directory per point and the merged metrics; "
                                           "running again resumes it.")],
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes of the local Dask cluster "
                                                            "(default: one per core, at most one per point).")] = None,
    scheduler: Annotated[str | None, typer.Option(help="Address of a running Dask scheduler (tcp://host:8786) to "
                                                       "use instead of a local cluster.")] = None,
    threads_per_worker: Annotated[int, typer.Option(min=1, help="torch threads per point; each worker runs one "
                                                                "point at a time.")] = 1,
    device: Annotated[str, typer.Option(help="cpu or cuda, for every point.")] = "cpu",
    quiet: Annotated[bool, typer.Option(help="Plain log lines instead of progress bars (automatic when stderr is "
                                             "not a terminal).")] = False,
    metric: Annotated[str | None, typer.Option(help="Metric of the summary figure (default: exact_kl, "
                                                    "encoding_error, … as recorded).")] = None,
    x: Annotated[str | None, typer.Option("--x", help="Grid key on the summary figure's x axis.")] = None,
) -> None:
    """Run (or resume) a grid of studies on Dask, one run directory per point; merge and summarise.

    Exit code 2 when a point failed (the others still run) or on a bad sweep file.
    """
    from rich.console import Console
    from rich.markup import escape

    from .errors import BmpruneError
    from .experiments.sweep import _one_line, run_sweep

    console = Console(stderr=True)
    try:
        with _SweepProgress(console, quiet or not console.is_terminal) as progress:
            result = run_sweep(sweep_file, out, workers=workers, scheduler=scheduler,
                               threads_per_worker=threads_per_worker, device=device, progress=progress)
        n = len(result.sweep.points)
        console.print(f"sweep finished in {result.seconds:.0f} s: {n} points, {len(result.done)} done "
                      f"({len(result.skipped)} already finished), {len(result.failed)} failed; results in "
                      f"[bold]{escape(str(result.out_dir))}[/bold]", highlight=False, soft_wrap=True)
        for name, error in result.failed.items():
            console.print(f"  [red]failed[/red] {escape(name)}: {escape(error)}", highlight=False, soft_wrap=True)
        if result.done:
            from .report.sweep import write_sweep_report

            console.print(f"report: [bold]{escape(str(write_sweep_report(result.out_dir, metric=metric, x=x)))}"
                          "[/bold]", highlight=False, soft_wrap=True)
    except (BmpruneError, OSError) as exc:
        console.print(f"[red]error:[/red] {escape(_one_line(str(exc)) or repr(exc))}", highlight=False,
                      soft_wrap=True)
        raise typer.Exit(2) from None
    if result.failed:
        raise typer.Exit(2)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
