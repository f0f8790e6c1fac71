"""What a study needs of the machine, checked before anything is written or trained (issue 13).

:func:`estimate_memory` adds up the large allocations of a run — the population of
R = criteria × seeds replicas (parameters, velocities, update temporaries, the clone kept
for the checkpoint, masks, float64 sample statistics), the Gibbs chains of one sampling
chunk, the training data as float32 copies and the per-replica data order, the exact Fisher
matrices of ``eigenvector_fi`` and the encoding features — and :func:`check_memory` compares
the total with the memory the machine has free (:func:`available_memory`), raising a
:class:`~bmprune.errors.ConfigError` that gives the estimate and what to reduce. It is an
estimate of the peak, meant to turn an absurd config (10,000 seeds, a billion-chain chunk)
into an explanation instead of an exhausted machine; a config it passes can still run short
of memory when other programs take it.
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from .config import StudyConfig

#: Environment variable that overrides the memory bmprune believes is available (e.g. "64G"):
#: for batch jobs whose allocation the operating system does not report.
MEMORY_ENV_VAR = "BMPRUNE_MEMORY_LIMIT"
#: Fixed workspace of a run besides the counted arrays (exact sums are chunked to ~2^24 values).
WORKSPACE_BYTES = 256 * 2**20
#: Bytes per parameter and replica: float32 parameters, velocity, update temporaries and the
#: clone written to a checkpoint (4 × 4), the bool mask (1), and the float64 sample statistics
#: of the current and the previous stage (2 × 8).
BYTES_PER_PARAMETER = 4 * 4 + 1 + 2 * 8

_SIZES = {"mnist": (400, 60_000, 10_000), "digits": (64, 1_437, 360)}   # (n_visible, n_train, n_test)


@dataclass
class MemoryEstimate:
    """The peak memory of a study, in bytes, by part (:func:`estimate_memory`).

    Attributes
    ----------
    parts : dict of str to int
        Bytes of each large allocation, e.g. ``"population"``, ``"sampling chunk"``.
    device_parts : set of str
        The parts that live on the compute device (the others are on the host).
    """

    parts: dict[str, int] = field(default_factory=dict)
    device_parts: set[str] = field(default_factory=set)

    @property
    def total(self) -> int:
        """Bytes of every part together."""
        return sum(self.parts.values())

    def on_device(self) -> int:
        """Bytes of the parts that live on the compute device."""
        return sum(v for k, v in self.parts.items() if k in self.device_parts)

    def describe(self, keys=None) -> str:
        """The parts, largest first, e.g. ``population 1.2 GB, sampling chunk 300 MB``."""
        items = sorted(((k, v) for k, v in self.parts.items() if keys is None or k in keys), key=lambda kv: -kv[1])
        return ", ".join(f"{k} {format_bytes(v)}" for k, v in items if v >= 1)


def format_bytes(n: float) -> str:
    """``n`` bytes in B, kB, MB, GB, TB (powers of 1000), 3 significant digits."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"  # pragma: no cover


def data_sizes(cfg: StudyConfig) -> tuple[int, int, int] | None:
    """(n_visible, n_train, n_test) the config's data will have, where the config alone says so.

    None for user files (their size is known once loaded).
    """
    d = cfg.data
    if d.source in ("cifar_patches", "photo_patches"):
        from ..data.patches import circular_mask

        nv, n, n_test = int(circular_mask(d.radius).sum()), d.n_patches, 0
    elif d.source in _SIZES:
        nv, n, n_test = _SIZES[d.source]
    else:
        return None
    return nv, (min(n, d.n_train) if d.n_train else n), n_test


