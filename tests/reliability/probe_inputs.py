"""Probe bmprune with malformed inputs through the CLI and the Python API (issue 13, "Must show").

Every case is an input that should be refused. Outcomes:

* typed      — a BmpruneError (API), or exit code 2 with one ``error:`` line / a Typer usage
               error (CLI);
* traceback  — any other exception (API), or a CLI exit code other than 2 / more than one
               error line / a traceback in the output;
* silent     — accepted without an error;
* lost       — an error, but a file the case started from changed or vanished (bytes or
               mtime; lock files aside), or a run's completed rows went missing.

Run: ``python tests/reliability/probe_inputs.py`` (about a minute; not collected by pytest). Prints one line per case that is
not ``typed`` and the table by kind.
"""

from __future__ import annotations

import collections
import copy
import gzip
import hashlib
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np
import pandas as pd
import tomli_w
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

import bmprune as bp
from bmprune.cli import app
from bmprune.errors import BmpruneError
from bmprune.experiments import load_config
from bmprune.experiments.rundir import LOCK_FILE, OWNER_FILE

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # run as a script: tests/ for reliability.runs
from reliability.runs import MICRO, write_checkpoint

torch.set_num_threads(1)
ROOT = Path(tempfile.mkdtemp(prefix="bmprune-probe-"))
os.environ["BMPRUNE_CACHE_DIR"] = str(ROOT / "cache")
cli = CliRunner()


results: list[tuple[str, str, str, str]] = []     # kind, case, outcome, detail
_n = [0]


def fresh(name: str = "d") -> Path:
    _n[0] += 1
    return ROOT / f"{_n[0]:04d}-{name}"


def snapshot(root: Path) -> dict:
    if root is None or not root.exists():
        return {}
    if root.is_file():
        return {"": (hashlib.sha256(root.read_bytes()).hexdigest(), root.stat().st_mtime_ns)}
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file() and p.name not in (LOCK_FILE, OWNER_FILE)}


def record(kind: str, case: str, outcome: str, detail: str = "") -> None:
    results.append((kind, case, outcome, detail))
    if outcome != "typed" or VERBOSE:
        print(f"  {outcome.upper():9s} [{kind}] {case}: {detail[:300]}", flush=True)


VERBOSE = "-v" in sys.argv


class _TooLong(BaseException):
    """Raised by the alarm: the case was accepted and started real work."""


def _alarm(signum, frame):
    raise _TooLong


signal.signal(signal.SIGALRM, _alarm)


