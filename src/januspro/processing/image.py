"""Image loading, preprocessing (understanding and generation) and postprocessing to PIL."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

# Refuse images whose pixel count could exhaust memory (decompression bombs); 8k x 8k is plenty.
MAX_PIXELS = 64_000_000


class ImageError(ValueError):
    """An input that is not a usable image."""


def load_image(src: str | Path | bytes | Image.Image, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open a path, raw bytes or PIL image as an RGB PIL image, with clear errors."""
    if isinstance(src, Image.Image):
        img = src
    else:
        if isinstance(src, (bytes, bytearray)):
            fp: io.BytesIO | Path = io.BytesIO(src)
            name = "image bytes"
        else:
            fp = Path(src).expanduser()
            name = str(fp)
            if not fp.is_file():
                raise ImageError(f"no image file at {fp}")
        try:
            with Image.open(fp) as opened:
                if opened.width * opened.height > max_pixels:
                    raise ImageError(f"{name} is {opened.width}x{opened.height}, over the {max_pixels:,} pixel limit")
                opened.load()
                img = opened.copy()
        except ImageError:
            raise
        except (UnidentifiedImageError, Image.DecompressionBombError) as e:
            raise ImageError(f"{name} is not a readable image ({e})") from None
        except (OSError, SyntaxError, ValueError) as e:
            raise ImageError(f"{name} could not be decoded ({e})") from None
    if img.width < 1 or img.height < 1:
        raise ImageError("image has no pixels")
    if img.mode != "RGB":
        if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            bg = Image.new("RGB", rgba.size, (255, 255, 255))
            bg.paste(rgba, mask=rgba.split()[-1])
            img = bg
        else:
            img = img.convert("RGB")
    return img


def to_uint8(img: Image.Image) -> torch.Tensor:
    """An RGB PIL image as a uint8 tensor [3, H, W] (a quarter of the float32 memory, for datasets held in RAM)."""
    return torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).contiguous()


def fit_understanding(img: Image.Image, size: int, mean: tuple[float, ...], min_size: int = 14) -> Image.Image:
    """The geometric half of :func:`preprocess_understanding`: long side to ``size`` (bicubic), the short
    side padded centred with the mean colour (RGB 127 for mean 0.5): a ``size`` x ``size`` image."""
    w, h = img.size
    long = max(w, h)
    new_h = max(int(h / long * size), min_size)
    new_w = max(int(w / long * size), min_size)
    img = img.resize((new_w, new_h), Image.BICUBIC)
    bg = tuple(int(m * 255) for m in mean)
    if new_w != new_h:
        side = max(new_w, new_h)
        canvas = Image.new("RGB", (side, side), bg)
        canvas.paste(img, ((side - new_w) // 2, (side - new_h) // 2))
        img = canvas
    if img.size != (size, size):  # the long side can round below ``size`` only for tiny inputs
        img = img.resize((size, size), Image.BICUBIC)
    return img


def normalise_understanding(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 pixels [..., 3, H, W] -> the ViT's normalised float input; the same values
    :func:`preprocess_understanding` gives for the same image."""
    m = torch.tensor(mean, device=x.device).view(3, 1, 1)
    s = torch.tensor(std, device=x.device).view(3, 1, 1)
    return (x.float() / 255.0 - m) / s


def preprocess_understanding(img: Image.Image, size: int, mean: tuple[float, ...], std: tuple[float, ...],
                             min_size: int = 14) -> torch.Tensor:
    """Resize the long side to ``size`` (bicubic), pad the short side centred with the mean colour
    (RGB 127 for mean 0.5), scale to [0, 1] and normalise: [3, size, size]."""
    return normalise_understanding(to_uint8(fit_understanding(img, size, mean, min_size)), mean, std)


def fit_generation(img: Image.Image, size: int) -> Image.Image:
    """The geometric half of :func:`preprocess_generation`: short side to ``size`` (bicubic), centre crop."""
    w, h = img.size
    scale = size / min(w, h)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    img = img.resize((new_w, new_h), Image.BICUBIC)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return img.crop((left, top, left + size, top + size))


def preprocess_generation(img: Image.Image, size: int) -> torch.Tensor:
    """Resize the short side to ``size`` (bicubic), centre-crop, scale to [-1, 1]: [3, size, size]."""
    return normalise_generation(to_uint8(fit_generation(img, size)))


def normalise_generation(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels [..., 3, H, W] -> the VQ's [-1, 1] float input (what :func:`preprocess_generation` gives)."""
    return x.float() / 255.0 * 2.0 - 1.0


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """[B, 3, H, W] (or [3, H, W]) decoder output in [-1, 1] -> PIL images (values clipped, then truncated to
    uint8 as the official sampler does)."""
    if images.dim() == 3:
        images = images[None]
    # (x + 1) * 127.5 rounds once to the same float as (x + 1) / 2 * 255 (halving is exact); converting to
    # uint8 before the channel permute moves a quarter of the bytes, and numpy's strided float -> uint8 cast
    # of the permuted view was 5x slower (75 against 15 ms for eight 384-px images on 2 cores)
    x = images.detach().float().add(1.0).mul_(127.5).clamp_(0, 255).to(torch.uint8)
    arr = x.permute(0, 2, 3, 1).contiguous().cpu().numpy()  # [B, H, W, 3], values truncated like astype
    return [Image.fromarray(a) for a in arr]


def contact_sheet(images: list[Image.Image], cols: int | None = None, pad: int = 2,
                  background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Tile images (all the same size) into one grid image, ``cols`` per row (default: near-square)."""
    if not images:
        raise ValueError("no images to tile")
    w, h = images[0].size
    cols = cols or max(1, int(np.ceil(np.sqrt(len(images)))))
    rows = int(np.ceil(len(images) / cols))
    sheet = Image.new("RGB", (cols * w + (cols + 1) * pad, rows * h + (rows + 1) * pad), background)
    for k, im in enumerate(images):
        r, c = divmod(k, cols)
        sheet.paste(im, (pad + c * (w + pad), pad + r * (h + pad)))
    return sheet
