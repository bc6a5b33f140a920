"""
The project's models rebuilt in PyTorch, layer for layer, for bench/vs-pytorch.ts.

Each mirrors a spec in shared/models/ at the config it is given (the bench passes each spec's defaults):
same layers, kernel sizes, strides, padding ("same" as TensorFlow computes it, asymmetric where it is), per-example
normalization, activations and parameter count. Tensors are NCHW, PyTorch's native layout; the math is the same.
Each model's `step` is one lossAndGrads of its tfjs trainer: the losses and the gradients of every parameter,
returned rather than accumulated into .grad, as the tfjs trainer returns them.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


def same_padding(size, kernel, stride):
    """TensorFlow's 'same' padding of one spatial axis: (before, after), the odd pixel after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """A Conv2d padded as TensorFlow's 'same' for a given input size (explicitly when the padding is asymmetric)."""

    def __init__(self, in_channels, out_channels, kernel, stride, size):
        before, after = same_padding(size, kernel, stride)
        symmetric = before == after
        super().__init__(in_channels, out_channels, kernel, stride, padding=before if symmetric else 0)
        self.extra_pad = None if symmetric else (before, after, before, after)

    def forward(self, x):
        return super().forward(x if self.extra_pad is None else F.pad(x, self.extra_pad))


def conv_transpose_same(in_channels, out_channels, size):
    """tfjs's conv2dTranspose(kernel 4, stride 2, 'same') from size to 2*size: the forward conv's 'same' padding is 1, 1."""
    before, after = same_padding(2 * size, 4, 2)
    assert before == after == 1
    return nn.ConvTranspose2d(in_channels, out_channels, 4, 2, padding=1)


# ---------------------------------------------------------------- DCGAN (shared/models/gan/blocks.ts, dcgan.ts)

# The spectral norm's fixed start vector, as in shared/models/layers/spectral-norm.ts (any fixed vector costs the same).
START_SEED = 0x5EED


def spectral_normalize(weight, start, iterations):
    """
    weight / sigma with sigma = v' A u after `iterations` power iterations on A = weight as [units, fan-in] from a fixed
    start, u and v held constant in the gradient: the stateless spectral norm of spectral-norm.ts.
    """
    matrix = weight.flatten(1)
    with torch.no_grad():
        v = F.normalize(start, dim=0)
        u = F.normalize(matrix.t() @ v, dim=0)
        for _ in range(iterations):
            v = F.normalize(matrix @ u, dim=0)
            u = F.normalize(matrix.t() @ v, dim=0)
    sigma = torch.clamp(torch.dot(v, matrix @ u), min=1e-12)
    return weight / sigma


class SpectralConv2d(SameConv2d):
    def __init__(self, in_channels, out_channels, size, iterations, kernel=4, stride=2):
        super().__init__(in_channels, out_channels, kernel, stride, size)
        self.iterations = iterations
        self.register_buffer("start", torch.randn(out_channels, generator=torch.Generator().manual_seed(START_SEED)))

    def forward(self, x):
        x = x if self.extra_pad is None else F.pad(x, self.extra_pad)
        weight = spectral_normalize(self.weight, self.start, self.iterations)
        return F.conv2d(x, weight, self.bias, self.stride, self.padding)


class SpectralLinear(nn.Linear):
    def __init__(self, in_features, out_features, iterations):
        super().__init__(in_features, out_features)
        self.iterations = iterations
        self.register_buffer("start", torch.randn(out_features, generator=torch.Generator().manual_seed(START_SEED)))

    def forward(self, x):
        return F.linear(x, spectral_normalize(self.weight, self.start, self.iterations), self.bias)


def example_norm(channels, mode):
    """G's per-example normalization: layer norm over (C, H, W) with a gain and bias per channel is GroupNorm(1, C)."""
    if mode == "none":
        return nn.Identity()
    if mode == "layer":
        return nn.GroupNorm(1, channels, eps=1e-8)
    raise ValueError(f"generatorNorm {mode!r} is not rebuilt here (the bench times the default, 'layer')")


