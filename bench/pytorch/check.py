"""
Checks that models.py computes what the tfjs trainer computes: for bench/vs-pytorch.ts --check.

  python3 bench/pytorch/check.py STEP.json

STEP.json holds one tfjs lossAndGrads: the model and config, the weights by tfjs name (tfjs layouts), the batch, the
noise, the spectral norm's start vectors, and what tfjs got (losses, each gradient's L2 norm). This loads the weights
into the PyTorch model (kernels permuted to PyTorch's layouts, dense layers next to a 7x7xC reshape reordered from
NHWC to NCHW), takes the same step on the same inputs, and prints `RESULT <json>` with PyTorch's losses and gradient
norms by tfjs name (a norm does not depend on layout, so the two compare directly).
"""

import json
import sys

import torch
from torch import nn

from models import MODELS, SpectralConv2d, SpectralLinear


def tfjs_name(torch_name, module):
    """generator.up1.weight -> g_up1/kernel, down28.conv1.bias -> down28_conv1/bias, a norm's weight -> .../gain."""
    *path, kind = torch_name.split(".")
    path = [{"generator": "g", "discriminator": "d"}.get(part, part) for part in path]
    suffix = "bias" if kind == "bias" else "gain" if isinstance(module, nn.GroupNorm) else "kernel"
    return "_".join(path) + "/" + suffix


def nhwc_order(shape):
    """For each NCHW position of a (h, w, c) tensor, its NHWC position."""
    h, w, c = shape
    return torch.arange(h * w * c).view(h, w, c).permute(2, 0, 1).flatten()


def to_torch(value, kind, module):
    """A tfjs tensor in the layout of the PyTorch parameter it becomes."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        # Conv [kh, kw, in, out] -> [out, in, kh, kw]; transposed conv [kh, kw, out, in] -> [in, out, kh, kw].
        return value.permute(3, 2, 0, 1) if kind == "weight" else value
    if isinstance(module, nn.Linear):
        out_order = nhwc_order(module.nhwc_out) if hasattr(module, "nhwc_out") else None
        if kind == "bias":
            return value if out_order is None else value[out_order]
        weight = value.t()
        if out_order is not None:
            weight = weight[out_order]
        if hasattr(module, "nhwc_in"):
            weight = weight[:, nhwc_order(module.nhwc_in)]
        return weight
    return value


def main():
    with open(sys.argv[1]) as file:
        step = json.load(file)
    model = MODELS[step["model"]](step["config"])
    modules = dict(model.named_modules())
    names = {}
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            module_name, kind = name.rsplit(".", 1)
            module = modules[module_name]
            tfjs = tfjs_name(name, module)
            names[name] = tfjs
            value = torch.tensor(step["weights"][tfjs], dtype=torch.float32).view(step["shapes"][tfjs])
            parameter.copy_(to_torch(value, kind, module))
        for module_name, module in modules.items():
            if isinstance(module, (SpectralConv2d, SpectralLinear)):
                module.start.copy_(torch.tensor(step["spectralStart"][str(module.start.numel())]))
        if "alphaBars" in step:
            model.alpha_bars.copy_(torch.tensor(step["alphaBars"]))

    count = step["batch"]
    pixels = torch.tensor(step["images"], dtype=torch.float32).view(count, 1, 28, 28)
    noise = {name: torch.tensor(values, dtype=torch.float32) for name, values in step["noise"].items()}
    if step["model"] == "dcgan":
        inputs = {"latents": noise["latents"].view(count, -1)}
    elif step["model"] == "ddpm":
        inputs = {"timesteps": noise["timesteps"].long(), "noise": noise["noise"].view(count, 1, 28, 28)}
    else:
        inputs = {"epsilon": noise["epsilon"].view(count, -1)}
    losses, grads = model.step(pixels, **inputs)
    # model.step returns gradients in the order of model.parameters(), but Dcgan's: D's, then G's.
    parameters = [name for name, _ in model.named_parameters()]
    if step["model"] == "dcgan":
        parameters = [n for n in parameters if n.startswith("discriminator.")] + [n for n in parameters if n.startswith("generator.")]
    norms = {names[name]: grad.double().norm().item() for name, grad in zip(parameters, grads)}
    print("RESULT " + json.dumps({"losses": losses, "gradNorms": norms}), flush=True)


if __name__ == "__main__":
    main()
