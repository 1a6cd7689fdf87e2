import pytest
import torch

from tinyfer.core.model_files import ModelMeta
from tinyfer.errors import TinyferError
from tinyfer.training.checkpoint import load_encoder_into, load_model, save_encoder, save_model
from tinyfer.training.models import create_model


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


def test_damaged_weights_are_refused_at_load(tmp_path):
    import torch

    from tinyfer.core.model_files import ModelMeta
    from tinyfer.errors import TinyferError
    from tinyfer.training.checkpoint import load_model, save_model
    from tinyfer.training.models import create_model

    path = save_model(tmp_path / "model.pt", create_model("tiny", num_classes=3),
                      ModelMeta("tiny", ("a", "b", "c"), 48, 1, {}))  # fmt: skip
    load_model(path)
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["head.3.weight"][0, 0] += 399.0  # one weight changed, file well-formed
    torch.save(payload, tmp_path / "changed.pt")
    with pytest.raises(TinyferError, match="changed.pt: the weights do not match their checksum"):
        load_model(tmp_path / "changed.pt")
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 400):  # 400 bytes flipped in the weights
        data[i] ^= 0xFF
    (tmp_path / "flipped.pt").write_bytes(bytes(data))
    with pytest.raises(TinyferError, match="flipped.pt"):
        load_model(tmp_path / "flipped.pt")


@pytest.mark.slow
def test_a_damaged_onnx_file_is_refused(tmp_path):
    from tinyfer.core.model_files import ModelMeta
    from tinyfer.errors import TinyferError
    from tinyfer.inference.classifier import OnnxClassifier
    from tinyfer.training.checkpoint import save_model
    from tinyfer.training.export import export_onnx
    from tinyfer.training.models import create_model

    path = save_model(tmp_path / "model.pt", create_model("tiny", num_classes=3),
                      ModelMeta("tiny", ("a", "b", "c"), 48, 1, {}))  # fmt: skip
    onnx_file = export_onnx(path, tmp_path / "m.onnx").path
    OnnxClassifier(onnx_file)  # sealed and intact
    data = bytearray(onnx_file.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one weight
    onnx_file.write_bytes(bytes(data))
    with pytest.raises(TinyferError, match="m.onnx: the file does not match its checksum"):
        OnnxClassifier(onnx_file)


def test_bundled_models_are_chosen_by_name_unless_a_path_of_that_name_exists(tmp_path, monkeypatch):
    from tinyfer.core.model_files import BUNDLED_MODELS, DEFAULT_MODEL, resolve_model_file

    default = BUNDLED_MODELS[DEFAULT_MODEL]
    assert resolve_model_file(None) == default == resolve_model_file(DEFAULT_MODEL)
    for name, file in BUNDLED_MODELS.items():
        assert resolve_model_file(name) == file and file.is_file(), name
        assert file.with_suffix(".md").is_file() and file.with_suffix(".pt").is_file(), name
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fast").mkdir()
    save_model(tmp_path / "fast" / "model.pt", create_model("tiny", num_classes=3), _meta())
    assert resolve_model_file("fast").resolve() == tmp_path / "fast" / "model.pt"
    with pytest.raises(TinyferError, match="bundled model's name: accurate, fast"):
        resolve_model_file("fastest")


def test_fine_tuning_starts_from_a_bundled_models_checkpoint():
    from tinyfer.core.model_files import BUNDLED_MODELS
    from tinyfer.training.checkpoint import load_pretrained

    for name, file in BUNDLED_MODELS.items():
        model, meta = load_model(file.with_suffix(".pt"))
        fresh = create_model(meta.name, num_classes=3)
        new = load_pretrained(fresh, ("contempt", "happiness", "anger"), name)
        assert new == ["contempt"]
        for key, value in model.encoder.state_dict().items():
            assert torch.equal(fresh.encoder.state_dict()[key], value), (name, key)
        mine, theirs = fresh.head[-1], model.head[-1]
        for row, label in ((1, "happiness"), (2, "anger")):
            k = meta.labels.index(label)
            assert torch.equal(mine.weight[row], theirs.weight[k]), (name, label)
            assert torch.equal(mine.bias[row], theirs.bias[k]), (name, label)
        assert not any(torch.equal(mine.weight[0], w) for w in theirs.weight)  # untrained row


def test_fine_tuning_may_leave_the_head_untrained():
    from tinyfer.training.checkpoint import load_pretrained

    fresh = create_model("base", num_classes=2)
    before = fresh.head[-1].weight.detach().clone()
    assert load_pretrained(fresh, ("anger", "happiness"), "accurate", head=False) == [
        "anger", "happiness"
    ]  # fmt: skip
    assert torch.equal(fresh.head[-1].weight, before)