class Generator(nn.Module):
    def __init__(self, config):
        super().__init__()
        w = config["width"]
        self.width = w
        self.leak = config["leak"]
        self.dense = nn.Linear(config["latentDim"], 7 * 7 * 2 * w)
        # Reshaped to 7x7x2w: tfjs orders those outputs NHWC, this NCHW (check.py permutes tfjs weights to match).
        self.dense.nhwc_out = (7, 7, 2 * w)
        self.norm0 = example_norm(2 * w, config["generatorNorm"])
        self.up1 = conv_transpose_same(2 * w, w, 7)
        self.norm1 = example_norm(w, config["generatorNorm"])
        # generatorDepth past 2 adds 3x3 stride-1 convolutions at 14x14, each normalized (blocks.ts's g_conv3, g_norm3...).
        self.extra = [i for i in range(3, config.get("generatorDepth", 2) + 1)]
        for i in self.extra:
            setattr(self, f"conv{i}", SameConv2d(w, w, 3, 1, 14))
            setattr(self, f"norm{i}", example_norm(w, config["generatorNorm"]))
        self.up2 = conv_transpose_same(w, 1, 14)

    def forward(self, latents):
        x = self.dense(latents).view(-1, 2 * self.width, 7, 7)
        x = F.leaky_relu(self.norm0(x), self.leak)
        x = F.leaky_relu(self.norm1(self.up1(x)), self.leak)
        for i in self.extra:
            x = F.leaky_relu(getattr(self, f"norm{i}")(getattr(self, f"conv{i}")(x)), self.leak)
        return torch.tanh(self.up2(x))


class Discriminator(nn.Module):
    def __init__(self, config):
        super().__init__()
        if config["discriminatorNorm"] != "spectral":
            raise ValueError("discriminatorNorm 'none' is not rebuilt here (the bench times the default, 'spectral')")
        w = config.get("discriminatorWidth") or config["width"]
        self.leak = config["leak"]
        iterations = config["powerIterations"]
        self.conv1 = SpectralConv2d(1, w, 28, iterations)
        self.conv2 = SpectralConv2d(w, 2 * w, 14, iterations)
        # discriminatorDepth past 2 adds 3x3 stride-1 convolutions at 7x7 (blocks.ts's d_conv3...).
        self.extra = [f"conv{i}" for i in range(3, config.get("discriminatorDepth", 2) + 1)]
        for name in self.extra:
            setattr(self, name, SpectralConv2d(2 * w, 2 * w, 7, iterations, kernel=3, stride=1))
        self.logit = SpectralLinear(7 * 7 * 2 * w, 1, iterations)
        self.logit.nhwc_in = (7, 7, 2 * w)

    def forward(self, images):
        x = F.leaky_relu(self.conv1(images), self.leak)
        x = F.leaky_relu(self.conv2(x), self.leak)
        for name in self.extra:
            x = F.leaky_relu(getattr(self, name)(x), self.leak)
        return self.logit(x.flatten(1))


# Below this fake logit G's gradient is taken as if the logit were this (gan-step.ts's LOWEST_FAKE_LOGIT).
LOWEST_FAKE_LOGIT = -80.0


