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
