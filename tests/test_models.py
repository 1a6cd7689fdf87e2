import pytest
import torch

from tinyfer.errors import TinyferError
from tinyfer.training.models import count_parameters, create_model, list_models


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
    sizes = [count_parameters(create_model(n)) for n in ("tiny", "small", "base", "wide")]
    assert sizes == sorted(sizes)


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(TinyferError, match="unknown model 'huge'.*tiny"):
        create_model("huge")


# Gradients with oneDNN on and off. torch 2.13's oneDNN got strided 1x1 convolutions in
# channels-last wrong (or crashed) below the ISA's channel block. Every convolution of every model
# (and of its phase-1 decoder) is checked at its training shape: its input and output gradient
# are captured from a real training step, then its backward is computed again with oneDNN on and
# off. Layer by layer, because across a whole network a ReLU or max-pool whose input lies within
# rounding of its threshold turns a 1e-7 difference into a large one in every layer below it.
# It runs in a child process so that a native crash fails these tests instead of ending pytest
# (a deadlock too: 12 s on a quiet 2-core machine, 180 s seen with two trainings beside it).
# "narrow" is tiny with a 4-channel stem: below the block on AVX2 as on AVX-512, so a return of
# the strided shortcut is caught on any x86 CPU.
GRAD_MODELS = [*list_models(), "narrow"]
GRAD_SIZES = (48, 64)  # every config's img_size
GRAD_TOLERANCE = 1e-4  # max |oneDNN - reference| / max |reference|, per gradient


def _grad_model(name: str, size: int):
    from tinyfer.training.models import EncoderSpec, FerNet, model_info

    if name == "narrow":
        spec = EncoderSpec("sep", stem=4, widths=(8, 16), depths=(1, 1))
        return FerNet(spec, 7, img_size=size)
    return FerNet(model_info(name).spec, 7, img_size=size)


def _layer_errors(name: str, size: int, layout) -> dict[str, float]:
    """Worst relative error of each convolution's weight and input gradients, oneDNN vs not."""
    torch.manual_seed(0)
    model = _grad_model(name, size)
    decoder = model.make_decoder()
    convs = {
        **{f"{k}": m for k, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)},
        **{f"decoder.{k}": m for k, m in decoder.named_modules() if isinstance(m, torch.nn.Conv2d)},
    }
    inputs: dict[str, torch.Tensor] = {}
    grad_outputs: dict[str, torch.Tensor] = {}
    hooks = []
    for key, conv in convs.items():
        hooks.append(conv.register_forward_hook(lambda m, i, o, k=key: inputs.update({k: i[0]})))
        hooks.append(
            conv.register_full_backward_hook(
                lambda m, gi, go, k=key: grad_outputs.update({k: go[0]})
            )
        )
    model.to(memory_format=layout).train()
    decoder.to(memory_format=layout).train()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(8, 1, size, size, generator=g).to(memory_format=layout).requires_grad_()
    y = torch.randint(0, 7, (8,), generator=g)
    features = model.forward_features(x)  # oneDNN on: the path training takes
    loss = torch.nn.functional.cross_entropy(model.forward_head(features), y)  # phase 2's
    loss = loss + torch.nn.functional.mse_loss(decoder(features, x.shape[-2:]), x)  # phase 1's
    loss.backward()
    for hook in hooks:
        hook.remove()

    errors = {}
    for key, conv in convs.items():
        inp, grad_out = inputs[key], grad_outputs[key]
        grads = []
        for onednn in (False, True):
            conv.zero_grad()
            leaf = inp.detach().clone().requires_grad_()
            with torch.backends.mkldnn.flags(enabled=onednn):
                conv(leaf).backward(grad_out.detach())
            grads.append((conv.weight.grad.clone(), leaf.grad.clone()))
        (w_ref, x_ref), (w_got, x_got) = grads
        for part, ref, got in (("weight", w_ref, w_got), ("input", x_ref, x_got)):
            errors[f"{key} ({part})"] = float(
                (got - ref).abs().max() / ref.abs().max().clamp_min(1e-12)
            )
    return errors


def _gradient_errors() -> None:
    """Child process: one JSON line per (model, size, layout), printed as soon as it is done."""
    import json

    for name in GRAD_MODELS:
        for size in GRAD_SIZES:
            for layout in ("channels_last", "contiguous_format"):
                print(json.dumps({"start": [name, size, layout]}), flush=True)
                errors = _layer_errors(name, size, getattr(torch, layout))
                worst = max(errors, key=errors.get)
                row = {"model": name, "size": size, "layout": layout, "worst": worst}
                print(json.dumps({**row, "error": errors[worst]}), flush=True)


@pytest.fixture(scope="module")
def gradient_errors() -> tuple[dict, str]:
    import json
    import subprocess
    import sys

    # A corrupted heap may crash or deadlock; the partial output says where it stopped.
    proc = subprocess.Popen(
        [sys.executable, __file__], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = proc.communicate(timeout=600)
        failure = f"child died (exit {proc.returncode})" if proc.returncode else ""
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        failure = "child hung for 600 s (a deadlock after heap corruption?)"
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    done = {(r["model"], r["size"], r["layout"]): r for r in rows if "model" in r}
    started = [tuple(r["start"]) for r in rows if "start" in r]
    crash = ""
    if failure:
        where = started[-1] if started else "before any model"
        crash = f"{failure} at {where}: {err[-2000:]}"
    return done, crash


@pytest.mark.parametrize("name", GRAD_MODELS)
def test_onednn_gradients_match_the_reference(name, gradient_errors):
    done, crash = gradient_errors
    for size in GRAD_SIZES:
        for layout in ("channels_last", "contiguous_format"):
            row = done.get((name, size, layout))
            assert row is not None, crash or f"no result for {name} {size} {layout}"
            assert row["error"] < GRAD_TOLERANCE, (
                f"{name} at {size}x{size}, {layout}: oneDNN's gradient of {row['worst']} "
                f"differs from the reference by {row['error']:.3g} (relative)"
            )


def test_no_strided_pointwise_convolution_in_the_zoo():
    for name in GRAD_MODELS:
        for module in _grad_model(name, 48).modules():
            if isinstance(module, torch.nn.Conv2d) and module.kernel_size == (1, 1):
                assert module.stride == (1, 1), f"{name}: {module} takes oneDNN's faulty path"


if __name__ == "__main__":
    _gradient_errors()
