"""The peer side of `reasonact vla bench --train`: LeRobot's pi05 training step, timed, at explicit dims.

Runs in the LeRobot peer venv (`bash ../shared/peers/lerobot_pi05/setup.sh .peer-venv/lerobot`), never in
ours: it imports lerobot, not reasonact. One step is what LeRobot's `update_policy` does without accelerate:
`PI05Policy.forward(batch)` (flow-matching MSE) → backward → clip the global grad norm to the config's
`optimizer_grad_clip_norm` → AdamW step (LeRobot's own optimizer preset for pi05) → zero the gradients.
Random weights, random batch (images in [0, 1], token ids over the 257152-token vocabulary, all valid).

LeRobot's pi05 only knows two Gemma sizes (`gemma_300m`, `gemma_2b`) and a fixed SigLIP So400m tower; a
training step at those sizes needs ~30 GB for AdamW. To time it at the smaller dims of our own model, this
script substitutes, in `modeling_pi05`'s namespace only, `get_gemma_config` (the two variant names map to the
`--vlm-*` and `--expert-*` dims) and the PaliGemma constructor (which receives the `--vision-*` dims just
before it builds). The modelling code that runs is LeRobot's, unchanged; its fixed 8 attention heads
(`compute_layer_complete`) and 257152-token vocabulary stay. The built model is checked against the flags.
Prints exactly one JSON line on stdout (progress on stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata as md
import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch
from torch.utils.flop_counter import FlopCounterMode

PEER_HEADS = 8  # LeRobot's pi05 reshapes attention outputs to 8 heads (compute_layer_complete)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = p.add_argument
    add("--n-cameras", type=int, default=1, help="cameras (one SigLIP pass each)")
    add("--image-size", type=int, default=224, help="square image side fed to SigLIP")
    add("--chunk", type=int, default=50, help="action horizon H (chunk_size)")
    add("--steps", type=int, default=10, help="Euler steps (inference only; recorded)")
    add("--action-dim", type=int, default=7, help="robot action dim (unpadded)")
    add("--max-action-dim", type=int, default=32, help="padded action dim inside the model")
    add("--state-dim", type=int, default=8, help="state dim (pi05 puts state in the prompt: no compute)")
    add("--prompt-tokens", type=int, default=200, help="language tokens per sample")
    add("--vlm-width", type=int, default=1024, help="VLM hidden size (gemma_300m: 1024)")
    add("--vlm-depth", type=int, default=18, help="VLM and expert layers")
    add("--vlm-mlp", type=int, default=4096, help="VLM MLP hidden size")
    add("--kv-heads", type=int, default=1, help="key/value heads (both streams)")
    add("--head-dim", type=int, default=256, help="per-head size (both streams)")
    add("--expert-width", type=int, default=1024, help="action expert hidden size")
    add("--expert-mlp", type=int, default=4096, help="action expert MLP hidden size")
    add("--vision-width", type=int, default=1152, help="SigLIP hidden size (So400m: 1152)")
    add("--vision-depth", type=int, default=27, help="SigLIP layers")
    add("--vision-mlp", type=int, default=4304, help="SigLIP MLP hidden size")
    add("--vision-heads", type=int, default=16, help="SigLIP attention heads")
    add("--patch-size", type=int, default=14, help="SigLIP patch side")
    add("--batch", type=int, default=1, help="samples per training step")
    add("--dtype", choices=["float32", "bfloat16"], default="float32", help="PI05Config.dtype")
    add("--device", default="cpu", help="cpu | cuda | cuda:N")
    add("--threads", type=int, default=1, help="torch.set_num_threads")
    add("--warmup", type=int, default=2, help="untimed training steps first")
    add("--iters", type=int, default=3, help="timed training steps")
    add("--seed", type=int, default=0)
    a = p.parse_args(argv)
    for name in ("batch", "iters", "threads", "n_cameras", "vlm_depth"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, received {getattr(a, name)}")
    if a.image_size % a.patch_size:
        p.error(f"--image-size must be a multiple of --patch-size={a.patch_size}, received {a.image_size}")
    return a


def log(msg: str) -> None:
    print(f"[peer_pi05_train {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def substitute_dims(a: argparse.Namespace) -> None:
    """Make `PI05Pytorch` build the flagged dims: "gemma_2b" → the VLM, "gemma_300m" → the expert, and the
    PaliGemma constructor resizes SigLIP just before building (module docstring)."""
    from lerobot.policies.pi05 import modeling_pi05 as m

    vlm = m.GemmaConfig(a.vlm_width, a.vlm_depth, a.vlm_mlp, PEER_HEADS, a.kv_heads, a.head_dim)
    expert = m.GemmaConfig(a.expert_width, a.vlm_depth, a.expert_mlp, PEER_HEADS, a.kv_heads, a.head_dim)
    m.get_gemma_config = {"gemma_2b": vlm, "gemma_300m": expert}.__getitem__
    build_paligemma = m.PaliGemmaForConditionalGenerationWithPiGemma

    def resized(config):
        v = config.vision_config
        v.hidden_size, v.num_hidden_layers, v.intermediate_size = a.vision_width, a.vision_depth, a.vision_mlp
        v.num_attention_heads, v.patch_size = a.vision_heads, a.patch_size
        return build_paligemma(config=config)

    m.PaliGemmaForConditionalGenerationWithPiGemma = resized


def build_policy(a: argparse.Namespace):
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.pi05.configuration_pi05 import PI05Config
    from lerobot.policies.pi05.modeling_pi05 import PI05Policy
    from lerobot.utils.constants import ACTION, OBS_IMAGES, OBS_STATE

    substitute_dims(a)
    s = a.image_size
    inputs = {f"{OBS_IMAGES}.cam{i}": PolicyFeature(type=FeatureType.VISUAL, shape=(3, s, s))
              for i in range(a.n_cameras)}  # fmt: skip
    inputs[OBS_STATE] = PolicyFeature(type=FeatureType.STATE, shape=(a.state_dim,))
    cfg = PI05Config(
        paligemma_variant="gemma_2b", action_expert_variant="gemma_300m", dtype=a.dtype,
        chunk_size=a.chunk, n_action_steps=a.chunk, num_inference_steps=a.steps, max_action_dim=a.max_action_dim,
        image_resolution=(s, s), tokenizer_max_length=a.prompt_tokens, device=a.device, input_features=inputs,
        output_features={ACTION: PolicyFeature(type=FeatureType.ACTION, shape=(a.action_dim,))},
    )  # fmt: skip
    try:  # random init on the device itself (seconds on a GPU, not minutes on its host)
        with torch.device(a.device):
            policy = PI05Policy(cfg)
    except Exception as err:  # as the inference harness: fall back to the CPU, then move
        log(f"init on {a.device} failed ({type(err).__name__}: {err}); building on the CPU, then moving")
        policy = PI05Policy(cfg).to(a.device)
    check_dims(policy, a)
    return policy


def check_dims(policy, a: argparse.Namespace) -> None:
    """The built model has the flagged dims (a LeRobot change that ignores a substitution fails here)."""
    pg = policy.model.paligemma_with_expert
    vision = pg.paligemma.model.vision_tower.vision_model
    found = {
        "vision_width": vision.embeddings.patch_embedding.out_channels,
        "vision_depth": len(vision.encoder.layers),
        "vision_mlp": vision.encoder.layers[0].mlp.fc1.out_features,
        "vlm_width": pg.paligemma.model.language_model.embed_tokens.embedding_dim,
        "vlm_depth": len(pg.paligemma.model.language_model.layers),
        "vlm_mlp": pg.paligemma.model.language_model.layers[0].mlp.gate_proj.out_features,
        "expert_width": policy.model.action_in_proj.out_features,
        "expert_mlp": pg.gemma_expert.model.layers[0].mlp.gate_proj.out_features,
    }
    wrong = {k: (v, getattr(a, k)) for k, v in found.items() if v != getattr(a, k)}
    if wrong:
        raise RuntimeError(f"peer built other dims than flagged (built, flagged): {wrong}")


def adamw_kernel(optimizer: torch.optim.Optimizer) -> str:
    """The kernel this AdamW's step runs ("fused", "foreach" or "for-loop"), by torch's own default rule where
    LeRobot leaves it unset (as `reasonact.training.optim.implementation`, which this venv cannot import)."""
    from torch.optim.optimizer import _default_to_fused_or_foreach

    fused, foreach = optimizer.defaults.get("fused"), optimizer.defaults.get("foreach")
    if foreach is None and not fused:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        foreach = _default_to_fused_or_foreach(params, optimizer.defaults.get("differentiable", False))[1]
    return "fused" if fused else "foreach" if foreach else "for-loop"


def make_batch(a: argparse.Namespace, vocab: int) -> dict:
    from lerobot.utils.constants import ACTION, OBS_IMAGES, OBS_LANGUAGE_ATTENTION_MASK, OBS_LANGUAGE_TOKENS, OBS_STATE

    g = torch.Generator().manual_seed(a.seed)
    b, s = a.batch, a.image_size
    batch = {f"{OBS_IMAGES}.cam{i}": torch.rand(b, 3, s, s, generator=g) for i in range(a.n_cameras)}
    batch[OBS_STATE] = torch.rand(b, a.state_dim, generator=g)
    batch[OBS_LANGUAGE_TOKENS] = torch.randint(0, vocab, (b, a.prompt_tokens), generator=g)
    batch[OBS_LANGUAGE_ATTENTION_MASK] = torch.ones(b, a.prompt_tokens, dtype=torch.bool)
    batch[ACTION] = torch.rand(b, a.chunk, a.action_dim, generator=g) * 2 - 1
    return {k: v.to(a.device) for k, v in batch.items()}


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    real_stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries the one JSON line
        start = time.perf_counter()
        policy = build_policy(a)
        build_s = time.perf_counter() - start
        vocab = policy.model.paligemma_with_expert.paligemma.model.language_model.embed_tokens.num_embeddings
        batch = make_batch(a, vocab)
        policy.train()
        optimizer = policy.config.get_optimizer_preset().build(policy.get_optim_params())
        clip = policy.config.optimizer_grad_clip_norm
        log(f"built in {build_s:.1f} s; {a.warmup} warmup + {a.iters} timed steps, batch {a.batch}")

        def step() -> float:
            loss, _ = policy.forward(batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), clip)
            optimizer.step()
            optimizer.zero_grad()
            return float(loss.detach())

        losses = [step() for _ in range(a.warmup)]
        sync(a.device)
        times = []
        for _ in range(a.iters):
            t0 = time.perf_counter()
            losses.append(step())
            sync(a.device)
            times.append(time.perf_counter() - t0)
        with FlopCounterMode(display=False) as counter:  # one more step, counted (as ours is)
            losses.append(step())
        if not all(map(lambda x: x == x and abs(x) < float("inf"), losses)):
            raise RuntimeError(f"non-finite peer loss: {losses}")
        record = {
            "peer": f"lerobot {md.version('lerobot')} PI05Policy.forward + backward + AdamW",
            "step_s": {"min": min(times), "all": [round(t, 4) for t in times]},
            "samples_per_s": a.batch / min(times),
            "optimizer": adamw_kernel(optimizer),  # torch's default: for-loop on the CPU, foreach on CUDA
            "train_step_flops": counter.get_total_flops(),
            "losses": [round(x, 5) for x in losses],
            "params": sum(p.numel() for p in policy.parameters()),
            "params_trained": sum(p.numel() for p in policy.parameters() if p.requires_grad),
            "vocab": vocab,
            "build_s": round(build_s, 2),
            "transformers_version": md.version("transformers"),
            "torch_version": torch.__version__,
            "flags": vars(a),
            "loadavg_end": os.getloadavg(),
        }
    print(json.dumps(record), file=real_stdout, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
