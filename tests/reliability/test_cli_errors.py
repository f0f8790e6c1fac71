"""Issue 13, item 7: every error of every command is one line on stderr and exit code 2
(1 for a bug), ``--debug`` shows the traceback; run directories are left as they were."""

from __future__ import annotations

import errno

import pytest
import tomli_w
from reliability.runs import MICRO, snapshot
from typer.testing import CliRunner

import bmprune as bp
from bmprune.cli import app
from bmprune.experiments import load_config

cli = CliRunner()


def _one_error_line(res, code=2, match=None):
    assert res.exit_code == code, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.output
    if match:
        assert match in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def micro_toml(tmp_path):
    p = tmp_path / "micro.toml"
    p.write_text(tomli_w.dumps(load_config(MICRO).model_dump(mode="json", exclude_none=True)))
    return p


@pytest.mark.timeout(60)
@pytest.mark.parametrize("args, match", [
    (["--criteria", ""], "names no criterion"),
    (["--criteria", ","], "names no criterion"),
    (["--criteria", "variance_fi,"], "empty entry"),
    (["--criteria", "magic"], "unknown criteria"),
    (["--iterations", "99999999999999999999999"], "iterations"),
    (["--iterations", "0"], "iterations"),
    (["--seeds", "0"], "seeds"),
    (["--seeds", "100000000"], "seeds"),
    (["--device", "tpu"], "device"),
    (["--device", "cuda:7"], "device"),
])
def test_bad_run_options(tmp_path, micro_toml, args, match):
    out = tmp_path / "run"
    res = cli.invoke(app, ["run", str(micro_toml), "--out", str(out), *args])
    _one_error_line(res, match=match)
    assert not out.exists()


@pytest.mark.timeout(60)
def test_a_study_larger_than_the_memory(tmp_path, micro_toml, monkeypatch):
    monkeypatch.setenv("BMPRUNE_MEMORY_LIMIT", "10M")
    res = cli.invoke(app, ["run", str(micro_toml), "--out", str(tmp_path / "run"), "--seeds", "50"])
    line = _one_error_line(res, match="the study needs about")
    assert "more than the 10.5 MB available: reduce seeds (50)" in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args", [["--threads", "0"], ["--threads", "99999999999999999999"], ["--seeds", "many"]])
def test_usage_errors_keep_typers_exit_code(tmp_path, micro_toml, args):
    res = cli.invoke(app, ["run", str(micro_toml), "--out", str(tmp_path / "run"), *args])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("config, match", [
    ("no-such-preset", "neither a preset"),
    ("{tmp}", "a directory, not a config file"),
    ("{tmp}/bad.toml", "not UTF-8"),
])
def test_bad_config_arguments(tmp_path, config, match):
    (tmp_path / "bad.toml").write_bytes(b"name = '\xff'")
    res = cli.invoke(app, ["run", config.format(tmp=tmp_path), "--out", str(tmp_path / "run")])
    _one_error_line(res, match=match)


def test_run_into_a_file_or_a_foreign_directory(tmp_path, micro_toml):
    (tmp_path / "f").write_text("x")
    _one_error_line(cli.invoke(app, ["run", str(micro_toml), "--out", str(tmp_path / "f")]), match="is a file")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "notes").write_text("x")
    _one_error_line(cli.invoke(app, ["run", str(micro_toml), "--out", str(tmp_path / "d")]), match="non-empty")
    assert (tmp_path / "f").read_text() == (tmp_path / "d" / "notes").read_text() == "x"


def test_run_on_a_damaged_run_directory(partial, micro_toml):
    (partial / "state.json").write_text("{")
    before = snapshot(partial)
    _one_error_line(cli.invoke(app, ["run", str(micro_toml), "--out", str(partial)]), match="restore state.json")
    assert snapshot(partial) == before


def test_different_config_is_one_line(partial, micro_toml):
    before = snapshot(partial)
    line = _one_error_line(cli.invoke(app, ["run", str(micro_toml), "--out", str(partial), "--seeds", "2"]),
                           match="different config")
    assert "seeds: 1 (existing) vs 2 (requested)" in line
    assert snapshot(partial) == before


