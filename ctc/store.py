"""The SQLite results store of an output folder (results.sqlite, WAL mode).

One row per (codec, codec version, image, image pixel hash, target, condition hash); a job is
finished when its row exists and its bitstream file is there with the recorded size. Rows are
written by the runner's parent process only, one transaction each, so that a run killed at any
moment leaves only whole rows. Each run is recorded too (condition, dataset checksums, codec and
tool versions, platform), and failed jobs are kept apart so that a rerun tries them again.

A file that is not such a store (not SQLite, damaged, tables of another schema, unreadable)
raises StoreError, on opening or on the first read that meets the damage; it is never
written over.

A store written before some nullable result columns existed (new metrics) reads as if they were
empty, and is brought up to date when a run starts writing to it: the missing columns are added
(ALTER TABLE ... ADD COLUMN), empty (NULL) in the rows already there, which are kept. Reading it
changes nothing, so the ctc that wrote it can still read it. Only nullable columns are added
this way; a table that lacks a NOT NULL column, or has a column or table this schema does not
know, is refused as before.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FILENAME = "results.sqlite"

KEY = ("codec", "codec_version", "image", "image_sha256", "target_bpp", "condition_hash")
RESULT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("codec", "TEXT NOT NULL"),
    ("codec_version", "TEXT NOT NULL"),
    ("image", "TEXT NOT NULL"),
    ("image_sha256", "TEXT NOT NULL"),
    ("target_bpp", "REAL NOT NULL"),
    ("condition_hash", "TEXT NOT NULL"),
    ("condition", "TEXT NOT NULL"),
    ("width", "INTEGER NOT NULL"),
    ("height", "INTEGER NOT NULL"),
    ("knob_name", "TEXT NOT NULL"),
    ("knob_value", "REAL NOT NULL"),
    ("rate_control", "TEXT NOT NULL"),
    ("n_encodes", "INTEGER NOT NULL"),
    ("bytes", "INTEGER NOT NULL"),
    ("bpp", "REAL NOT NULL"),
    ("deviation_percent", "REAL NOT NULL"),
    ("in_tolerance", "INTEGER NOT NULL"),
    ("psnr_rgb", "REAL"),
    ("sse_rgb", "INTEGER"),
    ("n_values", "INTEGER"),
    ("psnr_y", "REAL"),
    ("psnr_u", "REAL"),
    ("psnr_v", "REAL"),
    ("psnr_yuv", "REAL"),
    ("msssim_rgb", "REAL"),
    ("msssim_rgb_db", "REAL"),
    ("msssim_y", "REAL"),
    ("msssim_y_db", "REAL"),
    ("vmaf", "REAL"),
    ("psnr_hvs", "REAL"),
    ("psnr_hvsm", "REAL"),
    ("msssim_yuv", "REAL"),
    ("msssim_yuv_db", "REAL"),
    ("vif_p", "REAL"),
    ("iw_ssim", "REAL"),
    ("fsim", "REAL"),
    ("fsimc", "REAL"),
    ("nlpd", "REAL"),
    ("encode_seconds", "REAL NOT NULL"),
    ("decode_seconds", "REAL NOT NULL"),
    ("rate_control_seconds", "REAL NOT NULL"),
    ("bitstream", "TEXT NOT NULL"),
    ("run_id", "INTEGER NOT NULL"),
    ("finished_at", "TEXT NOT NULL"),
)
COLUMN_NAMES = tuple(name for name, _ in RESULT_COLUMNS)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS results (
    {", ".join(f"{name} {kind}" for name, kind in RESULT_COLUMNS)},
    PRIMARY KEY ({", ".join(KEY)})
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    condition TEXT NOT NULL,
    condition_hash TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS failures (
    {", ".join(f"{name} {kind}" for name, kind in RESULT_COLUMNS[:6])},
    run_id INTEGER NOT NULL,
    message TEXT NOT NULL,
    at TEXT NOT NULL
);
"""

JobKey = tuple[str, str, str, str, float, str]
TABLES = {
    "results": set(COLUMN_NAMES),
    "runs": {"id", "started_at", "finished_at", "status", "condition", "condition_hash", "record"},
    "failures": {*KEY, "run_id", "message", "at"},
}
# Columns that an older store may lack, added on opening: the nullable result columns.
ADDABLE = {"results": {name: kind for name, kind in RESULT_COLUMNS if "NOT NULL" not in kind}}


class StoreError(RuntimeError):
    """A results store that cannot be opened, read or written (not SQLite, damaged, another
    schema, no permission, locked by another program)."""


