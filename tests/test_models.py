import pytest
import torch

from tinyfer.errors import TinyferError
from tinyfer.models import count_parameters, create_model, list_models


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("size", [48, 64, 50])
@torch.no_grad()
def test_classifier_and_decoder_shapes(name, size):
    model = create_model(name, num_classes=6, img_size=size).eval()
    x = torch.rand(2, 1, size, size)
    assert model(x).shape == (2, 6)
    features = model.forward_features(x)
    assert model.forward_head(features).shape == (2, 6)
    recon = model.make_decoder()(features, x.shape[-2:])
    assert recon.shape == x.shape
    assert float(recon.min()) >= 0 and float(recon.max()) <= 1


def test_size_classes_of_the_zoo():
    assert count_parameters(create_model("tiny")) <= 60_000
    assert count_parameters(create_model("base")) <= 1_000_000
    sizes = [count_parameters(create_model(n)) for n in ("tiny", "small", "base")]
    assert sizes == sorted(sizes)


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(TinyferError, match="unknown model 'huge'.*tiny"):
        create_model("huge")