class Dcgan(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.latent_dim = config["latentDim"]
        self.generator = Generator(config)
        self.discriminator = Discriminator(config)

    def inputs(self, batch, generator):
        return {
            "pixels": torch.rand(batch, 1, 28, 28, generator=generator),
            "latents": torch.randn(batch, self.latent_dim, generator=generator),
        }

    def step(self, pixels, latents):
        """
        gan-step.ts's jointGrads: D's loss on real and fake in one pass through D, which also yields each fake image's
        gradient; scaled by -exp(-logit) it is G's loss gradient, pushed back through G (no second pass through D).
        """
        real = pixels * 2 - 1
        fake = self.generator(latents)
        fake_input = fake.detach().requires_grad_(True)
        real_logits, fake_logits = self.discriminator(torch.cat([real, fake_input])).chunk(2)
        d_loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
        d_params = list(self.discriminator.parameters())
        *d_grads, fake_grad = torch.autograd.grad(d_loss, d_params + [fake_input])
        with torch.no_grad():
            ratio = -torch.exp(-torch.clamp(fake_logits, min=LOWEST_FAKE_LOGIT))
            upstream = fake_grad * ratio.view(-1, 1, 1, 1)
            g_loss = F.softplus(-fake_logits).mean()
        g_grads = torch.autograd.grad(fake, list(self.generator.parameters()), upstream)
        return {"d": d_loss.item(), "g": g_loss.item()}, d_grads + list(g_grads)


# ---------------------------------------------------------------- DDPM's U-Net (shared/models/diffusion/unet.ts, ddpm.ts)


class Residual(nn.Module):
    """unet.ts's pre-activation residual block: swish, conv, + the embedding's projection, swish, conv, + the skip."""

    def __init__(self, in_channels, channels, embedding_width, size):
        super().__init__()
        self.conv1 = SameConv2d(in_channels, channels, 3, 1, size)
        self.emb = nn.Linear(embedding_width, channels)
        self.conv2 = SameConv2d(channels, channels, 3, 1, size)
        self.skip = None if in_channels == channels else SameConv2d(in_channels, channels, 1, 1, size)

    def forward(self, x, conditioning):
        h = self.conv1(F.silu(x)) + self.emb(conditioning)[:, :, None, None]
        h = self.conv2(F.silu(h))
        return (x if self.skip is None else self.skip(x)) + h


class Upsample(nn.Module):
    """Nearest 2x upsampling then a 3x3 conv."""

    def __init__(self, in_channels, channels, size):
        super().__init__()
        self.conv = SameConv2d(in_channels, channels, 3, 1, 2 * size)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


def cosine_alpha_bars(timesteps):
    """ᾱ_t of the cosine schedule, f(t + 1) / f(0) (schedule.ts also clips the last β at 0.999; the cost is the same)."""
    s = 0.008
    f = [math.cos(((t / timesteps) + s) / (1 + s) * math.pi / 2) ** 2 for t in range(timesteps + 1)]
    return torch.tensor([min(max(f[t + 1] / f[0], 0.0), 1.0) for t in range(timesteps)], dtype=torch.float32)


class Unet(nn.Module):
    def __init__(self, config):
        super().__init__()
        base = config["baseChannels"]
        c0, c1, c2 = (m * base for m in config["channelMultipliers"])
        width = 4 * base
        self.time_dim = config["timeEmbeddingDim"]
        self.timesteps = config["timesteps"]
        self.register_buffer("alpha_bars", cosine_alpha_bars(config["timesteps"]))
        self.time_dense1 = nn.Linear(self.time_dim, width)
        self.time_dense2 = nn.Linear(width, width)
        self.conv_in = SameConv2d(1, c0, 3, 1, 28)
        self.down28 = Residual(c0, c0, width, 28)
        self.down28_stride = SameConv2d(c0, c0, 3, 2, 28)
        self.down14 = Residual(c0, c1, width, 14)
        self.down14_stride = SameConv2d(c1, c1, 3, 2, 14)
        self.down7 = Residual(c1, c2, width, 7)
        self.middle = Residual(c2, c2, width, 7)
        self.up7 = Residual(2 * c2, c2, width, 7)
        self.up7_upsample = Upsample(c2, c1, 7)
        self.up14 = Residual(2 * c1, c1, width, 14)
        self.up14_upsample = Upsample(c1, c0, 14)
        self.up28 = Residual(2 * c0, c0, width, 28)
        self.conv_out = SameConv2d(c0, 1, 3, 1, 28)

    def embed(self, timesteps):
        """inputs.ts's sinusoidal embedding: sin(t f_i) then cos(t f_i), f_i = 10000^(-i / half)."""
        half = self.time_dim // 2
        frequencies = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
        angles = timesteps.float()[:, None] * frequencies[None, :]
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)

    def forward(self, image, time_embedding):
        conditioning = F.silu(self.time_dense2(F.silu(self.time_dense1(time_embedding))))
        h = self.conv_in(image)
        skip28 = self.down28(h, conditioning)
        skip14 = self.down14(self.down28_stride(skip28), conditioning)
        skip7 = self.down7(self.down14_stride(skip14), conditioning)
        h = self.middle(skip7, conditioning)
        h = self.up7(torch.cat([h, skip7], 1), conditioning)
        h = self.up14(torch.cat([self.up7_upsample(h), skip14], 1), conditioning)
        h = self.up28(torch.cat([self.up14_upsample(h), skip28], 1), conditioning)
        return self.conv_out(F.silu(h))

    def inputs(self, batch, generator):
        return {
            "pixels": torch.rand(batch, 1, 28, 28, generator=generator),
            "timesteps": torch.randint(0, self.timesteps, (batch,), generator=generator),
            "noise": torch.randn(batch, 1, 28, 28, generator=generator),
        }

    def step(self, pixels, timesteps, noise):
        """ddpm.ts's lossAndGrads: noise the images to their steps, predict the noise, mean squared error."""
        alpha_bars = self.alpha_bars[timesteps].view(-1, 1, 1, 1)
        noised = alpha_bars.sqrt() * (pixels * 2 - 1) + (1 - alpha_bars).sqrt() * noise
        loss = F.mse_loss(self(noised, self.embed(timesteps)), noise)
        grads = torch.autograd.grad(loss, list(self.parameters()))
        return {"mse": loss.item()}, list(grads)


