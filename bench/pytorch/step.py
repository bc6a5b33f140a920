"""
One model's training step in PyTorch, timed on request: the child bench/vs-pytorch.ts alternates with its tfjs child.

  python3 bench/pytorch/step.py --model dcgan --config '{"width": 32, ...}' --batch 64 --threads 1

Prints `READY <json>` (the parameter count, each tensor's size, the versions), then answers each `step` line on stdin
with `STEP <ms>`, the wall time of one step (inputs made beforehand, as the tfjs child's batch and noise are), until
stdin closes. Errors go out as `ERROR <message>`.
"""

import argparse
import json
import sys
import time

import torch

from models import MODELS


def blas_library():
    """The BLAS library this process loaded (Debian's torch takes whichever libblas.so.3 the alternatives point at)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "blas" in line.lower() and "lapack" not in line.lower() and "/" in line}
    except OSError:
        return "unknown"
    return ", ".join(sorted(paths)) or "none loaded"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, choices=sorted(MODELS))
    parser.add_argument("--config", required=True, help="the model config as JSON (the spec's defaults)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = MODELS[args.model](json.loads(args.config))
    generator = torch.Generator().manual_seed(args.seed)
    sizes = [parameter.numel() for parameter in model.parameters()]
    ready = {
        "parameters": sum(sizes),
        "tensorSizes": sorted(sizes),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "blas": blas_library(),
    }
    print("READY " + json.dumps(ready), flush=True)
    for line in sys.stdin:
        if line.strip() != "step":
            print(f"ERROR unknown command {line.strip()!r}", flush=True)
            continue
        inputs = model.inputs(args.batch, generator)
        start = time.perf_counter()
        losses, grads = model.step(**inputs)
        elapsed = (time.perf_counter() - start) * 1000
        if len(grads) != len(sizes) or not all(torch.isfinite(torch.tensor(list(losses.values())))):
            print(f"ERROR step gave {len(grads)} gradients for {len(sizes)} tensors, losses {losses}", flush=True)
            continue
        print(f"STEP {elapsed}", flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # the parent reads the reason from this line
        print(f"ERROR {type(error).__name__}: {error}", flush=True)
        sys.exit(1)
