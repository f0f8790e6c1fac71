"""Checksum verification of the real data files, with a record that makes later loads cheap.

DESIGN.md §Errors ("checksum mismatch") and §Data locations; issue 13, item 4.

Every file that has a pinned checksum (:data:`bmprune.data.store._PINNED`: the MNIST IDX files,
gzipped or not, the CIFAR-10 binary and python batches) is hashed on first use and compared
with the pin; a mismatch is a :class:`~bmprune.errors.ChecksumError` naming the file, both
digests and the command that re-fetches it. A successful verification is recorded, so that
the next load only has to ``stat`` the file:

* beside the file, as ``.<name>.verified.json`` in the same directory, when that directory is
  writable;
* otherwise (a read-only or shared data directory) in the per-user cache,
  ``<cache>/verified/<sha256 of the absolute path>.json``, where ``<cache>`` is
  ``$BMPRUNE_CACHE_DIR`` or ``platformdirs.user_cache_dir("bmprune")``.

A record holds the file's size, ``mtime_ns`` and ``ctime_ns`` at the time it was read and the
digest(s) of exactly the bytes that were verified. It is trusted only while all three stat
fields are unchanged **and** the file was last changed at least :data:`RACY_WINDOW_NS` before
the verification (a change within the same timestamp tick as the verification could otherwise
keep size and mtime; git calls such entries "racily clean"). ``ctime`` cannot be set by a user,
so restoring a modified file's mtime (``touch -d``, ``cp -p``) does not hide the change either.
Records are written atomically (temporary file + :func:`os.replace`); a record that is missing,
unreadable, damaged, of another version or for another file is ignored and the file is hashed
again, never an error. When a record cannot be written at all, verification still happens,
only without the saving.

Files without a pinned checksum (e.g. ``cifar-10/partial/*``) are not an error: they are left
unverified (``official`` is ``None`` in the loaders' provenance).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ChecksumError, DataError
from .store import FETCH_HINT, Checksum, pinned_checksum

__all__ = [
    "CACHE_ENV_VAR", "RACY_WINDOW_NS", "Verification", "cache_dir", "compute_digests", "forget",
    "read_verified", "record_locations", "refetch_hint", "verify_file",
]

log = logging.getLogger(__name__)

#: Environment variable naming the per-user cache of verification records.
CACHE_ENV_VAR = "BMPRUNE_CACHE_DIR"

#: A record is trusted only for files last changed at least this long before it was made.
#: Two seconds cover coarse file-system clocks (FAT: 2 s) and the lag of the kernel's clock.
RACY_WINDOW_NS = 2_000_000_000

_RECORD_FORMAT = "bmprune-verified"
_RECORD_VERSION = 1
_BLOCK = 1 << 20
_ALG_NAMES = {"sha256": "SHA-256", "md5": "MD5"}


@dataclass(frozen=True)
class Verification:
    """The outcome of :func:`verify_file` (mismatches raise instead).

    Attributes
    ----------
    path : pathlib.Path
        The file as given.
    size : int
        Its size in bytes.
    sha256 : str or None
        Hex SHA-256 of the file (from the hash or the record); ``None`` when not verified.
    official : bool or None
        ``True``: matches its pinned checksum. ``None``: not verified (no pinned checksum, or
        verification switched off).
    how : {"hashed", "record", "unpinned", "skipped"}
        ``"hashed"``: hashed now; ``"record"``: a valid record was reused, nothing hashed;
        ``"unpinned"``: no pinned checksum is known for this file name; ``"skipped"``:
        ``verify=False``.
    record : pathlib.Path or None
        Where the record lives (``None``: none written or used).
    """

    path: Path
    size: int
    sha256: str | None
    official: bool | None
    how: str
    record: Path | None = None

    def as_source(self) -> dict[str, Any]:
        """Provenance as the loaders put it in ``meta["files"]``: path, bytes, sha256, official, verification."""
        return {"path": str(self.path), "bytes": self.size, "sha256": self.sha256, "official": self.official,
                "verification": self.how}


# --------------------------------------------------------------------------------------------
# locations
# --------------------------------------------------------------------------------------------
def cache_dir() -> Path:
    """The per-user cache directory of bmprune's verification records.

    Returns
    -------
    pathlib.Path
        ``$BMPRUNE_CACHE_DIR`` if set and non-empty, else
        ``platformdirs.user_cache_dir("bmprune")``. Not created here.
    """
    env = os.environ.get(CACHE_ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("bmprune", appauthor=False))


def _absolute(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop and the like: the plain absolute path
        return Path(os.path.abspath(path))


def record_locations(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Where the verification record of a file may live.

    Parameters
    ----------
    path : path-like
        The data file.

    Returns
    -------
    beside : pathlib.Path
        ``.<name>.verified.json`` in the file's directory (used when it is writable).
    cached : pathlib.Path
        ``<cache_dir()>/verified/<sha256 of the resolved absolute path>.json``.
    """
    path = Path(path)
    beside = path.parent / f".{path.name}.verified.json"
    key = hashlib.sha256(str(_absolute(path)).encode("utf-8", "surrogateescape")).hexdigest()[:40]
    return beside, cache_dir() / "verified" / f"{key}.json"