def estimate_memory(cfg: StudyConfig, n_visible: int, n_train: int, n_test: int = 0) -> MemoryEstimate:
    """The peak memory of running ``cfg`` on data of these sizes.

    Parameters
    ----------
    cfg : StudyConfig
    n_visible, n_train, n_test : int
        Sizes of the data (after ``data.n_train``).

    Returns
    -------
    MemoryEstimate
        With R = criteria × seeds replicas and layer sizes n_l: ``population``
        R·(Σ n_l n_{l+1} + Σ n_l)·:data:`BYTES_PER_PARAMETER`; ``sampling chunk``
        2·R·C·Σ n_l float32 (a chunk's states and the next sweep's), C the chunk size
        (independent mode: ``sampling.chunk_size``, default
        :data:`bmprune.sampling.DEFAULT_CHUNK`) or the persistent chains; ``training
        chains`` the minibatch and persistent chains of training (4·R·C·Σ n_l float32);
        ``training data`` two float32 copies (N × (n_v + 1)) and the per-replica data order
        (R × N int64); ``data`` the uint8 patterns; ``exact FIM`` 2·R·P² float64 (P = n_v +
        n_h + n_v n_h) for ``eigenvector_fi``; ``encoding features`` R·(N_cls + N_test)·n_L
        float32 twice when the encoding error is recorded; and a fixed workspace.
    """
    from ..evaluation.metrics import select
    from ..sampling import DEFAULT_CHUNK

    R = len(cfg.pruning.criteria) * cfg.seeds
    sizes = [int(n_visible), *cfg.model.hidden]
    units = sum(sizes)
    weights = sum(a * b for a, b in itertools.pairwise(sizes))
    s = cfg.sampling
    if s.mode == "independent":
        chunk = min(s.n_samples, s.chunk_size or DEFAULT_CHUNK)
    else:
        chunk = min(s.n_samples, s.n_chains or min(1000, s.n_samples))
    train_chains = max(
        max(t.batch_size for t in (cfg.train, cfg.retrain)),
        max(getattr(t, "n_chains", None) or 0 for t in (cfg.train, cfg.retrain)))
    est = MemoryEstimate()
    est.parts["population"] = R * (weights + units) * BYTES_PER_PARAMETER
    est.parts["sampling chunk"] = 2 * R * chunk * units * 4
    est.parts["training chains"] = 4 * R * min(train_chains, n_train) * units * 4
    est.parts["training data"] = 2 * n_train * (n_visible + 1) * 4 + R * n_train * 8
    est.parts["data"] = (n_train + n_test) * n_visible
    if "eigenvector_fi" in cfg.pruning.criteria:
        P = sizes[0] + sizes[1] + sizes[0] * sizes[1]
        est.parts["exact FIM"] = 2 * R * P * P * 8
    names = {m.name for m in select(cfg.evaluation.metrics)}
    if "encoding_error" in names and n_test:
        n_cls = min(n_train, cfg.evaluation.classifier_n_train or n_train)
        est.parts["encoding features"] = 2 * R * (n_cls + n_test) * sizes[-1] * 4
    est.parts["workspace"] = WORKSPACE_BYTES
    est.device_parts = {"population", "sampling chunk", "training chains", "training data", "exact FIM"}
    return est


def _meminfo_available() -> int | None:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    m = re.search(r"^MemAvailable:\s+(\d+)\s*kB", text, re.MULTILINE)
    return int(m.group(1)) * 1024 if m else None


def _cgroup_limit() -> int | None:
    """Memory left under this process's cgroup limit (v2 ``memory.max``, v1 ``limit_in_bytes``)."""
    for limit, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                         ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            raw = Path(limit).read_text().strip()
        except OSError:
            continue
        if not raw.isdigit() or int(raw) >= 2**60:     # "max" or the v1 "unlimited" sentinel
            return None
        try:
            used = int(Path(usage).read_text().strip())
        except (OSError, ValueError):
            used = 0
        return max(0, int(raw) - used)
    return None


def parse_bytes(text: str) -> int:
    """``"64G"``, ``"512M"``, ``"1.5T"``, ``"1000000"`` → bytes (powers of 1024 for K/M/G/T).

    Raises ConfigError for anything else.
    """
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*", text)
    if not m:
        raise ConfigError(f"{MEMORY_ENV_VAR}={text!r} is not a size like 64G, 512M or 1000000")
    return int(float(m.group(1)) * 1024 ** " KMGT".index(m.group(2).upper() or " "))