def api(kind: str, case: str, fn, keep: Path | None = None) -> None:
    """Call ``fn``; classify its outcome; ``keep``: a path whose files must be unchanged after an error."""
    before = snapshot(keep)
    signal.alarm(60)
    try:
        fn()
    except _TooLong:
        record(kind, case, "silent", "accepted: still running after 60 s")
        return
    except BmpruneError as exc:
        after = snapshot(keep)
        if keep is not None and after != before:
            record(kind, case, "lost", f"{type(exc).__name__}: files changed {sorted(set(before.items()) ^ set(after.items()))[:3]}")
        else:
            record(kind, case, "typed", f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001
        record(kind, case, "traceback", f"{type(exc).__name__}: {exc} | {traceback.format_exc(limit=-2)!r}")
    else:
        record(kind, case, "silent", "accepted")
    finally:
        signal.alarm(0)


def run_cli(kind: str, case: str, args: list[str], keep: Path | None = None) -> None:
    before = snapshot(keep)
    res = cli.invoke(app, args)
    out, err = res.output, res.stderr
    errors = [line for line in err.strip().splitlines() if line.startswith("error:")]
    usage = res.exit_code == 2 and ("Usage:" in err or "Invalid value" in err or "No such option" in err)
    if res.exit_code == 0:
        record(kind, case, "silent", out[-200:])
    elif "Traceback" in out or (res.exception is not None and not isinstance(res.exception, SystemExit)):
        record(kind, case, "traceback", f"exit {res.exit_code}: {res.exception!r} {out[-300:]}")
    elif res.exit_code == 2 and (len(errors) == 1 and len(err.strip().splitlines()) == 1 or usage):
        if keep is not None and snapshot(keep) != before:
            record(kind, case, "lost", "files changed")
        else:
            record(kind, case, "typed", (errors or [err.strip()[-200:]])[0])
    else:
        record(kind, case, "traceback", f"exit {res.exit_code}, {len(errors)} error lines: {err[-300:]}")


def mutate(cfg: dict, key: str, value) -> dict:
    cfg = copy.deepcopy(cfg)
    node = cfg
    *parents, last = key.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    if value is ...:
        node.pop(last, None)
    else:
        node[last] = value
    return cfg


def toml_file(cfg: dict, name="c.toml") -> Path:
    p = fresh("cfg") / name
    p.parent.mkdir(parents=True)
    p.write_text(tomli_w.dumps(load_config(cfg).model_dump(mode="json", exclude_none=True)))
    return p


# ------------------------------------------------------------------------------------ configs
def probe_configs() -> None:
    K = "config value (API)"
    bad = [
        ("name", ""), ("name", "../../escape"), ("name", "a/b"), ("name", "x" * 300), ("name", " lead"), ("name", "nul\0"),
        ("name", 5), ("seeds", 0), ("seeds", -3), ("seeds", 10**30), ("seeds", 2.5), ("seeds", "3"), ("seeds", True),
        ("seed", -1), ("seed", 2**40), ("seed", math.nan),
        ("pruning.percent", 0), ("pruning.percent", -10), ("pruning.percent", 101), ("pruning.percent", math.nan),
        ("pruning.percent", math.inf), ("pruning.percent", [50.0, 50.0]), ("pruning.percent", "half"),
        ("pruning.percent_schedule", []), ("pruning.percent_schedule", [50, 50, 50]), ("pruning.percent_schedule", [0]),
        ("pruning.iterations", 0), ("pruning.iterations", -1), ("pruning.iterations", 10**23),
        ("pruning.criteria", []), ("pruning.criteria", [""]), ("pruning.criteria", ["magic"]),
        ("pruning.criteria", ["variance_fi", "variance_fi"]), ("pruning.criteria", "variance_fi"),
        ("model.kind", "gan"), ("model.hidden", []), ("model.hidden", [0]), ("model.hidden", [-4]),
        ("model.hidden", [4, 4]), ("model.hidden", [10**9]), ("model.weight_std", 0), ("model.weight_std", math.inf),
        ("model.hidden_bias", math.nan), ("model.visible_bias", "mean"), ("model.receptive_field", 0),
        ("model.receptive_field", 3),
        ("train.epochs", -1), ("train.epochs", 10**9), ("train.batch_size", 0), ("train.learning_rate", -0.1),
        ("train.learning_rate", math.inf), ("train.learning_rate", []), ("train.learning_rate", [0.1] * 5),
        ("train.learning_rate", {"geometric": [0.1, 0]}), ("train.learning_rate", {"values": [1], "boundaries": [1]}),
        ("train.momentum", 1.0), ("train.momentum", -0.5), ("train.momentum", math.nan), ("train.k", 0),
        ("train.n_chains", 10), ("train.colour", "red"), ("train.max_norm", 6.0), ("train.update_rule", "adam"),
        ("retrain.epochs", -2), ("retrain.momentum", 2),
        ("sampling.n_samples", 0), ("sampling.steps", 0), ("sampling.mode", "magic"), ("sampling.burn_in", 10),
        ("sampling.chunk_size", 0), ("sampling.chunk_size", 10**12),
        ("data.source", "imagenet"), ("data.radius", 0), ("data.radius", -1), ("data.radius", math.nan),
        ("data.n_patches", 0), ("data.n_patches", 10**12), ("data.n_train", 0), ("data.n_train", 301),
        ("data.path", "x.npy"), ("data.batches", [99]),
        ("evaluation.metrics", ["magic"]), ("evaluation.metrics", ["encoding_error"]), ("evaluation.encoding_C", 0),
        ("evaluation.mf_max_iter", 0), ("evaluation.exact", "yes"),
        ("pretrain", [{"epochs": 1, "learning_rate": 0.1}]),
        ("data", ...), ("model", ...), ("train", ...), ("pruning", ...), ("sampling", ...),
        ("extra_section", {"a": 1}),
    ]
    for key, value in bad:
        out = fresh("cfg")
        api(K, f"{key} = {value!r:.40}", lambda k=key, v=value, o=out: bp.run(mutate(MICRO, k, v), o), keep=out)
    # big populations / data: refused by the memory estimate before data or anything is allocated
    for changes in ({"seeds": 10_000, "sampling.n_samples": 10**7, "sampling.chunk_size": 10**7},
                    {"seeds": 5000, "sampling.n_samples": 10**8, "sampling.chunk_size": 10**8},
                    {"data.n_patches": 10**8, "data.radius": 16.0}, {"model.hidden": [1_000_000], "seeds": 1000},
                    {"sampling.chunk_size": 10**8, "sampling.n_samples": 10**9, "seeds": 500}):
        cfg = MICRO
        for k, v in changes.items():
            cfg = mutate(cfg, k, v)
        out = fresh("big")
        api("config size vs memory (API)", str(changes), lambda c=cfg, o=out: bp.run(c, o), keep=out)
    # data-dependent checks
    for cfg, what in [
        ({**MICRO, "data": {"source": "digits"}, "model": {"kind": "rbm", "hidden": [64], "receptive_field": 9}},
         "receptive field 9 on 8×8 digits"),
        ({**MICRO, "data": {"source": "digits"}, "model": {"kind": "rbm", "hidden": [30]},
          "pruning": {**MICRO["pruning"], "criteria": ["eigenvector_fi"]}}, "eigenvector_fi on 64×30 RBM"),
        ({**MICRO, "data": {"source": "digits"}, "model": {"kind": "rbm", "hidden": [30], "receptive_field": 3}},
         "receptive field with hidden ≠ pixels"),
        ({**MICRO, "data": {"source": "digits", "n_train": 5000}}, "n_train > digits"),
        (mutate(MICRO, "model", {"kind": "dbm", "hidden": [4, 3]}), "dbm without pretrain"),
        (mutate(mutate(MICRO, "pruning.criteria", ["eigenvector_fi"]), "model",
                {"kind": "dbm", "hidden": [4, 3]}), "eigenvector_fi on a dbm"),
    ]:
        out = fresh("fit")
        api("config vs data (API)", what, lambda c=cfg, o=out: bp.run(c, o), keep=out)
    for device in ("tpu", "cuda:9", "", "cpu:x", "gpu", "meta"):
        out = fresh("dev")
        api("device (API)", repr(device), lambda d=device, o=out: bp.run(MICRO, o, device=d), keep=out)
    for args in ({"seeds": 0}, {"iterations": 0}, {"criteria": []}, {"criteria": ["nope"]}, {"seeds": -1},
                 {"iterations": 10**40}):
        out = fresh("ovr")
        api("run() overrides (API)", str(args), lambda a=args, o=out: bp.run(MICRO, o, **a), keep=out)
    for source in (123, ["demo"], {"name": "x"}, b"demo"):
        api("run() config argument (API)", repr(source), lambda s=source: bp.run(s, fresh("arg")))


# ------------------------------------------------------------------------------ config files
def probe_config_files() -> None:
    K = "config file (CLI)"
    base = tomli_w.dumps(load_config(MICRO).model_dump(mode="json", exclude_none=True)).encode()
    contents = {
        "non-UTF-8": b"name = 'x\xff\xfe'\n" + base[base.index(b"\n") + 1:],
        "latin-1 description": base.replace(b'description = ""', b'description = "caf\xe9"'),
        "invalid TOML": b"name = [",
        "empty": b"",
        "binary garbage": bytes(range(256)),
        "unknown top key": base + b"\ncolour = 'red'\n",
        "duplicate key": base + b"\nname = 'again'\n",
        "UTF-16": base.decode().encode("utf-16"),
        "truncated half": base[: len(base) // 2],
        "gzip": gzip.compress(base),
        "learning rate as string": base.replace(b"learning_rate = 0.05", b"learning_rate = \"fast\""),
        "nan percent": base.replace(b"percent = 50.0", b"percent = nan"),
        "inf learning rate": base.replace(b"learning_rate = 0.05", b"learning_rate = inf"),
        "negative seeds": base.replace(b"seeds = 1", b"seeds = -1"),
        "future version key only": b"bmprune_version = '9.0'\n",
    }
    for what, content in contents.items():
        d = fresh("cf")
        d.mkdir()
        (d / "c.toml").write_bytes(content)
        run_cli(K, what, ["run", str(d / "c.toml"), "--out", str(d / "run")], keep=d / "c.toml")
    d = fresh("cf")
    d.mkdir()
    run_cli(K, "a directory as config", ["run", str(d), "--out", str(d / "run")])
    run_cli(K, "missing file", ["run", str(d / "missing.toml"), "--out", str(d / "run")])
    (d / "fifo.toml").write_text("")
    os.chmod(d / "fifo.toml", 0)
    run_cli(K, "unknown preset", ["run", "paper", "--out", str(d / "run")])


# ----------------------------------------------------------------------------------- CLI options
def probe_cli_options() -> None:
    K = "CLI option"
    cfg = toml_file(MICRO)
    base = ["run", str(cfg)]
    cases = {
        "--criteria ''": ["--criteria", ""], "--criteria ','": ["--criteria", ","], "--criteria ' '": ["--criteria", " "],
        "--criteria a,,b": ["--criteria", "variance_fi,,random_weights"], "--criteria magic": ["--criteria", "magic"],
        "--criteria eigenvector_fi (too big? no: fits)": None,
        "--seeds 0": ["--seeds", "0"], "--seeds -1": ["--seeds", "-1"], "--seeds 1e3": ["--seeds", "1e3"],
        "--seeds huge": ["--seeds", "99999999999999999999999"], "--seeds 10001": ["--seeds", "10001"],
        "--iterations 0": ["--iterations", "0"], "--iterations huge": ["--iterations", "99999999999999999999999"],
        "--iterations -5": ["--iterations", "-5"], "--iterations x": ["--iterations", "x"],
        "--device tpu": ["--device", "tpu"], "--device cuda": ["--device", "cuda"], "--device ''": ["--device", ""],
        "--device cuda:-1": ["--device", "cuda:-1"], "--threads 0": ["--threads", "0"],
        "--threads huge": ["--threads", "99999999999999999999"], "--threads -1": ["--threads", "-1"],
        "--unknown": ["--colour", "red"], "--out ''": ["--out", ""],
    }
    for what, extra in cases.items():
        if extra is None:
            continue
        out = fresh("opt")
        args = base + (extra if "--out" in extra else [*extra, "--out", str(out)])
        run_cli(K, what, args, keep=out)
    f = fresh("file")
    f.write_text("mine")
    run_cli(K, "--out a file", base + ["--out", str(f)], keep=f)
    run_cli(K, "--out inside a file", base + ["--out", str(f / "run")], keep=f)
    d = fresh("foreign")
    d.mkdir()
    (d / "thesis.tex").write_text("precious")
    run_cli(K, "--out a foreign non-empty directory", base + ["--out", str(d)], keep=d)
    d2 = fresh("foreign")
    (d2 / ".git").mkdir(parents=True)
    (d2 / ".git" / "HEAD").write_text("ref")
    run_cli(K, "--out a git checkout", base + ["--out", str(d2)], keep=d2)
    run_cli(K, "--out /proc/bmprune", base + ["--out", "/proc/bmprune-probe"])
    run_cli(K, "report of nothing", ["report", str(fresh("nothing"))])
    run_cli(K, "report of a file", ["report", str(f)], keep=f)
    run_cli(K, "report of a foreign dir", ["report", str(d)], keep=d)
    run_cli(K, "data fetch imagenet", ["data", "fetch", "imagenet", "--data-dir", str(fresh("data"))])
    run_cli(K, "sweep missing file", ["sweep", str(fresh("x") / "s.toml"), "--out", str(fresh("sw"))])
    run_cli(K, "unknown command", ["frobnicate"])
    run_cli(K, "--debug without command", ["--debug"])


# -------------------------------------------------------------------------------- checkpoints
def probe_checkpoints() -> None:
    K = "checkpoint (API)"
    rbm = bp.RBM(5, 3, n_replicas=2, seed=1)
    rbm.alive[1][1, 2] = False
    rbm.apply_masks()
    dbm = bp.DBM([5, 4, 3], n_replicas=2, seed=2)

    def write(model, tensors=None, meta=None, drop=()):
        return write_checkpoint(fresh("ck").with_suffix(".safetensors"), model, tensors=tensors, meta=meta, drop=drop)

    W = rbm.W.clone()
    nan = W.clone(); nan[0, 0, 0] = float("nan")
    inf = W.clone(); inf[1, 1, 1] = -float("inf")
    huge = W.clone(); huge[0, 1, 1] = 3e38
    masked = W.clone(); masked[1, 0, 2] = 0.3                 # replica 1's unit 2 is dead
    cases = {
        "NaN weight": ({"W": nan}, {}), "-inf weight": ({"W": inf}, {}),
        "NaN visible bias": ({"b_v": torch.full((2, 5), float("nan"))}, {}),
        "int32 weights": ({"W": W.to(torch.int32)}, {}), "int64 weights": ({"W": W.long()}, {}),
        "float16 weights": ({"W": W.half()}, {}), "bfloat16 biases": ({"b_h": rbm.b_h.bfloat16()}, {}),
        "float64 W with float32 biases": ({"W": W.double()}, {}),
        "complex weights": ({"W": W.to(torch.complex64)}, {}),
        "0/1 float mask": ({"weight_mask": rbm.weight_mask.float()}, {}),
        "int mask": ({"weight_mask": rbm.weight_mask.int()}, {}),
        "uint8 alive": ({"alive.1": rbm.alive[1].to(torch.uint8)}, {}),
        "alive of wrong shape": ({"alive.1": torch.ones(2, 4, dtype=torch.bool)}, {}),
        "alive without replica axis": ({"alive.1": torch.ones(3, dtype=torch.bool)}, {}),
        "mask transposed": ({"weight_mask": torch.ones(2, 3, 5, dtype=torch.bool)}, {}),
        "W transposed": ({"W": W.transpose(1, 2).contiguous()}, {}),
        "3 replicas of b_v": ({"b_v": torch.zeros(3, 5)}, {}),
        "scalar bias": ({"b_v": torch.tensor(0.0)}, {}),
        "0 replicas": ({k: v[:0].contiguous() for k, v in rbm.named_tensors().items()}, {}),
        "masked weight nonzero": ({"W": masked, "weight_mask": rbm.weight_mask}, {}),
        "dead unit keeps mask": ({"weight_mask": torch.ones(2, 5, 3, dtype=torch.bool)}, {}),
        "dead visible unit": ({"alive.0": torch.tensor([[True] * 4 + [False]] * 2)}, {}),
        "config wrong n_visible": ({}, {"bmprune_config": json.dumps({"n_visible": 6, "n_hidden": 3})}),
        "config negative": ({}, {"bmprune_config": json.dumps({"n_visible": -5, "n_hidden": 3})}),
        "config string sizes": ({}, {"bmprune_config": json.dumps({"n_visible": "5", "n_hidden": 3})}),
        "config missing": ({}, {"bmprune_config": "{}"}), "config not JSON": ({}, {"bmprune_config": "{"}),
        "config a list": ({}, {"bmprune_config": "[5, 3]"}), "config null": ({}, {"bmprune_config": "null"}),
        "future major version": ({}, {"bmprune_version": "2.0.0"}), "version 1.0": ({}, {"bmprune_version": "1.0"}),
        "garbled version": ({}, {"bmprune_version": "latest"}), "empty version": ({}, {"bmprune_version": ""}),
        "kind GAN": ({}, {"bmprune_kind": "GAN"}), "kind lower-case rbm": ({}, {"bmprune_kind": "rbm"}),
        "kind DBM for RBM tensors": ({}, {"bmprune_kind": "DBM"}),
        "extra tensor": ({"momentum": torch.zeros(2)}, {}),
    }
    for what, (tensors, meta) in cases.items():
        p = write(rbm, tensors, meta)
        api(K, what, lambda p=p: bp.load_model(p), keep=p)
    for name in ("W", "alive.1", "weight_mask"):
        p = write(rbm, drop=[name])
        api(K, f"missing tensor {name}", lambda p=p: bp.load_model(p), keep=p)
    p = write(rbm, drop=["bmprune_version"])
    api(K, "no version", lambda p=p: bp.load_model(p), keep=p)
    for what, (tensors, meta) in {
        "DBM layer_sizes mismatch": ({}, {"bmprune_config": json.dumps({"layer_sizes": [5, 4, 4]})}),
        "DBM one layer": ({}, {"bmprune_config": json.dumps({"layer_sizes": [5]})}),
        "DBM missing W.1 in config": ({}, {"bmprune_config": json.dumps({"layer_sizes": [5, 4]})}),
        "DBM float64 W.1": ({"W.1": dbm.W[1].double()}, {}),
        "DBM NaN b.2": ({"b.2": torch.full((2, 3), float("nan"))}, {}),
    }.items():
        p = write(dbm, tensors, meta)
        api(K, what, lambda p=p: bp.load_model(p), keep=p)
    good = write(rbm).read_bytes()
    for what, content in {"empty file": b"", "zeros": b"\0" * 100, "text": b"hello", "truncated": good[:len(good) // 2],
                          "header only": good[:60], "one byte cut": good[:-1], "garbage header length": b"\xff" * 8 + good[8:]}.items():
        p = fresh("ck").with_suffix(".safetensors")
        p.write_bytes(content)
        api(K, what, lambda p=p: bp.load_model(p), keep=p)
    p = fresh("ck").with_suffix(".safetensors")
    save_file({"x": torch.zeros(1)}, str(p))
    api(K, "foreign safetensors", lambda p=p: bp.load_model(p), keep=p)
    api(K, "a directory", lambda: bp.load_model(ROOT))
    api(K, "missing path", lambda: bp.load_model(ROOT / "none.safetensors"))
    p = write(dbm)
    api(K, "RBM.load of a DBM", lambda p=p: bp.RBM.load(p), keep=p)
    api(K, "device tpu", lambda p=p: bp.load_model(p, device="tpu"), keep=p)


# ------------------------------------------------------------------------------- run directories
def probe_run_dirs() -> None:
    K = "run directory"
    src = fresh("finished")
    bp.run(MICRO, src)
    partial = fresh("partial")

    def stop(event, **info):
        if event == "stage" and (info["iteration"], info["stage"]) == (2, "pruned"):
            raise KeyboardInterrupt
    try:
        bp.run(MICRO, partial, progress=stop)
    except KeyboardInterrupt:
        pass
    ref = bp.run(MICRO, fresh("ref")).metrics
    cfg_toml = toml_file(MICRO)

    def copy(which) -> Path:
        d = fresh("rd")
        shutil.copytree(which, d, copy_function=shutil.copy2)
        return d

    def state_edit(d, **ch):
        s = json.loads((d / "state.json").read_text())
        s.update(ch)
        (d / "state.json").write_text(json.dumps(s))

    damages = {
        "state.json truncated": lambda d: (d / "state.json").write_bytes((d / "state.json").read_bytes()[:20]),
        "state.json empty": lambda d: (d / "state.json").write_bytes(b""),
        "state.json binary": lambda d: (d / "state.json").write_bytes(os.urandom(64)),
        "state.json a list": lambda d: (d / "state.json").write_text("[]"),
        "state.json null": lambda d: (d / "state.json").write_text("null"),
        "completed a string": lambda d: state_edit(d, completed="0:trained"),
        "completed ints": lambda d: state_edit(d, completed=[0, 1]),
        "completed missing": lambda d: (d / "state.json").write_text(json.dumps({"checkpoint": None})),
        "unknown stage key": lambda d: state_edit(d, completed=["0:trained", "9:pruned"]),
        "bogus stage name": lambda d: state_edit(d, completed=["0:trained", "1:frozen"]),
        "duplicate stage": lambda d: state_edit(d, completed=["0:trained", "0:trained"]),
        "gap in stages": lambda d: state_edit(d, completed=["0:trained", "1:retrained"]),
        "checkpoint escapes": lambda d: state_edit(d, checkpoint="../../../etc/passwd"),
        "checkpoint null": lambda d: state_edit(d, checkpoint=None),
        "checkpoint of an earlier stage": lambda d: state_edit(d, checkpoint="checkpoints/iter00-trained.safetensors"),
        "seconds a list": lambda d: state_edit(d, seconds=[1]),
        "finished a string": lambda d: state_edit(d, finished="no"),
        "metrics.parquet deleted": lambda d: (d / "metrics.parquet").unlink(),
        "metrics.parquet truncated": lambda d: (d / "metrics.parquet").write_bytes((d / "metrics.parquet").read_bytes()[:99]),
        "metrics.parquet empty table": lambda d: pd.read_parquet(d / "metrics.parquet")[:0].to_parquet(d / "metrics.parquet"),
        "metrics rows of 0:trained gone": lambda d: (lambda df: df[df.stage != "trained"].to_parquet(d / "metrics.parquet", index=False))(pd.read_parquet(d / "metrics.parquet")),
        "metrics replica 1 gone": lambda d: (lambda df: df[df.replica != 1].to_parquet(d / "metrics.parquet", index=False))(pd.read_parquet(d / "metrics.parquet")),
        "metrics column renamed": lambda d: pd.read_parquet(d / "metrics.parquet").rename(columns={"value": "v"}).to_parquet(d / "metrics.parquet", index=False),
        "latest checkpoint deleted": lambda d: (d / "checkpoints" / "iter01-retrained.safetensors").unlink(),
        "latest checkpoint truncated": lambda d: (d / "checkpoints" / "iter01-retrained.safetensors").write_bytes(b"\0" * 50),
        "latest checkpoint swapped with trained": lambda d: shutil.copy(d / "checkpoints" / "iter00-trained.safetensors", d / "checkpoints" / "iter01-retrained.safetensors"),
        "checkpoints/ deleted": lambda d: shutil.rmtree(d / "checkpoints"),
        "config.toml garbage": lambda d: (d / "config.toml").write_bytes(b"\xff\xfe"),
        "config.toml deleted": lambda d: (d / "config.toml").unlink(),
        "config.toml invalid value": lambda d: (d / "config.toml").write_text((d / "config.toml").read_text().replace("seeds = 1", "seeds = 0")),
    }
    for what, damage in damages.items():
        d = copy(partial)
        damage(d)
        api(K + " (API resume)", what, lambda d=d: bp.run(MICRO, d), keep=d)
        d = copy(partial)
        damage(d)
        run_cli(K + " (CLI resume)", what, ["run", str(cfg_toml), "--out", str(d)], keep=d)
    # a different config; shortening; in use; finished + damaged extension
    d = copy(partial)
    api(K + " (API resume)", "different config (seeds 2)", lambda: bp.run(MICRO, d, seeds=2), keep=d)
    d = copy(src)
    api(K + " (API resume)", "shorten a finished run", lambda: bp.run(MICRO, d, iterations=1), keep=d)
    d = copy(src)
    (d / "checkpoints" / "iter02-retrained.safetensors").write_bytes(b"junk")
    api(K + " (API resume)", "extend a run whose checkpoint is damaged", lambda: bp.run(MICRO, d, iterations=3), keep=d)
    d = copy(partial)
    holder = bp.experiments.RunDir(d, load_config(MICRO))
    api(K + " (API resume)", "in use by another process", lambda: bp.run(MICRO, d), keep=d)
    run_cli(K + " (CLI resume)", "in use by another process", ["run", str(cfg_toml), "--out", str(d)], keep=d)
    holder.close()
    # a resume after a damaged-then-restored file gives the reference numbers (data not lost)
    d = copy(partial)
    table = (d / "metrics.parquet").read_bytes()
    (d / "metrics.parquet").unlink()
    try:
        bp.run(MICRO, d)
    except BmpruneError:
        pass
    (d / "metrics.parquet").write_bytes(table)
    got = bp.run(MICRO, d).metrics
    cols = ["criterion", "seed", "replica", "iteration", "stage", "metric", "layer"]
    same = got.sort_values(cols).reset_index(drop=True).equals(ref.sort_values(cols).reset_index(drop=True))
    record(K + " (API resume)", "deleted metrics restored, resumed = reference", "typed" if same else "lost",
           "identical" if same else "rows differ")
    # report on damaged runs
    for what, damage in {"metrics deleted": lambda d: (d / "metrics.parquet").unlink(),
                         "metrics garbage": lambda d: (d / "metrics.parquet").write_bytes(b"PAR1xx"),
                         "config garbage": lambda d: (d / "config.toml").write_bytes(b"\xff"),
                         "state garbage": lambda d: (d / "state.json").write_bytes(b"{"),
                         "no config": lambda d: (d / "config.toml").unlink()}.items():
        d = copy(src)
        damage(d)
        run_cli(K + " (CLI report)", what, ["report", str(d)], keep=d)
    d = copy(src)
    f = fresh("f")
    f.write_text("x")
    run_cli(K + " (CLI report)", "--out a file", ["report", str(d), "--out", str(f)], keep=f)


# ----------------------------------------------------------------------------------- user data
def probe_user_data() -> None:
    K = "user data file (API)"
    rng = np.random.default_rng(0)
    x = (rng.random((200, 9)) < 0.3).astype(np.uint8)
    cases: dict[str, tuple[str, object]] = {
        "non-binary values": (".npy", x * 2), "NaN": (".npy", np.where(x, np.nan, 0.0)),
        "negative": (".npy", -x), "1-D": (".npy", x[:, 0]), "4-D": (".npy", x.reshape(200, 3, 3, 1)),
        "empty": (".npy", x[:0]), "object array": (".npy", np.array([{"a": 1}] * 3, dtype=object)),
        "strings": (".npy", np.array(["0", "1"])), "float 0.5": (".npy", x * 0.5),
    }
    for what, (suffix, arr) in cases.items():
        p = fresh("u").with_suffix(suffix)
        np.save(p, arr, allow_pickle=True)
        api(K, what, lambda p=p: bp.run(mutate(MICRO, "data", {"source": "file", "path": str(p)}), fresh("ur")), keep=p)
    raw = {"truncated npy": None, "truncated npz": None, "csv garbage": b"a,b\n1,x\n", "csv ragged": b"0,1\n1\n",
           "csv empty": b"", "zip not npz": None, "pickle": b"\x80\x04K\x01.", "gzip": gzip.compress(b"0,1\n")}
    p0 = fresh("u").with_suffix(".npy")
    np.save(p0, x)
    raw["truncated npy"] = p0.read_bytes()[:100]
    pz = fresh("u").with_suffix(".npz")
    np.savez(pz, x=x)
    raw["truncated npz"] = pz.read_bytes()[:150]
    import zipfile
    pzz = fresh("u").with_suffix(".npz")
    with zipfile.ZipFile(pzz, "w") as z:
        z.writestr("readme.txt", "hello")
    raw["zip not npz"] = pzz.read_bytes()
    for what, content in raw.items():
        suffix = ".csv" if "csv" in what else ".npz" if "npz" in what or "zip" in what else ".npy"
        p = fresh("u").with_suffix(suffix)
        p.write_bytes(content)
        api(K, what, lambda p=p: bp.run(mutate(MICRO, "data", {"source": "file", "path": str(p)}), fresh("ur")), keep=p)
    api(K, "missing file", lambda: bp.run(mutate(MICRO, "data", {"source": "file", "path": str(ROOT / "no.npy")}), fresh("ur")))
    api(K, "a directory", lambda: bp.run(mutate(MICRO, "data", {"source": "file", "path": str(ROOT)}), fresh("ur")))
    p = fresh("u").with_suffix(".npy")
    np.save(p, x)
    api(K, "image_shape not matching", lambda: bp.run(mutate(MICRO, "data", {"source": "file", "path": str(p), "image_shape": [4, 4]}), fresh("ur")), keep=p)
    pt = fresh("u").with_suffix(".npy")
    np.save(pt, (rng.random((50, 10)) < 0.3).astype(np.uint8))
    api(K, "test set of another width", lambda: bp.run(mutate(MICRO, "data", {"source": "file", "path": str(p), "test_path": str(pt)}), fresh("ur")), keep=p)


def main() -> int:
    for probe in (probe_configs, probe_config_files, probe_cli_options, probe_checkpoints, probe_run_dirs, probe_user_data):
        print(f"{probe.__name__} …", flush=True)
        probe()
    table = collections.OrderedDict()
    for kind, _, outcome, _ in results:
        row = table.setdefault(kind, collections.Counter())
        row[outcome] += 1
        row["tried"] += 1
    cols = ["tried", "typed", "traceback", "silent", "lost"]
    print("\n| kind of bad input | " + " | ".join(cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for kind, row in table.items():
        print(f"| {kind} | " + " | ".join(str(row.get(c, 0)) for c in cols) + " |")
    total = collections.Counter(o for _, _, o, _ in results)
    print(f"| **total** | {len(results)} | " + " | ".join(str(total.get(c, 0)) for c in cols[1:]) + " |")
    shutil.rmtree(ROOT, ignore_errors=True)
    return 0 if len(results) == total["typed"] else 1


if __name__ == "__main__":
    sys.exit(main())
