"""Figures, tables and report.md regenerated from a run directory (issue 7; SPEC §6–§7).

>>> from bmprune.report import write_report
>>> write_report("runs/demo-20250101-000000")          # doctest: +SKIP
PosixPath('runs/demo-20250101-000000/report.md')

* :func:`write_report` — every figure that applies, plus ``report.md``; ``bmprune report DIR``.
* :mod:`~bmprune.report.figures` — ``fig1_fim``, ``fig2_likelihood``, ``fig3_pruning``,
  ``fig4_generation``, ``figS1_activity`` (matplotlib Figures, no pyplot).
* :mod:`~bmprune.report.tables` — ``table1_hidden_units``, ``metric_table``, ``summarise``, …
"""

from .figures import (
    CRITERION_STYLE,
    criterion_style,
    fig1_fim,
    fig2_likelihood,
    fig3_pruning,
    fig4_generation,
    figS1_activity,
)
from .report import FIGURES, ReportError, Run, load_run, write_report
from .tables import (
    baselines,
    format_mean_sd,
    metric_table,
    summarise,
    table1_hidden_units,
    to_markdown,
    versus_weights,
)

__all__ = [
    "CRITERION_STYLE", "FIGURES", "ReportError", "Run", "baselines", "criterion_style", "fig1_fim", "fig2_likelihood",
    "fig3_pruning", "fig4_generation", "figS1_activity", "format_mean_sd", "load_run", "metric_table", "summarise",
    "table1_hidden_units", "to_markdown", "versus_weights", "write_report",
]
