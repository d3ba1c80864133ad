import sqlite3

import pytest

from ctc.store import COLUMN_NAMES, FILENAME, KEY, Store, StoreError


def row(**changes):
    base = {c: 0 for c in COLUMN_NAMES}
    base.update(
        codec="jpeg", codec_version="v1", image="a", image_sha256="ff", target_bpp=0.5,
        condition_hash="h", condition="test", knob_name="quality", rate_control="search",
        bitstream="b/a.jpg", finished_at="t", psnr_rgb=float("inf"), vmaf=None,
    )  # fmt: skip
    base.update(changes)
    return base


def test_rows_replace_by_key_and_failures_clear(tmp_path):
    with Store(tmp_path) as store:
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        key = tuple(row()[k] for k in KEY)
        store.add_failure(key, 1, "first")
        store.add_failure(key, 1, "second")
        assert [f["message"] for f in store.failures()] == ["second"]
        store.add_result(row(bytes=10))
        store.add_result(row(bytes=12))
        store.add_result(row(target_bpp=1.0, bytes=20))
        assert store.failures() == []
        rows = store.results()
        assert [(r["target_bpp"], r["bytes"]) for r in rows] == [(0.5, 12), (1.0, 20)]
        assert rows[0]["psnr_rgb"] == float("inf") and rows[0]["vmaf"] is None
        assert store.finished("h")[key].bytes == 12
        assert store.finished("other") == {}
        with pytest.raises(ValueError, match="unknown result columns"):
            store.add_result({**row(), "speed": 1})


def test_runs_are_recorded_and_killed_ones_marked(tmp_path):
    with Store(tmp_path) as store:
        first = store.begin_run("test", "h", {"dataset": {"a": "ff"}})
        second = store.begin_run("test", "h", {})
        store.end_run(second, "finished")
        runs = store.runs()
    assert [(r["id"], r["status"]) for r in runs] == [(first, "killed"), (second, "finished")]
    assert runs[0]["record"] == {"dataset": {"a": "ff"}}
    # the file is plain SQLite that any client can read
    assert sqlite3.connect(tmp_path / "results.sqlite").execute(
        "SELECT count(*) FROM runs"
    ).fetchone() == (2,)


def test_a_file_that_is_not_a_store_is_refused_untouched(tmp_path):
    path = tmp_path / FILENAME
    path.write_bytes(b"not a database\n" * 500)
    with pytest.raises(StoreError, match="file is not a database"):
        Store(tmp_path)
    assert path.read_bytes() == b"not a database\n" * 500
    assert [p.name for p in tmp_path.iterdir()] == [FILENAME]  # no journal either


# The results columns of stores written before the JPEG AI metrics (PSNR-HVS, ..., NLPD).
OLD_COLUMNS = (
    ("codec", "TEXT NOT NULL"), ("codec_version", "TEXT NOT NULL"), ("image", "TEXT NOT NULL"),
    ("image_sha256", "TEXT NOT NULL"), ("target_bpp", "REAL NOT NULL"),
    ("condition_hash", "TEXT NOT NULL"), ("condition", "TEXT NOT NULL"),
    ("width", "INTEGER NOT NULL"), ("height", "INTEGER NOT NULL"),
    ("knob_name", "TEXT NOT NULL"), ("knob_value", "REAL NOT NULL"),
    ("rate_control", "TEXT NOT NULL"), ("n_encodes", "INTEGER NOT NULL"),
    ("bytes", "INTEGER NOT NULL"), ("bpp", "REAL NOT NULL"), ("deviation_percent", "REAL NOT NULL"),
    ("in_tolerance", "INTEGER NOT NULL"), ("psnr_rgb", "REAL"), ("sse_rgb", "INTEGER"),
    ("n_values", "INTEGER"), ("psnr_y", "REAL"), ("psnr_u", "REAL"), ("psnr_v", "REAL"),
    ("psnr_yuv", "REAL"), ("msssim_rgb", "REAL"), ("msssim_rgb_db", "REAL"), ("msssim_y", "REAL"),
    ("msssim_y_db", "REAL"), ("vmaf", "REAL"), ("encode_seconds", "REAL NOT NULL"),
    ("decode_seconds", "REAL NOT NULL"), ("rate_control_seconds", "REAL NOT NULL"),
    ("bitstream", "TEXT NOT NULL"), ("run_id", "INTEGER NOT NULL"),
    ("finished_at", "TEXT NOT NULL"),
)  # fmt: skip
NEW_COLUMNS = (
    "psnr_hvs", "psnr_hvsm", "msssim_yuv", "msssim_yuv_db", "vif_p", "iw_ssim", "fsim", "fsimc",
    "nlpd",
)  # fmt: skip