def available_memory() -> int | None:
    """Bytes of memory this process may still use, or None when the system does not say.

    :data:`MEMORY_ENV_VAR` when set; otherwise the smaller of the kernel's MemAvailable
    (Linux; else free pages from ``os.sysconf``, else the physical memory) and what is left
    under a cgroup memory limit (containers, batch jobs).

    Raises
    ------
    ConfigError
        :data:`MEMORY_ENV_VAR` is set but not a size.
    """
    env = os.environ.get(MEMORY_ENV_VAR)
    if env:
        return parse_bytes(env)
    avail = _meminfo_available()
    if avail is None:
        try:
            page = os.sysconf("SC_PAGE_SIZE")
            pages = os.sysconf("SC_AVPHYS_PAGES") if "SC_AVPHYS_PAGES" in os.sysconf_names else os.sysconf("SC_PHYS_PAGES")
            avail = page * pages if page > 0 and pages > 0 else None
        except (ValueError, OSError, AttributeError):
            avail = None
    limit = _cgroup_limit()
    candidates = [x for x in (avail, limit) if x is not None]
    return min(candidates) if candidates else None


def _device_memory(device: str) -> int | None:
    if not device.startswith("cuda"):
        return None
    try:
        import torch

        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    except Exception:  # noqa: BLE001  (no CUDA build, a driver error: the host check still applies)
        return None


def check_memory(cfg: StudyConfig, n_visible: int, n_train: int, n_test: int = 0, *, device: str = "cpu",
                 available: int | None = None) -> MemoryEstimate:
    """Refuse a study whose estimated peak memory exceeds what the machine has free.

    Parameters
    ----------
    cfg : StudyConfig
    n_visible, n_train, n_test : int
        Sizes of the data (see :func:`estimate_memory`).
    device : str
        ``"cpu"``, or a CUDA device whose free memory is checked for the device parts.
    available : int, optional
        Bytes of host memory (default: :func:`available_memory`).

    Returns
    -------
    MemoryEstimate

    Raises
    ------
    ConfigError
        The estimate exceeds the available host (or device) memory; the message gives the
        estimate by part, the memory available and the settings that reduce it.
    """
    est = estimate_memory(cfg, n_visible, n_train, n_test)
    host = available if available is not None else available_memory()
    dev = _device_memory(device)
    need_host = est.total - (est.on_device() if dev is not None else 0)
    R = len(cfg.pruning.criteria) * cfg.seeds
    advice = (f"reduce seeds ({cfg.seeds}) or criteria ({len(cfg.pruning.criteria)}): R = {R:,} replicas, "
              "sampling.chunk_size or sampling.n_chains, data.n_train / data.n_patches, or the layer sizes "
              f"(or set {MEMORY_ENV_VAR} when the machine has more memory than it reports)")
    if host is not None and need_host > host:
        raise ConfigError(f"the study needs about {format_bytes(need_host)} of memory ({est.describe()}), more than "
                          f"the {format_bytes(host)} available: {advice}")
    if dev is not None and est.on_device() > dev:
        raise ConfigError(f"the study needs about {format_bytes(est.on_device())} on {device} "
                          f"({est.describe(est.device_parts)}), more than its {format_bytes(dev)} free: {advice}")
    return est


def check_memory_before_loading(cfg: StudyConfig, *, device: str = "cpu") -> None:
    """:func:`check_memory` with the data sizes the config implies (:func:`data_sizes`), so an
    absurd data size is refused before the data are loaded; nothing for user files.

    Raises
    ------
    ConfigError
        As :func:`check_memory`.
    """
    sizes = data_sizes(cfg)
    if sizes is not None:
        check_memory(cfg, *sizes, device=device)


__all__ = ["MEMORY_ENV_VAR", "MemoryEstimate", "available_memory", "check_memory", "check_memory_before_loading",
           "data_sizes", "estimate_memory", "format_bytes", "parse_bytes"]
