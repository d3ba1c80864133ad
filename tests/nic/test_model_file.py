import pytest

from nic import zoo
from nic.model_file import ModelFileError, load_model_file, sha256_file


def test_registered_hash_matches_the_committed_file():
    for entry in zoo.entries():
        assert sha256_file(entry.path) == entry.sha256


def test_damaged_or_foreign_files_are_refused(tmp_path):
    entry = zoo.entries()[0]
    damaged = tmp_path / "damaged.pt"
    data = bytearray(entry.path.read_bytes())
    damaged.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(ModelFileError, match="does not match"):
        load_model_file(damaged, expected_sha256=entry.sha256)
    with pytest.raises(ModelFileError, match="not a readable model file"):
        load_model_file(damaged)
    with pytest.raises(ModelFileError, match="not found"):
        load_model_file(tmp_path / "missing.pt")


def test_model_file_carries_tables_and_training_metadata():
    model = zoo.load()
    networks = model.num_rate_points if model.masked else 1  # masked: tables per rate point
    assert [len(t) for t in model.z_tables] == [model.net.config.N] * networks
    assert len(model.y_tables) == model.scale_table.size
    training = model.metadata["training"]
    for key in ("data", "steps", "batch", "patch", "lambdas", "hardware", "wall_time_s"):
        assert key in training


def _resaved(tmp_path, change):
    """The gain model's file, re-saved with one entry changed by `change(raw)`."""
    import torch

    entry = next(e for e in zoo.entries() if e.name == "nic-mshp-n128-v2")
    raw = torch.load(entry.path, weights_only=True)
    change(raw)
    path = tmp_path / "changed.pt"
    torch.save(raw, path)
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda raw: raw.pop("tables"), "KeyError"),
        (lambda raw: raw.update(tables=5), "not a usable model file"),
        (lambda raw: raw.update(config="x"), "not a usable model file"),
        (lambda raw: raw.update(name="evil\nnic: error: forged"), "model id"),
        (lambda raw: raw["config"].update(N=3000, M=3000), "architecture out of range"),
        (lambda raw: raw["config"].update(lambdas=[0.1] * 100_000), "architecture out of range"),
        (lambda raw: raw["config"].update(N=64), "weights do not fit"),
        (lambda raw: raw.update(metadata=[1]), "metadata"),
    ],
)
def test_a_crafted_model_file_is_one_line_and_allocates_nothing(tmp_path, change, message):
    path = _resaved(tmp_path, change)
    with pytest.raises(ModelFileError, match=message) as error:
        load_model_file(path)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("special", ["/dev/zero", "/proc/self/pagemap", "fifo", "folder"])
def test_only_a_regular_model_file_is_read(tmp_path, special):
    import os

    if special == "fifo":
        os.mkfifo(tmp_path / "fifo")
    if special == "folder":
        (tmp_path / "folder").mkdir()
    path = special if special.startswith("/") else tmp_path / special
    with pytest.raises(ModelFileError, match="not a model file|cannot"):
        load_model_file(path)


def test_a_registered_name_is_the_zoo_model_even_beside_a_file_of_that_name(tmp_path, monkeypatch):
    name = zoo.entries()[0].name
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_bytes(
        next(e for e in zoo.entries() if e.name != name).path.read_bytes()
    )
    assert zoo.load(name).sha256 == zoo.entries()[0].sha256
    with pytest.raises(ModelFileError, match="not a model file"):
        zoo.load("/dev/zero")


class _RunsCode:
    """Pickles as a call that writes `marker`: what a model file that runs code holds."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def test_a_model_file_that_would_run_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "MARKER"
    path = _resaved(tmp_path, lambda raw: raw["metadata"].update(note=_RunsCode(marker)))
    with pytest.raises(ModelFileError, match="holds exec, not only tensors") as error:
        load_model_file(path)
    assert "weights_only" not in str(error.value) and "\n" not in str(error.value)
    assert not marker.exists()
