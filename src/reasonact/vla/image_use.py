"""Does a VLA read its images? Measurements of how much a model's outputs depend on the camera (issue 17: the
`small` pre-stage scored the same loss with real, shuffled and black images).

    loss_real / loss_shuffled / loss_black   the training loss of one batch with its own images, with the
                                             images permuted across the batch, and with black images (same
                                             flow noise and time); a model that reads images has
                                             loss_real < loss_shuffled
    grad_norm_<part>                         ‖∂loss/∂θ‖ of the vision tower, projector, LM and expert: how
                                             much learning signal reaches the vision tower
    attention_to_images[l]                   the attention mass the prompt/target tokens put on image tokens
                                             in LM layer l, next to `image_share` (what uniform attention
                                             over the valid keys would give)
    pixel_mean / pixel_std / pixel_spread    per-channel mean and std of the model's float images, and the
                                             mean over pixels of their std across the batch (0 = every
                                             image is the same after the transforms)
    image_token_rms / text_token_rms         the scale of projected image tokens and embedded prompt
                                             tokens entering the LM (Gemma scales text by √width)
    image_token_spread                       mean over token dims of the std across the batch of the image
                                             tokens, divided by their rms: the share of an image token
                                             that depends on the image at all

`image_dependence(model, obs, actions)` returns all of them; the pre-stage and the VLA trainer write the
loss triple into their eval.json.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace

import torch
from torch import Tensor

from reasonact.vla import backbone
from reasonact.vla.attention import PREFIX
from reasonact.vla.contract import Observation, images_to_float
from reasonact.vla.model import KIVLA


def with_images(obs: Observation, images: dict[str, Tensor]) -> Observation:
    return replace(obs, images=images)


def shuffled(obs: Observation, generator: torch.Generator | None = None) -> Observation:
    """The same batch with every camera's images permuted across samples by one derangement (no sample keeps
    its own image, for b ≥ 2)."""
    b = obs.batch_size
    shift = int(torch.randint(1, max(b, 2), (1,), generator=generator)) if b > 1 else 0
    order = (torch.arange(b) + shift) % b  # a cyclic shift: a derangement
    return with_images(obs, {c: x[order.to(x.device)] for c, x in obs.images.items()})


def black(obs: Observation) -> Observation:
    """The same batch with black images (uint8 0, or −1 for float images)."""
    dark = {c: torch.full_like(x, 0 if x.dtype == torch.uint8 else -1.0) for c, x in obs.images.items()}
    return with_images(obs, dark)


@torch.no_grad()
def losses_with_images(
    model: KIVLA,
    obs: Observation,
    actions: Tensor | None = None,
    action_mask: Tensor | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Loss (and its CE / flow parts) with real, shuffled and black images; the same noise ω and time τ in all
    three (drawn from `seed`)."""
    g = torch.Generator().manual_seed(seed)
    extra: dict[str, Tensor | None] = {"action_mask": action_mask}
    if actions is not None:
        cfg = model.config
        extra["noise"] = torch.randn(obs.batch_size, cfg.horizon, cfg.action_dim, generator=g).to(actions)
        extra["tau"] = torch.rand(obs.batch_size, generator=g).mul(cfg.time_s).to(actions)
    was_training = model.training
    model.eval()
    out: dict[str, float] = {}
    for name, variant in (("real", obs), ("shuffled", shuffled(obs, g)), ("black", black(obs))):
        for part, value in model.compute_loss(variant, actions, **extra).items():
            out[f"{part}_{name}"] = float(value)
    model.train(was_training)
    return out


def gradient_norms(
    model: KIVLA, obs: Observation, actions: Tensor | None = None, action_mask: Tensor | None = None
) -> dict[str, float]:
    """‖∂loss/∂θ‖ per part (vision, projector, lm, expert) for one batch; gradients are cleared afterwards."""
    model.zero_grad(set_to_none=True)
    model.compute_loss(obs, actions, action_mask=action_mask)["loss"].backward()
    out = {}
    for part in ("vision", "projector", "lm", "expert"):
        grads = [p.grad for n, p in model.named_parameters() if n.split(".")[0] == part and p.grad is not None]
        norms = torch.stack([g.norm() for g in grads]) if grads else torch.zeros(1)
        out[f"grad_norm_{part}"] = float(torch.linalg.vector_norm(norms))
    model.zero_grad(set_to_none=True)
    return out