def old_store(folder, columns=OLD_COLUMNS):
    """A results.sqlite as the previous schema wrote it, with one run and one row."""
    names = [name for name, _ in columns]
    with sqlite3.connect(folder / FILENAME) as con:
        con.executescript(
            f"CREATE TABLE results ({', '.join(f'{n} {k}' for n, k in columns)}, "
            f"PRIMARY KEY ({', '.join(KEY)}));"
            "CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT NOT NULL, "
            "finished_at TEXT, status TEXT NOT NULL, condition TEXT NOT NULL, "
            "condition_hash TEXT NOT NULL, record TEXT NOT NULL);"
            f"CREATE TABLE failures ({', '.join(f'{n} {k}' for n, k in OLD_COLUMNS[:6])}, "
            "run_id INTEGER NOT NULL, message TEXT NOT NULL, at TEXT NOT NULL);"
        )
        con.execute(
            "INSERT INTO runs (started_at, status, condition, condition_hash, record) "
            "VALUES ('t0', 'finished', 'test', 'h', '{}')"
        )
        old = {n: v for n, v in row(psnr_rgb=30.5, vmaf=80.0).items() if n in names}
        con.execute(
            f"INSERT INTO results ({', '.join(old)}) VALUES ({', '.join('?' for _ in old)})",
            list(old.values()),
        )
    con.close()


def test_a_store_of_the_previous_schema_gains_the_new_columns_and_keeps_its_rows(tmp_path):
    assert set(NEW_COLUMNS) <= set(COLUMN_NAMES)
    assert {n for n, _ in OLD_COLUMNS} | set(NEW_COLUMNS) == set(COLUMN_NAMES)
    old_store(tmp_path)

    def columns() -> set[str]:
        con = sqlite3.connect(tmp_path / FILENAME)
        names = {name for _, name, *_ in con.execute("PRAGMA table_info(results)")}
        con.close()
        return names

    with Store(tmp_path) as store:  # reading: the new columns read as empty, nothing changes
        (kept,) = store.results()
        assert kept["psnr_rgb"] == 30.5 and kept["vmaf"] == 80.0
        assert all(kept[c] is None for c in NEW_COLUMNS)
        assert [r["status"] for r in store.runs()] == ["finished"]
    assert columns() == {n for n, _ in OLD_COLUMNS}  # the ctc that wrote it can still read it
    with Store(tmp_path) as store:  # a run writing to it brings it up to date
        store.begin_run("c", "h" * 64, {})
        store.add_result(row(target_bpp=1.0, psnr_hvs=33.0, nlpd=0.2))
        rows = store.results()
    assert [(r["target_bpp"], r["psnr_hvs"], r["nlpd"]) for r in rows] == [
        (0.5, None, None),
        (1.0, 33.0, 0.2),
    ]
    con = sqlite3.connect(tmp_path / FILENAME)
    types = {name: kind for _, name, kind, *_ in con.execute("PRAGMA table_info(results)")}
    con.close()
    assert set(types) == set(COLUMN_NAMES)
    assert all(types[c] == "REAL" for c in NEW_COLUMNS)
    with Store(tmp_path) as store:  # opening an up-to-date store again changes nothing
        assert len(store.results()) == 2


def test_a_store_lacking_a_required_or_having_an_unknown_column_is_still_refused(tmp_path):
    for name, columns in (
        ("no_bytes", tuple(c for c in OLD_COLUMNS if c[0] != "bytes")),
        ("extra", (*OLD_COLUMNS, ("speed", "REAL"))),
    ):
        folder = tmp_path / name
        folder.mkdir()
        old_store(folder, columns)
        before = (folder / FILENAME).read_bytes()
        with pytest.raises(StoreError, match="its results table differs"):
            Store(folder)
        assert (folder / FILENAME).read_bytes() == before
