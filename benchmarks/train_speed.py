"""Training throughput (images/s) of every registered model, channels-last on and off.

    python benchmarks/train_speed.py [--batch 64] [--steps 10] [--size 48] [--name train_speed]

One optimiser step = forward, cross-entropy, backward, AdamW update, on random 1x48x48 faces;
the median over ``--steps`` timed steps after 3 warm-up steps. Threads: torch's default
(all cores) unless --threads is given.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from common import write_result

from tinyfer.training.models import count_parameters, create_model, list_models


def images_per_second(name: str, *, batch: int, steps: int, size: int, channels_last: bool):
    model = create_model(name, img_size=size)
    x = torch.rand(batch, 1, size, size)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 7, (batch,))
    opt = torch.optim.AdamW(model.parameters())
    times = []
    for step in range(steps + 3):
        start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        if step >= 3:
            times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--models", nargs="*", default=list_models())
    parser.add_argument("--name", default="train_speed")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for name in args.models:
        row = {"model": name, "parameters": count_parameters(create_model(name))}
        for cl in (False, True):
            ips = images_per_second(
                name, batch=args.batch, steps=args.steps, size=args.size, channels_last=cl
            )
            row["channels_last" if cl else "contiguous"] = round(ips, 1)
        rows.append(row)
        print(row, flush=True)
    figures = {
        "batch": args.batch,
        "img_size": args.size,
        "threads": torch.get_num_threads(),
        "steps": args.steps,
        "images_per_s": rows,
    }
    print(write_result(args.name, figures, "torch"))


if __name__ == "__main__":
    main()
