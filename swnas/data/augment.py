"""Batched, on-device data augmentation and normalisation of uint8 NHWC images.

Random crop with zero padding and horizontal flip are one gather: for each image a row offset,
a column offset and a flip bit select the source pixel of every output pixel in the padded batch.
There is no Python loop over images, so the same code runs on the GPU (where the whole data set
stays resident as uint8) and on the CPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["random_params", "crop_flip", "normalize", "crop_flip_normalize"]


def random_params(
    n: int, pad: int, flip: bool, *, generator: torch.Generator, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draw crop offsets in ``0 .. 2*pad`` (rows, columns) and flip bits for ``n`` images."""
    oy = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=device)
    ox = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=device)
    if flip:
        fl = torch.randint(0, 2, (n,), generator=generator, device=device).bool()
    else:
        fl = torch.zeros(n, dtype=torch.bool, device=device)
    return oy, ox, fl


def crop_flip(images: torch.Tensor, oy: torch.Tensor, ox: torch.Tensor, flip: torch.Tensor, pad: int) -> torch.Tensor:
    """Random-crop (zero padding ``pad``) and optionally mirror a batch, vectorised.

    Parameters
    ----------
    images : torch.Tensor
        uint8 (or any dtype) batch, shape ``(B, H, W, C)``.
    oy, ox : torch.Tensor
        int64 offsets in ``0 .. 2*pad``, shape ``(B,)``; ``oy = ox = pad`` is the identity crop.
    flip : torch.Tensor
        bool, shape ``(B,)``: mirror left-right.
    pad : int

    Returns
    -------
    torch.Tensor
        ``(B, H, W, C)``, same dtype and device: ``out[b, i, j] = padded[b, oy[b] + i, ox[b] + j']``
        with ``j' = W - 1 - j`` for flipped images and ``j' = j`` otherwise.
    """
    b, h, w, c = images.shape
    dev = images.device
    padded = F.pad(images, (0, 0, pad, pad, pad, pad)) if pad > 0 else images
    hp, wp = h + 2 * pad, w + 2 * pad
    ar_h = torch.arange(h, device=dev)
    ar_w = torch.arange(w, device=dev)
    # linear index of each output pixel's source pixel in the padded batch, viewed as (B*Hp*Wp, C)
    rows = (oy[:, None] + ar_h) * wp + (torch.arange(b, device=dev) * (hp * wp))[:, None]  # (B, H)
    cols = ox[:, None] + torch.where(flip[:, None], (w - 1) - ar_w, ar_w)  # (B, W)
    src = (rows[:, :, None] + cols[:, None, :]).reshape(-1)
    return padded.reshape(-1, c).index_select(0, src).view(b, h, w, c)


def normalize(
    images: torch.Tensor,
    scale: torch.Tensor,
    shift: torch.Tensor,
    *,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
) -> torch.Tensor:
    """uint8 NHWC -> normalised float NCHW: ``x * scale + shift``.

    ``scale = 1 / (255 std)`` and ``shift = -mean / std`` (shape ``(1, C, 1, 1)``) give
    ``(x / 255 - mean) / std`` per channel; a ``shift`` of shape ``(1, C, H, W)`` subtracts a
    per-pixel mean image instead. With ``channels_last`` the result keeps the NHWC memory layout
    (``torch.channels_last``), otherwise it is a contiguous NCHW tensor.
    """
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    # dtype conversion and layout change in one copy (the NHWC -> NCHW transpose is read-side)
    x = images.permute(0, 3, 1, 2).to(dtype=dtype, memory_format=fmt, copy=True)
    return x.mul_(scale.to(dtype)).add_(shift.to(dtype))


def crop_flip_normalize(
    images: torch.Tensor,
    oy: torch.Tensor,
    ox: torch.Tensor,
    flip: torch.Tensor,
    pad: int,
    scale: torch.Tensor,
    shift: torch.Tensor,
    *,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
) -> torch.Tensor:
    """Augment and normalise a uint8 NHWC batch: :func:`crop_flip`, then :func:`normalize`.

    With a per-channel ``shift`` the uint8 batch is cropped, then normalised (a padding pixel
    becomes ``shift``). With a per-pixel ``shift`` of shape
    ``(1, C, H, W)`` (the training mean image) the result is the crop of the *normalised* image,
    as the released code subtracts the mean image before it augments: every pixel has the mean of
    its source position subtracted and the padding is 0. Cropping is linear, so this is the crop of
    ``x * scale`` plus the crop of the shift image, both zero-padded.
    """
    xb = crop_flip(images, oy, ox, flip, pad)
    if shift.shape[-2:] == (1, 1):
        return normalize(xb, scale, shift, dtype=dtype, channels_last=channels_last)
    b = images.shape[0]
    zero = torch.zeros((), dtype=dtype, device=images.device)
    out = normalize(xb, scale, zero, dtype=dtype, channels_last=channels_last)
    shift_nhwc = shift.to(dtype).permute(0, 2, 3, 1).expand(b, -1, -1, -1)
    cropped = crop_flip(shift_nhwc.contiguous(), oy, ox, flip, pad).permute(0, 3, 1, 2)
    return out.add_(cropped)