def _store_errors(method: Callable) -> Callable:
    """The method, with SQLite's errors raised as StoreError."""

    @functools.wraps(method)
    def wrapped(self: Store, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: {e}") from None

    return wrapped


def now() -> str:
    """UTC time stamp, to the second, as stored in the tables."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Finished:
    """What the store knows of a finished job: enough to check its bitstream is still there."""

    bitstream: str
    bytes: int


class Store:
    """Results of one output folder."""

    def __init__(self, folder: str | Path) -> None:
        """Open (or create) the store of `folder`.

        Raises StoreError when its results.sqlite is not a results store (nothing is written to
        it then), and OSError when the folder cannot be created.
        """
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / FILENAME
        try:
            self.db = sqlite3.connect(self.path, timeout=60.0)
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: {e}") from None
        try:
            self._open()
        except StoreError:
            self.db.close()
            raise

    @_store_errors
    def _open(self) -> None:
        self.db.row_factory = sqlite3.Row
        tables = {
            name: {column for _, column, *_ in self.db.execute(f"PRAGMA table_info({name})")}
            for name in TABLES
        }  # reads the header first: a file that is not SQLite fails here, unchanged
        foreign = {
            name
            for (name,) in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if name not in TABLES and not name.startswith("sqlite_")
        }
        if foreign:
            raise StoreError(
                f"{self.path}: not a ctc results store (it has tables {', '.join(sorted(foreign))})"
            )
        for name, columns in tables.items():
            missing = TABLES[name] - columns
            if columns and (columns - TABLES[name] or missing - set(ADDABLE.get(name, ()))):
                raise StoreError(f"{self.path}: not a ctc results store (its {name} table differs)")
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        with self.db:
            self.db.executescript(_SCHEMA)

    def _add_missing_columns(self) -> None:
        """Add the nullable columns that a store of an earlier schema lacks, in one transaction
        (another process opening the same store at once waits, then finds them there)."""

        def missing() -> list[tuple[str, str, str]]:
            out = []
            for table, addable in ADDABLE.items():
                have = {column for _, column, *_ in self.db.execute(f"PRAGMA table_info({table})")}
                out += [(table, name, kind) for name, kind in addable.items() if name not in have]
            return out

        if not missing():
            return
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for table, name, kind in missing():
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @_store_errors
    def begin_run(self, condition: str, condition_hash: str, record: dict[str, Any]) -> int:
        """Record a run's start; earlier runs still marked running were killed. A store of an
        earlier schema gains its missing nullable columns here, when a run writes to it (reading
        leaves it as it is, so that the ctc that made it can still read it)."""
        self._add_missing_columns()
        with self.db:
            self.db.execute("UPDATE runs SET status = 'killed' WHERE status = 'running'")
            cur = self.db.execute(
                "INSERT INTO runs (started_at, status, condition, condition_hash, record) "
                "VALUES (?, 'running', ?, ?, ?)",
                (now(), condition, condition_hash, json.dumps(record, sort_keys=True)),
            )
        return int(cur.lastrowid)

    @_store_errors
    def end_run(self, run_id: int, status: str) -> None:
        """Record how a run ended: finished, failed or interrupted."""
        with self.db:
            self.db.execute(
                "UPDATE runs SET status = ?, finished_at = ? WHERE id = ?", (status, now(), run_id)
            )

    @_store_errors
    def finished(self, condition_hash: str) -> dict[JobKey, Finished]:
        """Finished jobs of one condition hash, by key."""
        rows = self.db.execute(
            f"SELECT {', '.join(KEY)}, bitstream, bytes FROM results WHERE condition_hash = ?",
            (condition_hash,),
        )
        return {tuple(r[k] for k in KEY): Finished(r["bitstream"], r["bytes"]) for r in rows}

    @_store_errors
    def add_result(self, row: dict[str, Any]) -> None:
        """Insert (or replace) one finished job's row, in its own transaction."""
        unknown = set(row) - set(COLUMN_NAMES)
        if unknown:
            raise ValueError(f"unknown result columns: {sorted(unknown)}")
        names = list(row)
        with self.db:
            self.db.execute(
                f"INSERT OR REPLACE INTO results ({', '.join(names)}) "
                f"VALUES ({', '.join('?' for _ in names)})",
                [row[n] for n in names],
            )
            self.db.execute(
                f"DELETE FROM failures WHERE {' AND '.join(f'{k} = ?' for k in KEY)}",
                [row[k] for k in KEY],
            )

    @_store_errors
    def add_failure(self, key: JobKey, run_id: int, message: str) -> None:
        """Record why a job failed (the latest failure per job is kept)."""
        with self.db:
            self.db.execute(
                f"DELETE FROM failures WHERE {' AND '.join(f'{k} = ?' for k in KEY)}", key
            )
            self.db.execute(
                f"INSERT INTO failures ({', '.join(KEY)}, run_id, message, at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*key, run_id, message, now()),
            )

    @_store_errors
    def results(self, keys: Iterable[JobKey] | None = None) -> list[dict[str, Any]]:
        """All result rows (or those with the given keys), ordered for reading."""
        order = "ORDER BY condition, codec, codec_version, target_bpp, image"
        absent = dict.fromkeys(COLUMN_NAMES)  # columns a store of an earlier schema lacks: None
        rows = [{**absent, **r} for r in self.db.execute(f"SELECT * FROM results {order}")]
        if keys is None:
            return rows
        wanted = set(keys)
        return [r for r in rows if tuple(r[k] for k in KEY) in wanted]

    @_store_errors
    def runs(self) -> list[dict[str, Any]]:
        """Every run with its record (parsed), oldest first."""
        rows = self.db.execute("SELECT * FROM runs ORDER BY id")
        runs = []
        for r in rows:
            try:
                record = json.loads(r["record"])
            except (TypeError, ValueError) as e:
                raise StoreError(f"{self.path}: damaged record of run {r['id']} ({e})") from None
            if not isinstance(record, dict):
                raise StoreError(f"{self.path}: damaged record of run {r['id']}")
            runs.append({**dict(r), "record": record})
        return runs

    @_store_errors
    def failures(self) -> list[dict[str, Any]]:
        """The latest failure of every job that has not succeeded since."""
        return [dict(r) for r in self.db.execute("SELECT * FROM failures ORDER BY at")]
