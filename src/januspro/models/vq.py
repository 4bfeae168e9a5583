"""LlamaGen VQ tokenizer (VQ-16 in the released models): conv encoder, l2-normalised codebook, conv decoder.

Module names follow the official checkpoint (``conv_blocks``, ``res``, ``attn``, ``mid``, ``quantize.embedding``)
so the official layout maps by prefix only. Codes are laid out row-major over the latent grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import VQConfig
from .attention import sdpa


def _norm(ch: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=groups, num_channels=ch, eps=1e-6, affine=True)


def _no_grad_needed(x: torch.Tensor) -> bool:
    return not (torch.is_grad_enabled() and x.requires_grad)


def _norm_silu(norm: nn.GroupNorm, x: torch.Tensor) -> torch.Tensor:
    """SiLU(GroupNorm(x)). When nothing differentiates through it the SiLU runs in place on the norm's fresh
    output: at 384 px a decoder activation is 75 MB per image, and skipping that allocation made the VQ decode
    ~14% faster on CPU (2 cores)."""
    y = norm(x)
    return F.silu(y, inplace=_no_grad_needed(y))


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, groups: int) -> None:
        super().__init__()
        self.norm1 = _norm(cin, groups)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = _norm(cout, groups)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(_norm_silu(self.norm1, x))
        h = self.conv2(_norm_silu(self.norm2, h))
        if self.nin_shortcut is not None:
            x = self.nin_shortcut(x)
        return h.add_(x) if _no_grad_needed(h) else x + h  # h is conv2's fresh output


class AttnBlock(nn.Module):
    """Single-head spatial self-attention with 1x1 conv projections."""

    def __init__(self, ch: int, groups: int) -> None:
        super().__init__()
        self.norm = _norm(ch, groups)
        self.q = nn.Conv2d(ch, ch, 1)
        self.k = nn.Conv2d(ch, ch, 1)
        self.v = nn.Conv2d(ch, ch, 1)
        self.proj_out = nn.Conv2d(ch, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        y = self.norm(x)
        q = self.q(y).flatten(2).transpose(1, 2)  # [B, HW, C]
        k = self.k(y).flatten(2).transpose(1, 2)  # [B, HW, C]
        v = self.v(y).flatten(2).transpose(1, 2)  # [B, HW, C]
        out = sdpa(q[:, None], k[:, None], v[:, None])[:, 0]  # [B, HW, C]
        return x + self.proj_out(out.transpose(1, 2).reshape(b, c, h, w))


class Downsample(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # asymmetric padding, as LlamaGen


class Upsample(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _no_grad_needed(x):
            return self.upsample_conv(x)
        if x.dtype in (torch.float16, torch.bfloat16):  # nearest upsampling in fp32, as the official code
            x = F.interpolate(x.float(), scale_factor=2.0, mode="nearest").to(x.dtype)
        else:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return self.conv(x)

    def phase_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The 3x3 convolution of the 2x nearest-upsampled input as four 2x2 convolutions of the input itself,
        one per output phase (row parity, column parity), stacked along the output channels: a phase's rows of
        the upsampled input repeat input rows, so kernel taps that land on the same input row (or column) add."""
        dtype = self.conv.weight.dtype
        acc = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype  # the tap sums in fp32 or wider
        w = self.conv.weight.to(acc)  # [O, I, 3, 3]

        def fold(t: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
            a, b, c = t.unbind(dim)
            return torch.stack([a, b + c], dim), torch.stack([a + b, c], dim)  # even phase, odd phase

        rows = fold(w, 2)
        phases = [p for r in rows for p in fold(r, 3)]  # (0, 0), (0, 1), (1, 0), (1, 1)
        bias = self.conv.bias.repeat(4) if self.conv.bias is not None else None
        return torch.cat(phases).to(dtype), bias

    def upsample_conv(self, x: torch.Tensor) -> torch.Tensor:
        """``conv(nearest_upsample_2x(x))`` without the upsampled tensor: 16 instead of 36 multiply-adds per
        output value and no interpolation pass (about 2x faster on CPU, equal up to float rounding)."""
        b, _, h, w = x.shape
        weight, bias = self.phase_weights()
        out = F.conv2d(x, weight, bias, padding=1)  # [B, 4*O, H+1, W+1]
        o = out.shape[1] // 4
        if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
            # keep channels-last (what the attention block's output has): oneDNN's convolutions that follow
            # run faster in it, and the plain path keeps it too
            nhwc = out.permute(0, 2, 3, 1).contiguous().view(b, h + 1, w + 1, 2, 2, o)
            y = x.new_empty(b, h, 2, w, 2, o)
            for py in (0, 1):
                for px in (0, 1):
                    y[:, :, py, :, px] = nhwc[:, py:py + h, px:px + w, py, px]
            return y.view(b, 2 * h, 2 * w, o).permute(0, 3, 1, 2)
        nchw = out.view(b, 2, 2, o, h + 1, w + 1)
        y = x.new_empty(b, o, h, 2, w, 2)
        for py in (0, 1):
            for px in (0, 1):
                y[:, :, :, py, :, px] = nchw[:, py, px, :, py:py + h, px:px + w]
        return y.view(b, o, 2 * h, 2 * w)


class _Level(nn.Module):
    """One resolution level: residual blocks, attention after each (lowest level only), resampling."""

    def __init__(self, cin: int, cout: int, n_blocks: int, with_attn: bool, resample: type | None, groups: int) -> None:
        super().__init__()
        self.res = nn.ModuleList()
        self.attn = nn.ModuleList()
        for _ in range(n_blocks):
            self.res.append(ResBlock(cin, cout, groups))
            cin = cout
            if with_attn:
                self.attn.append(AttnBlock(cout, groups))
        if resample is Downsample:
            self.downsample = Downsample(cout)
        elif resample is Upsample:
            self.upsample = Upsample(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, blk in enumerate(self.res):
            x = blk(x)
            if len(self.attn) > 0:
                x = self.attn[i](x)
        if hasattr(self, "downsample"):
            x = self.downsample(x)
        if hasattr(self, "upsample"):
            x = self.upsample(x)
        return x


def _mid(ch: int, groups: int) -> nn.ModuleList:
    return nn.ModuleList([ResBlock(ch, ch, groups), AttnBlock(ch, groups), ResBlock(ch, ch, groups)])


class Encoder(nn.Module):
    def __init__(self, cfg: VQConfig) -> None:
        super().__init__()
        ch, mult, g = cfg.base_channels, cfg.channel_mult, cfg.norm_groups
        n = len(mult)
        self.conv_in = nn.Conv2d(cfg.in_channels, ch, 3, padding=1)
        in_mult = (1,) + tuple(mult)
        self.conv_blocks = nn.ModuleList(
            _Level(ch * in_mult[i], ch * mult[i], cfg.num_res_blocks, i == n - 1, Downsample if i != n - 1 else None, g)
            for i in range(n)
        )
        top = ch * mult[-1]
        self.mid = _mid(top, g)
        self.norm_out = _norm(top, g)
        self.conv_out = nn.Conv2d(top, cfg.z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.conv_blocks:
            h = level(h)
        for m in self.mid:
            h = m(h)
        return self.conv_out(_norm_silu(self.norm_out, h))


class Decoder(nn.Module):
    def __init__(self, cfg: VQConfig) -> None:
        super().__init__()
        ch, mult, g = cfg.base_channels, cfg.channel_mult, cfg.norm_groups
        n = len(mult)
        block_in = ch * mult[-1]
        self.conv_in = nn.Conv2d(cfg.z_channels, block_in, 3, padding=1)
        self.mid = _mid(block_in, g)
        levels = []
        for i in reversed(range(n)):
            levels.append(_Level(block_in, ch * mult[i], cfg.num_res_blocks + 1, i == n - 1,
                                 Upsample if i != 0 else None, g))
            block_in = ch * mult[i]
        self.conv_blocks = nn.ModuleList(levels)
        self.norm_out = _norm(block_in, g)
        self.conv_out = nn.Conv2d(block_in, cfg.out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(z)
        for m in self.mid:
            h = m(h)
        for level in self.conv_blocks:
            h = level(h)
        return self.conv_out(_norm_silu(self.norm_out, h))


@dataclass
class QuantizeOutput:
    z_q: torch.Tensor  # [B, C, h, w] quantised latents (straight-through gradients)
    codes: torch.Tensor  # [B, h*w] row-major code indices
    codebook_loss: torch.Tensor  # ||sg(z) - e||^2
    commit_loss: torch.Tensor  # beta * ||z - sg(e)||^2


class Quantizer(nn.Module):
    def __init__(self, cfg: VQConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embedding = nn.Embedding(cfg.codebook_size, cfg.codebook_dim)

    def codebook(self) -> torch.Tensor:
        w = self.embedding.weight
        return F.normalize(w, p=2, dim=-1) if self.cfg.l2_norm else w

    def forward(self, z: torch.Tensor) -> QuantizeOutput:
        b, c, h, w = z.shape
        zf = z.permute(0, 2, 3, 1).reshape(-1, c)  # [B*h*w, C]
        if self.cfg.l2_norm:
            zf = F.normalize(zf, p=2, dim=-1)
        emb = self.codebook()  # [K, C]
        dist = zf.pow(2).sum(1, keepdim=True) + emb.pow(2).sum(1) - 2 * zf @ emb.t()  # [B*h*w, K]
        idx = dist.argmin(dim=1)
        zq = emb[idx]  # [B*h*w, C]
        codebook_loss = F.mse_loss(zq, zf.detach())
        commit_loss = self.cfg.commit_beta * F.mse_loss(zq.detach(), zf)
        zq = zf + (zq - zf).detach()
        zq = zq.view(b, h, w, c).permute(0, 3, 1, 2)  # [B, C, h, w]
        return QuantizeOutput(zq, idx.view(b, h * w), codebook_loss, commit_loss)

    def lookup(self, codes: torch.Tensor, grid: int) -> torch.Tensor:
        """[B, grid*grid] codes -> [B, C, grid, grid] latents."""
        b = codes.shape[0]
        zq = self.codebook()[codes]  # [B, N, C]
        return zq.view(b, grid, grid, -1).permute(0, 3, 1, 2)


class VQModel(nn.Module):
    def __init__(self, cfg: VQConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.quantize = Quantizer(cfg)
        self.quant_conv = nn.Conv2d(cfg.z_channels, cfg.codebook_dim, 1)
        self.post_quant_conv = nn.Conv2d(cfg.codebook_dim, cfg.z_channels, 1)

    def quantize_images(self, images: torch.Tensor) -> QuantizeOutput:
        """[B, 3, S, S] images in [-1, 1] -> quantiser output (for training and encoding)."""
        return self.quantize(self.quant_conv(self.encoder(images)))

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, S, S] images in [-1, 1] -> [B, grid*grid] codes."""
        return self.quantize_images(images).codes

    def decode_latents(self, z_q: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.post_quant_conv(z_q))

    def decode_code(self, codes: torch.Tensor) -> torch.Tensor:
        """[B, grid*grid] codes -> [B, 3, S, S] images, roughly in [-1, 1]."""
        grid = self.cfg.grid_size
        if codes.dim() != 2 or codes.shape[1] != grid * grid:
            raise ValueError(f"expected codes of shape [batch, {grid * grid}], got {tuple(codes.shape)}")
        return self.decode_latents(self.quantize.lookup(codes, grid).to(self.post_quant_conv.weight.dtype))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, QuantizeOutput]:
        q = self.quantize_images(images)
        return self.decode_latents(q.z_q), q
