import pytest
import torch

from tinyfer.checkpoint import ModelMeta, load_encoder_into, load_model, save_encoder, save_model
from tinyfer.errors import TinyferError
from tinyfer.models import create_model


def _meta(**kw):
    base = dict(name="tiny", labels=("anger", "happiness", "neutral"), img_size=48, in_chans=1,
                preprocessing={"gray": True, "scale": 1 / 255})  # fmt: skip
    return ModelMeta(**{**base, **kw})


@torch.no_grad()
def test_model_file_round_trip_describes_itself(tmp_path):
    model = create_model("tiny", num_classes=3).eval()
    path = save_model(tmp_path / "m.pt", model, _meta(metrics={"test": {"accuracy": 0.5}}))
    loaded, meta = load_model(path)
    x = torch.rand(4, 1, 48, 48)
    torch.testing.assert_close(loaded(x), model(x))
    assert meta.labels == ("anger", "happiness", "neutral") and meta.img_size == 48
    assert meta.metrics["test"]["accuracy"] == 0.5
    assert not list(tmp_path.glob("*.tmp"))


def test_wrong_files_are_refused(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(TinyferError, match="junk.pt: not a tinyfer model file"):
        load_model(junk)
    torch.save({"state_dict": {}}, tmp_path / "plain.pt")
    with pytest.raises(TinyferError, match="no 'tinyfer-model' header"):
        load_model(tmp_path / "plain.pt")
    with pytest.raises(TinyferError, match="no such model file"):
        load_model(tmp_path / "absent.pt")


def test_encoder_of_another_architecture_is_refused(tmp_path):
    path = save_encoder(tmp_path / "enc.pt", create_model("tiny").encoder)
    small = create_model("small")
    with pytest.raises(TinyferError, match="another architecture"):
        load_encoder_into(small.encoder, path)
    same = create_model("tiny")
    load_encoder_into(same.encoder, path)
    saved = torch.load(path, weights_only=True)["state_dict"]
    for key, value in same.encoder.state_dict().items():
        assert torch.equal(value, saved[key])