def refetch_hint(path: str | os.PathLike[str]) -> str:
    """The command that replaces an official file, chosen by its name.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    str
        ``bmprune data fetch mnist``, ``… cifar10`` or ``… cifar10-python`` (the generic
        ``bmprune data fetch mnist|cifar10`` for names of no known dataset).
    """
    name = Path(path).name
    if "ubyte" in name:
        return FETCH_HINT["mnist"]
    if name.endswith(".bin") or name == "cifar-10-binary.tar.gz":
        return FETCH_HINT["cifar10"]
    if name.startswith(("data_batch_", "test_batch", "batches.meta", "cifar-10-python")):
        return "bmprune data fetch cifar10-python"
    return "bmprune data fetch mnist|cifar10"


# --------------------------------------------------------------------------------------------
# hashing and records
# --------------------------------------------------------------------------------------------
def compute_digests(source: bytes | memoryview | str | os.PathLike[str],
                    algorithms: Iterable[str] = ("sha256",)) -> dict[str, str]:
    """Hex digests of bytes in memory or of a file (read in 1 MiB blocks), in one pass.

    Every hash bmprune computes to verify data goes through this function.

    Parameters
    ----------
    source : bytes or path-like
    algorithms : iterable of str
        :mod:`hashlib` names, e.g. ``("sha256", "md5")``.

    Returns
    -------
    dict
        algorithm → lowercase hex digest.

    Raises
    ------
    OSError
        ``source`` is a path that cannot be read (:func:`verify_file` turns it into a
        DataError).
    """
    hashes = {a: hashlib.new(a) for a in algorithms}
    if isinstance(source, (bytes, bytearray, memoryview)):
        for h in hashes.values():
            h.update(source)
    else:
        with open(source, "rb") as f:
            for block in iter(lambda: f.read(_BLOCK), b""):
                for h in hashes.values():
                    h.update(block)
    return {a: h.hexdigest() for a, h in hashes.items()}


def _stat_key(st: os.stat_result) -> dict[str, int]:
    return {"size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns), "ctime_ns": int(st.st_ctime_ns)}


def _read_record(where: Path) -> dict[str, Any] | None:
    try:
        with open(where, "rb") as f:
            raw = f.read(1 << 16)  # a record is ~400 bytes; never read a huge file
        rec = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError, RecursionError):  # missing, unreadable, not UTF-8, not JSON: ignored
        return None
    return rec if isinstance(rec, dict) else None


def _trusted(rec: dict[str, Any] | None, path: Path, st: os.stat_result) -> bool:
    if rec is None or rec.get("format") != _RECORD_FORMAT or rec.get("version") != _RECORD_VERSION:
        return False
    if rec.get("path") != str(_absolute(path)):
        return False
    for k, v in _stat_key(st).items():
        if type(rec.get(k)) is not int or rec[k] != v:
            return False
    at = rec.get("verified_at_ns")
    if type(at) is not int:
        return False
    return max(st.st_mtime_ns, st.st_ctime_ns) < at - RACY_WINDOW_NS


def _find_record(path: Path, st: os.stat_result) -> tuple[dict[str, Any], Path] | None:
    for where in record_locations(path):
        rec = _read_record(where)
        if _trusted(rec, path, st):
            return rec, where  # type: ignore[return-value]
    return None


