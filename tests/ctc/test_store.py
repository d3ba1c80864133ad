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