# ---------------------------------------------------------------- VAE (shared/models/vae/vae.ts)


class Vae(nn.Module):
    def __init__(self, config):
        super().__init__()
        w = config["width"]
        self.width = w
        self.latent_dim = config["latentDim"]
        self.beta = config["beta"]
        self.enc_conv1 = SameConv2d(1, w, 4, 2, 28)
        self.enc_conv2 = SameConv2d(w, 2 * w, 4, 2, 14)
        self.enc_moments = nn.Linear(7 * 7 * 2 * w, 2 * self.latent_dim)
        self.enc_moments.nhwc_in = (7, 7, 2 * w)
        self.dec_dense = nn.Linear(self.latent_dim, 7 * 7 * 2 * w)
        self.dec_dense.nhwc_out = (7, 7, 2 * w)
        self.dec_up1 = conv_transpose_same(2 * w, w, 7)
        self.dec_up2 = conv_transpose_same(w, 1, 14)

    def inputs(self, batch, generator):
        return {
            "pixels": torch.rand(batch, 1, 28, 28, generator=generator),
            "epsilon": torch.randn(batch, self.latent_dim, generator=generator),
        }

    def step(self, pixels, epsilon):
        """vae.ts's lossAndGrads: the negative ELBO (Bernoulli decoder from logits, closed-form KL), one network."""
        x = F.relu(self.enc_conv2(F.relu(self.enc_conv1(pixels))))
        mean, log_variance = self.enc_moments(x.flatten(1)).chunk(2, dim=1)
        latents = mean + torch.exp(log_variance * 0.5) * epsilon
        y = F.relu(self.dec_dense(latents)).view(-1, 2 * self.width, 7, 7)
        logits = self.dec_up2(F.relu(self.dec_up1(y)))
        reconstruction = F.binary_cross_entropy_with_logits(logits, pixels, reduction="none").sum((1, 2, 3)).mean()
        kl = (0.5 * (mean.square() + log_variance.exp() - 1 - log_variance).sum(1)).mean()
        loss = reconstruction + self.beta * kl
        grads = torch.autograd.grad(loss, list(self.parameters()))
        return {"reconstruction": reconstruction.item(), "kl": kl.item(), "loss": loss.item()}, list(grads)


MODELS = {"dcgan": Dcgan, "ddpm": Unet, "vae": Vae}