def _writable_dir(d: Path) -> bool:
    """A directory we may add a record to: writable for us *and* not marked read-only.

    The mode bits are checked too because ``os.access`` says yes to root for any directory;
    a data directory whose permissions give nobody write access is meant to be left alone.
    """
    try:
        return bool(os.stat(d).st_mode & 0o222) and os.access(d, os.W_OK)
    except OSError:
        return False


def _make_dir(d: Path) -> bool:
    """Create ``d`` (and parents) unless its nearest existing ancestor is read-only."""
    existing = d
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not _writable_dir(existing):
        return False
    d.mkdir(parents=True, exist_ok=True)
    return _writable_dir(d)


def _write_atomic(where: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=where.parent, prefix=f".{where.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # not secret; readable by the other users of a shared data directory
        os.replace(tmp, where)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _save_record(path: Path, st: os.stat_result, digests: dict[str, str], verified_at_ns: int) -> Path | None:
    """Write the record beside the file, else in the cache; ``None`` if neither is writable."""
    rec = {"format": _RECORD_FORMAT, "version": _RECORD_VERSION, "path": str(_absolute(path)),
           **_stat_key(st), **digests, "verified_at_ns": int(verified_at_ns)}
    text = json.dumps(rec, indent=1, sort_keys=True) + "\n"
    failures = []
    beside, cached = record_locations(path)
    for where in (beside, cached):
        try:
            if where is beside and not _writable_dir(beside.parent):
                failures.append(f"{beside.parent}: read-only")
                continue
            if where is cached and not _make_dir(cached.parent):
                failures.append(f"{cached.parent}: read-only")
                continue
            _write_atomic(where, text)
            return where
        except OSError as exc:  # read-only file system, permissions, disk full
            failures.append(f"{where}: {exc}")
    log.info("could not record the verification of %s (it will be hashed again next time): %s",
             path, "; ".join(failures))
    return None


def forget(path: str | os.PathLike[str]) -> None:
    """Delete the verification records of a file (where allowed; never raises).

    Parameters
    ----------
    path : path-like
        The data file (its records, beside it and in the cache, are removed).
    """
    for where in record_locations(Path(path)):
        try:
            if where.exists() and _writable_dir(where.parent):
                where.unlink()
        except OSError:
            pass


# --------------------------------------------------------------------------------------------
# verification
# --------------------------------------------------------------------------------------------
def _expected(expected: Checksum | str | None, path: Path) -> Checksum | None:
    if expected is None:
        return pinned_checksum(path)
    if isinstance(expected, str):
        return Checksum(sha256=expected.lower())
    return expected


def _mismatch(path: Path, alg: str, want: str, got: str, size: int, pinned_size: int | None,
              pinned: bool) -> ChecksumError:
    size_note = ""
    if pinned_size is not None and size != pinned_size:
        size_note = f" It holds {size:,} bytes, the official file {pinned_size:,} (truncated or replaced?)."
    whose = f"the pinned checksum of the official {path.name}" if pinned else "the expected checksum"
    return ChecksumError(
        f"{path}: {_ALG_NAMES.get(alg, alg)} mismatch: expected {want} ({whose}), got {got}. "
        f"The file is corrupt, truncated or not the official release.{size_note} "
        f"Re-fetch it with `{refetch_hint(path)}` (which replaces files that fail verification), "
        "or pass verify=False to load it anyway."
    )


def verify_file(
    path: str | os.PathLike[str],
    expected: Checksum | str | None = None,
    *,
    data: bytes | None = None,
    stat: os.stat_result | None = None,
    use_record: bool = True,
    read_at_ns: int | None = None,
) -> Verification:
    """Verify a file against its pinned (or a given) checksum, reusing and updating the record.

    Parameters
    ----------
    path : path-like
        The file.
    expected : Checksum or str, optional
        The checksum to check against (a ``str`` is a hex SHA-256). Default: the pinned
        checksum of the file's name (:func:`bmprune.data.store.pinned_checksum`); a name with
        none is returned as ``how="unpinned"`` (hashed only when ``data`` is given, for
        provenance), not an error.
    data : bytes, optional
        The file's content already read into memory; it is hashed instead of reading the file
        again, so that exactly the bytes the caller parses are verified.
    stat : os.stat_result, optional
        The ``os.fstat`` taken when ``data`` was read (default: ``os.stat(path)`` now). With
        ``data`` but no ``stat``, nothing is recorded.
    use_record : bool
        Reuse a valid record (default). ``False`` always hashes (``bmprune data info`` does);
        a successful verification is recorded either way.
    read_at_ns : int, optional
        ``time.time_ns()`` taken just before ``stat``/``data`` were read (default: now). The
        record is trusted only for files last changed at least :data:`RACY_WINDOW_NS` before it.

    Returns
    -------
    Verification
        ``how`` says whether the file was hashed, its record reused, or it has no pin.

    Raises
    ------
    ChecksumError
        The digest differs from the expected one. The message names the file, both digests,
        and the command that re-fetches it (``bmprune data fetch mnist|cifar10``); the file's
        records are deleted.
    DataError
        The file cannot be read.

    Notes
    -----
    DESIGN.md §Errors and §Data locations; issue 13, item 4. See the module docstring for
    where records are kept and when they are trusted.
    """
    path = Path(path)
    started = time.time_ns() if read_at_ns is None else int(read_at_ns)
    record_stat = stat
    try:
        if stat is None:
            st = os.stat(path)
            record_stat = None if data is not None else st
        else:
            st = stat
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    size = len(data) if data is not None else int(st.st_size)
    pin = _expected(expected, path)
    if pin is None or (pin.sha256 is None and pin.md5 is None):
        sha = compute_digests(data)["sha256"] if data is not None else None
        return Verification(path, size, sha, None, "unpinned")

    alg, want = ("sha256", pin.sha256.lower()) if pin.sha256 else ("md5", pin.md5.lower())  # type: ignore[union-attr]
    if use_record and record_stat is not None:
        found = _find_record(path, record_stat)
        if found is not None and found[0].get(alg) == want and isinstance(found[0].get("sha256"), str):
            return Verification(path, size, found[0]["sha256"], True, "record", found[1])

    # when the bytes were read: a change within RACY_WINDOW_NS of it makes the record untrusted
    verified_at = started
    algorithms = ("sha256",) if alg == "sha256" else ("sha256", "md5")
    try:
        digests = compute_digests(data if data is not None else path, algorithms)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    if digests[alg] != want:
        forget(path)
        raise _mismatch(path, alg, want, digests[alg], size, pin.size, pin == pinned_checksum(path))
    where = None
    if record_stat is not None and size == record_stat.st_size:
        where = _save_record(path, record_stat, digests, verified_at)
    return Verification(path, size, digests["sha256"], True, "hashed", where)


def read_verified(path: str | os.PathLike[str], *, verify: bool = True) -> tuple[bytes, dict[str, Any]]:
    """Read a data file whole and verify it (DESIGN.md §Data locations; issue 13 item 4).

    Parameters
    ----------
    path : path-like
        An official data file (MNIST IDX, CIFAR-10 batch) or any other file.
    verify : bool
        Check the bytes read against the pinned checksum of the file's name, through the
        record when one is valid (:func:`verify_file`). ``False`` hashes nothing.

    Returns
    -------
    raw : bytes
        The file's content (the bytes that were verified).
    source : dict
        Provenance for ``meta["files"]``: ``path``, ``bytes``, ``sha256`` (``None`` when not
        verified), ``official`` (``True`` verified, ``None`` not verified: no pin or
        ``verify=False``) and ``verification`` (``"hashed"``, ``"record"``, ``"unpinned"``,
        ``"skipped"``).

    Raises
    ------
    DataError
        The file cannot be read.
    ChecksumError
        ``verify`` and the content differs from the pinned checksum.
    """
    path = Path(path)
    read_at = time.time_ns()
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            raw = f.read()
    except (OSError, MemoryError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    if not verify:
        return raw, Verification(path, len(raw), None, None, "skipped").as_source()
    # a file that changed while it was read (size differs from the fstat) is verified, not recorded
    changed = len(raw) != st.st_size
    return raw, verify_file(path, data=raw, stat=None if changed else st, read_at_ns=read_at).as_source()