@contextlib.contextmanager
def recorded_attention() -> Iterator[list[Tensor]]:
    """Inside the block, every LM attention records its probabilities (b, heads, sq, sk) in the yielded list.

    The LM calls `backbone.attend`; this swaps in a wrapper that computes softmax(q·kᵀ·scale + mask) beside
    the real call (whose output is used unchanged)."""
    records: list[Tensor] = []
    original = backbone.attend

    def attend(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, scale: float) -> Tensor:
        g = q.shape[1] // k.shape[1]  # query heads per kv head
        keys = k.repeat_interleave(g, dim=1)  # (b, h, sk, hd)
        logits = (q.float() @ keys.float().transpose(-1, -2)) * scale  # (b, h, sq, sk)
        if mask is not None:
            logits = logits.masked_fill(~mask[:, None], float("-inf"))
        records.append(logits.softmax(dim=-1).nan_to_num(0.0))
        return original(q, k, v, mask, scale)

    backbone.attend = attend
    try:
        yield records
    finally:
        backbone.attend = original


@torch.no_grad()
def attention_to_images(model: KIVLA, obs: Observation) -> dict[str, list[float] | float]:
    """Per LM layer, the mean attention mass valid prompt tokens put on the image tokens, and `image_share`,
    the mass uniform attention over their valid keys would put there."""
    h, valid = model.embed_prefix(obs)  # (b, P, w), (b, P)
    n_image = len(model.config.cameras) * model.config.vision.tokens
    positions = (valid.cumsum(dim=1) - 1).clamp(min=0)
    with recorded_attention() as records:
        model.lm(h, torch.full_like(positions, PREFIX), positions, valid)
    queries = valid.clone()
    queries[:, :n_image] = False  # prompt (and state) tokens only
    weight = queries.float()[:, None, :]  # (b, 1, P)
    per_layer = [float((p[..., :n_image].sum(-1) * weight).sum() / (weight.sum() * p.shape[1])) for p in records]
    share = float((n_image / valid.sum(dim=1).float()).mean())
    return {"attention_to_images": per_layer, "image_share": share}


@torch.no_grad()
def token_statistics(model: KIVLA, obs: Observation) -> dict[str, float | list[float]]:
    """Pixel statistics of the model's float images and the scale / image-dependence of the image tokens."""
    camera = model.config.cameras[0]
    pixels = images_to_float(obs.images[camera]).float()  # (b, S, S, 3)
    tokens = model.projector(model.vision(pixels.to(model.projector.weight.dtype))).float()  # (b, n, w)
    text = model.lm.embed_tokens(obs.tokens)[obs.token_mask].float()  # (n_valid, w)
    rms = tokens.pow(2).mean().sqrt()
    spread = tokens.std(dim=0).mean() if obs.batch_size > 1 else torch.zeros(())
    return {
        "pixel_mean": pixels.mean(dim=(0, 1, 2)).tolist(),
        "pixel_std": pixels.std(dim=(0, 1, 2)).tolist(),
        "pixel_spread": float(pixels.std(dim=0).mean()) if obs.batch_size > 1 else 0.0,
        "image_token_rms": float(rms),
        "text_token_rms": float(text.pow(2).mean().sqrt()),
        "image_token_spread": float(spread / rms),
    }


def image_dependence(
    model: KIVLA, obs: Observation, actions: Tensor | None = None, action_mask: Tensor | None = None
) -> dict[str, float | list[float]]:
    """All measurements of the module docstring for one batch."""
    return {
        **losses_with_images(model, obs, actions, action_mask),
        **gradient_norms(model, obs, actions, action_mask),
        **attention_to_images(model, obs),
        **token_statistics(model, obs),
    }


__all__ = ["attention_to_images", "black", "gradient_norms", "image_dependence", "losses_with_images", "shuffled"]