@pytest.mark.parametrize("make, match", [
    (lambda d: d / "missing", "is not a directory"),
    (lambda d: d, "no config.toml"),
])
def test_report_of_something_that_is_not_a_run(tmp_path, make, match):
    _one_error_line(cli.invoke(app, ["report", str(make(tmp_path))]), match=match)


def test_report_of_a_run_with_a_damaged_metrics_table(finished):
    (finished / "metrics.parquet").write_bytes(b"PAR1 garbage")
    before = snapshot(finished)
    _one_error_line(cli.invoke(app, ["report", str(finished)]), match="not a readable parquet file")
    assert snapshot(finished) == before


def test_report_out_naming_a_file(finished, tmp_path):
    (tmp_path / "f").write_text("x")
    _one_error_line(cli.invoke(app, ["report", str(finished), "--out", str(tmp_path / "f")]), match="is a file")


def test_os_error_while_writing_the_report(finished, monkeypatch):
    from bmprune import report

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(report, "write_report", full)
    _one_error_line(cli.invoke(app, ["report", str(finished)]), match="No space left on device")


def test_data_commands(tmp_path):
    _one_error_line(cli.invoke(app, ["data", "fetch", "imagenet", "--data-dir", str(tmp_path)]), match="imagenet")


def test_sweep_errors_are_one_line_too(tmp_path):
    _one_error_line(cli.invoke(app, ["sweep", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "s")]))


def test_a_bug_is_exit_1_and_debug_shows_the_traceback(tmp_path, monkeypatch):
    import bmprune.experiments as ex

    def bug(*a, **k):
        return {}["oops"]

    monkeypatch.setattr(ex, "run", bug)
    line = _one_error_line(cli.invoke(app, ["run", "demo", "--out", str(tmp_path / "r")]), code=1)
    assert "a bug in bmprune" in line and "KeyError" in line and "--debug" in line
    res = cli.invoke(app, ["--debug", "run", "demo", "--out", str(tmp_path / "r")])
    assert isinstance(res.exception, KeyError)
    monkeypatch.undo()
    res = cli.invoke(app, ["--debug", "run", "nope", "--out", str(tmp_path / "r")])
    assert isinstance(res.exception, bp.ConfigError)


def test_no_verify_reaches_run(monkeypatch, tmp_path):
    import bmprune.experiments as ex

    seen = {}

    def fake(config, out, **kw):
        seen.update(kw)
        raise bp.ConfigError("stop here")

    monkeypatch.setattr(ex, "run", fake)
    cli.invoke(app, ["run", "demo", "--no-verify", "--out", str(tmp_path / "r")])
    assert seen["verify_data"] is False
    cli.invoke(app, ["demo", "--no-verify", "--out", str(tmp_path / "r")])
    assert seen["verify_data"] is False
    cli.invoke(app, ["demo", "--out", str(tmp_path / "r")])
    assert seen["verify_data"] is True


def test_interrupt_is_one_line_and_the_run_resumes(tmp_path, micro_toml, monkeypatch, reference):
    import bmprune.experiments as ex

    real = ex.run

    def interrupted(config, out, **kw):
        def progress(event, **info):
            if event == "stage" and info["index"] == 2:
                raise KeyboardInterrupt
        return real(config, out, **{**kw, "progress": progress})

    monkeypatch.setattr(ex, "run", interrupted)
    out = tmp_path / "run"
    _one_error_line(cli.invoke(app, ["run", str(micro_toml), "--out", str(out)]), code=130, match="interrupted")
    monkeypatch.undo()
    res = cli.invoke(app, ["run", str(micro_toml), "--out", str(out)])
    assert res.exit_code == 0, res.output
    import pandas as pd
    from reliability.runs import sorted_metrics

    pd.testing.assert_frame_equal(sorted_metrics(pd.read_parquet(out / "metrics.parquet")), sorted_metrics(reference))
