#!/usr/bin/env python3
"""Does this CPU hit oneDNN's strided 1x1 convolution bug, and does tinyfer avoid it?

    .venv/bin/python scripts/onednn_repro.py

torch 2.13's oneDNN computes the weight gradient of a stride-2 1x1 convolution in channels-last
layout wrongly, or corrupts the heap and crashes, when its input channels are below the ISA's
channel block (16 on AVX-512, 8 on AVX2). Each case runs in its own process, so a crash is
reported instead of ending this script; the weight gradient is compared with oneDNN switched off.
Exit status 1 if tinyfer's shortcut (SubsampledPointwise) is wrong on this CPU.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CASES = {
    "strided": "torch.nn.Conv2d({ic}, {oc}, 1, stride=2)",
    "tinyfer": "tinyfer's SubsampledPointwise({ic}, {oc}, 2)",
}


def cpu() -> tuple[str, int]:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    name = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if "model name" in ln), "")
    return name or "unknown CPU", 16 if " avx512f" in info else 8


def child(case: str, ic: int, hw: int) -> None:
    """Print the worst relative error of the weight gradient, oneDNN on vs off."""
    import warnings

    warnings.filterwarnings("ignore")
    import torch

    from tinyfer.training.models.blocks import SubsampledPointwise

    torch.manual_seed(0)
    conv = (
        torch.nn.Conv2d(ic, 2 * ic, 1, stride=2, bias=False)
        if case == "strided"
        else SubsampledPointwise(ic, 2 * ic, 2)
    ).to(memory_format=torch.channels_last)
    worst = 0.0
    for batch in range(1, 17):
        x = torch.randn(batch, ic, hw, hw).to(memory_format=torch.channels_last)
        grads = []
        for onednn in (False, True):
            conv.zero_grad()
            with torch.backends.mkldnn.flags(enabled=onednn):
                conv(x).square().sum().backward()
            grads.append(conv.weight.grad.clone())
        ref, got = grads
        worst = max(worst, ((got - ref).abs().max() / ref.abs().max()).item())
        if worst > 1e-4:
            break  # wrong once is enough; going on only risks the heap
    print(f"{worst:.3g}")


def run(case: str, ic: int, hw: int) -> tuple[bool, str]:
    try:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", case, str(ic), str(hw)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        return False, "HUNG (no answer in 120 s: a corrupted heap can deadlock)"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        return False, f"CRASH (exit {proc.returncode}: {last})"
    err = float(proc.stdout.split()[-1])
    verdict = "ok" if err <= 1e-4 else "WRONG weight gradient"
    return err <= 1e-4, f"{verdict} (relative error {err:.2g})"


def main() -> int:
    import torch

    name, block = cpu()
    ic, hw = block // 2, 48
    print(f"CPU: {name} ({'AVX-512' if block == 16 else 'AVX2'}: oneDNN channel block {block})")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; input {ic}x{hw}x{hw}")
    results = {}
    for case, text in CASES.items():
        results[case], message = run(case, ic, hw)
        print(f"  {text.format(ic=ic, oc=2 * ic)}, channels-last: {message}")
    if not results["strided"]:
        print("=> this CPU is affected by the oneDNN bug", end="")
    else:
        print("=> not affected: this CPU and torch build get the strided case right", end="")
    print("; tinyfer's shortcut is " + ("correct" if results["tinyfer"] else "WRONG"))
    return 0 if results["tinyfer"] else 1


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(main())
