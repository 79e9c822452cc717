"""What a VLA backbone knows about the scenes: VQA accuracy and caption perplexity on `reasonact data vlm`
records, next to the honest baselines (the majority answer per question kind; an untrained backbone).

    accuracy   = share of records whose greedy answer (text tokens only, cut at `ANSWER_END`) equals the
                 recorded answer exactly; every kind but captions (colour, left/right, gripper, contact,
                 progress, box, current/next subtask), also per kind
    perplexity = exp(mean over caption records of the per-token cross-entropy of the caption + `ANSWER_END`),
                 teacher-forced over the prefix's decode cache

Both read the logits of the text vocabulary only (`text_logits`: the first `lm.vocab_size` rows of the tied
embedding). The rows after them (special state, FAST, BOA/EOA) depend on the variant and the data — a
pre-stage model has other ones than the runs trained from it — so a softmax over them would make identical
text weights score differently; over the text rows, identical weights give identical numbers.

Answers are trained with `ANSWER_END` appended (`answer_text`), so greedy decoding knows where an answer
stops without being told its length. `evaluate_vqa(model, records)` is the function the knowledge-insulation
study calls before and after action training (retention = after / before); `reasonact vla vqa-eval <run>`
is its CLI.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import tyro
from torch import Tensor, nn

from reasonact.atomic import read_json
from reasonact.checkpoints import load_checkpoint
from reasonact.runs import Run
from reasonact.vla.attention import PREFIX, KVCache
from reasonact.vla.config import VLAConfig
from reasonact.vla.contract import Observation
from reasonact.vla.model import KIVLA, build_model
from reasonact.vla.prompt import ByteTokenizer, PromptTokenizer, TextTokenizer
from reasonact.vla.transforms import images_to_model, resize_images

ANSWER_END = "\n"  # appended to every trained answer; decoding stops at it
EVAL_SPLITS = ("train", "heldout_template", "heldout_scene", "heldout_combo")
COLUMNS = ("image", "question", "answer", "kind", "split")
MAX_ANSWER_TOKENS = 48  # greedy decoding budget of a non-caption answer (the longest is 30 bytes)


@dataclass
class VlmRecords:
    """`reasonact data vlm` records in memory, images already at the model's size."""

    images: Tensor  # (n, S, S, 3) uint8
    questions: list[str]
    answers: list[str]
    kinds: list[str]
    splits: list[str]

    def __len__(self) -> int:
        return len(self.questions)

    def subset(self, keep: Sequence[int] | np.ndarray) -> VlmRecords:
        idx = [int(i) for i in keep]
        pick = [self.questions, self.answers, self.kinds, self.splits]
        return VlmRecords(self.images[idx], *([column[i] for i in idx] for column in pick))

    def where(self, split: str | None = None, kind: str | None = None, not_kind: str | None = None) -> VlmRecords:
        keep = [
            i
            for i in range(len(self))
            if (split is None or self.splits[i] == split)
            and (kind is None or self.kinds[i] == kind)
            and (not_kind is None or self.kinds[i] != not_kind)
        ]
        return self.subset(keep)


def load_records(paths: Sequence[Path], image_size: int) -> VlmRecords:
    """Record files (`vlm.parquet`) → all records, every split, images resized to `image_size`.

    Refuses files without the record columns, records without an answer, and images that are not RGB."""
    import imageio.v3 as iio
    import pyarrow.parquet as pq

    images, columns = [], {k: [] for k in COLUMNS[1:]}
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"records: VLM record file {path} not found (write it with `reasonact data vlm`)")
        table = pq.read_table(path)
        missing = sorted(set(COLUMNS) - set(table.column_names))
        if missing:
            raise ValueError(f"{path}: VLM records lack columns {missing}; found {table.column_names}")
        for i, row in enumerate(table.to_pylist()):
            if not row["answer"] or not str(row["answer"]).strip():
                raise ValueError(f"{path}: record {i} ({row['kind']!r}, {row['question']!r}) has no answer")
            image = np.asarray(iio.imread(row["image"]["bytes"], extension=".png"))
            if image.ndim != 3 or image.shape[-1] not in (3, 4) or image.shape[0] != image.shape[1]:
                raise ValueError(
                    f"{path}: record {i} image: expected a square RGB image (S, S, 3), received shape {image.shape}"
                )
            images.append(image[..., :3])
            for k in columns:
                columns[k].append(str(row[k]))
    if not images:
        raise ValueError(f"records: no VLM records in {[str(p) for p in paths]}")
    sizes = {im.shape for im in images}
    if len(sizes) > 1:
        raise ValueError(f"records: images of different sizes {sorted(sizes)} in {[str(p) for p in paths]}")
    resized = resize_images(np.stack(images), image_size, "records image")  # (n, S, S, 3)
    return VlmRecords(resized, columns["question"], columns["answer"], columns["kind"], columns["split"])


def answer_text(answer: str) -> str:
    """The trained target of an answer: the answer, then `ANSWER_END`."""
    return answer + ANSWER_END


class HFText:
    """A transformers tokenizer as a `TextTokenizer` (no BOS/EOS added: prompts and answers are pieces)."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids))


def text_tokenizer(config: VLAConfig) -> ByteTokenizer | HFText:
    """The text tokenizer of a model: the real Gemma 3 tokenizer for pretrained Gemma, else UTF-8 bytes."""
    if config.pretrained == "gemma3-270m":
        from reasonact.vla.pretrained import load_gemma_tokenizer

        return HFText(load_gemma_tokenizer())
    return ByteTokenizer()


def vlm_observation(
    config: VLAConfig, text: TextTokenizer, images: Tensor, questions: Sequence[str], answers: Sequence[str] | None
) -> Observation:
    """images (b, S, S, 3) uint8 on the first camera (black on the others), questions as prompts, no state,
    answers (+ `ANSWER_END`) as targets → `Observation`."""
    b = len(questions)
    black = torch.zeros_like(images)
    views = {c: images_to_model(images if i == 0 else black) for i, c in enumerate(config.cameras)}
    state = np.zeros((b, config.state_dim))
    tokens, mask = PromptTokenizer(config, text)(list(questions), state, [False] * b)
    extra = {}
    if answers is not None:
        rows = [text.encode(answer_text(a)) for a in answers]
        ids = torch.zeros(b, max(len(r) for r in rows), dtype=torch.int64)
        valid = torch.zeros_like(ids, dtype=torch.bool)
        for i, r in enumerate(rows):
            ids[i, : len(r)], valid[i, : len(r)] = torch.tensor(r, dtype=torch.int64), True
        extra = {"targets": ids, "target_mask": valid}
    return Observation(views, torch.zeros(b, config.state_dim), tokens, mask, **extra)


def text_logits(model: KIVLA, h: Tensor) -> Tensor:
    """Final hidden (b, s, w) → logits (b, s, V) over the text vocabulary only (the tied embedding's first
    `lm.vocab_size` rows; module docstring)."""
    return h @ model.lm.embed.weight[: model.config.lm.vocab_size].T


def encode_prompt(model: KIVLA, obs: Observation) -> tuple[Tensor, KVCache, Tensor]:
    """The backbone over the prefix → the hidden state of its last valid position (b, 1, w) (the one that
    predicts the first answer token, as `compute_loss` trains it), the prefix's K/V, and the position of the
    first answer token (b, 1)."""
    h, valid = model.embed_prefix(obs)  # (b, P, w), (b, P)
    positions = (valid.cumsum(dim=1) - 1).clamp(min=0)
    hidden, prefix = model.lm(h, torch.full_like(positions, PREFIX), positions, valid)
    last = valid.long().cumsum(dim=1).argmax(dim=1)  # (b,)
    return hidden[torch.arange(len(last)), last][:, None], prefix, valid.sum(dim=1, keepdim=True)


@torch.no_grad()
def greedy_answers(model: KIVLA, obs: Observation, stop_id: int, max_tokens: int) -> list[list[int]]:
    """Greedy text decoding after the prefix → b lists of token ids (up to, excluding, `stop_id`).

    The first token comes from the last valid prefix position (`encode_prompt`), each next one from a pass of
    the previous token over the prefix's preallocated decode cache (`KIVLA.decode_cache`, as π0-FAST
    decodes); only text-vocabulary ids are eligible (`text_logits`)."""
    h_t, prefix, start = encode_prompt(model, obs)  # (b, 1, w), cache, (b, 1)
    cache = model.decode_cache(prefix, max_tokens)
    b = obs.batch_size
    out = torch.full((b, max_tokens), stop_id, dtype=torch.int64)
    done = torch.zeros(b, dtype=torch.bool)
    for j in range(max_tokens):
        token = text_logits(model, h_t[:, -1]).argmax(dim=-1)  # (b,)
        out[:, j] = torch.where(done, stop_id, token.cpu())
        done |= token.cpu() == stop_id
        if bool(done.all()) or j == max_tokens - 1:
            break
        block = torch.full((b, 1), j + 1, dtype=torch.int64, device=token.device)
        column = torch.tensor([prefix.length + j], device=token.device)  # (1,) where this token's K/V go
        h_t = model.lm.decode(model.lm.embed_tokens(token[:, None]), block, start + j, cache, column)
    return [
        row[: int(np.argmax(row == stop_id)) if (row == stop_id).any() else len(row)].tolist() for row in out.numpy()
    ]


@torch.no_grad()
def answer_nll(model: KIVLA, obs: Observation) -> Tensor:
    """Teacher-forced mean cross-entropy per record (b,) of its targets (b, T) over the text vocabulary.

    Target j is predicted from target j − 1 (the first from `encode_prompt`); all T targets are fed at once
    into the prefix's decode cache as blocks 1 … T, the causal mask `compute_loss` trains them under."""
    if obs.targets is None or obs.target_mask is None:
        raise ValueError("obs: answer_nll needs targets and target_mask (vlm_observation with answers)")
    ids, mask = obs.targets, obs.target_mask  # (b, T)
    h_first, prefix, start = encode_prompt(model, obs)  # (b, 1, w), cache, (b, 1)
    (b, t), device = ids.shape, ids.device
    steps = torch.arange(t, device=device)
    cache = model.decode_cache(prefix, t)
    blocks, columns = (steps + 1).expand(b, -1), prefix.length + steps  # (b, T), (T,)
    hidden = model.lm.decode(model.lm.embed_tokens(ids), blocks, start + steps, cache, columns)  # (b, T, w)
    logits = text_logits(model, torch.cat([h_first, hidden[:, :-1]], dim=1)).float()  # (b, T, V)
    ce = F.cross_entropy(logits.flatten(0, 1), ids.flatten(), reduction="none").view(b, t)
    return (ce * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)


def _batches(n: int, size: int) -> list[range]:
    return [range(i, min(n, i + size)) for i in range(0, n, size)]


@torch.no_grad()
def vqa_accuracy(model: KIVLA, records: VlmRecords, text: TextTokenizer, batch: int = 64) -> dict[str, float]:
    """Exact-match accuracy of greedy answers over the non-caption records, overall and per kind."""
    (stop,) = text.encode(ANSWER_END)
    device = model.projector.weight.device
    right: list[bool] = []
    for rows in _batches(len(records), batch):
        sub = records.subset(rows)
        obs = vlm_observation(model.config, text, sub.images, sub.questions, None).to(device)
        longest = max(len(text.encode(a)) for a in sub.answers)
        decoded = greedy_answers(model, obs, stop, min(MAX_ANSWER_TOKENS, longest + 4))
        right += [text.decode(ids) == a for ids, a in zip(decoded, sub.answers, strict=True)]  # type: ignore[attr-defined]
    return _per_kind(records.kinds, right)


def _per_kind(kinds: Sequence[str], right: Sequence[bool]) -> dict[str, float]:
    out = {"accuracy": float(np.mean(right)) if right else float("nan"), "n": len(right)}
    for kind in sorted(set(kinds)):
        hits = [r for k, r in zip(kinds, right, strict=True) if k == kind]
        out[f"accuracy_{kind}"] = float(np.mean(hits))
    return out


@torch.no_grad()
def caption_perplexity(model: KIVLA, records: VlmRecords, text: TextTokenizer, batch: int = 64) -> float:
    """exp(mean per-caption token CE) of the captions (+ `ANSWER_END`), teacher-forced, text vocabulary only."""
    device = model.projector.weight.device
    total, count = 0.0, 0
    for rows in _batches(len(records), batch):
        sub = records.subset(rows)
        obs = vlm_observation(model.config, text, sub.images, sub.questions, sub.answers).to(device)
        total += float(answer_nll(model, obs).sum())
        count += len(rows)
    return math.exp(total / count) if count else float("nan")


def majority_answers(train: VlmRecords) -> dict[str, str]:
    """The most frequent training answer of every kind (ties: the first seen)."""
    return {kind: Counter(train.where(kind=kind).answers).most_common(1)[0][0] for kind in sorted(set(train.kinds))}


def majority_accuracy(majority: dict[str, str], records: VlmRecords) -> dict[str, float]:
    """The majority-answer baseline on `records` (non-caption), overall and per kind."""
    right = [majority.get(k) == a for k, a in zip(records.kinds, records.answers, strict=True)]
    return _per_kind(records.kinds, right)


def split_records(records: VlmRecords, split: str, max_per_split: int = 0, seed: int = 0) -> VlmRecords:
    """The records of `split`; with `max_per_split` > 0 a fixed random subset of that many (the same subset for
    every model and baseline evaluated with the same seed)."""
    part = records.where(split=split)
    if 0 < max_per_split < len(part):
        part = part.subset(np.sort(np.random.default_rng(seed).choice(len(part), max_per_split, replace=False)))
    return part


def evaluate_vqa(
    model: KIVLA,
    records: VlmRecords,
    text: TextTokenizer | None = None,
    splits: Sequence[str] = EVAL_SPLITS,
    max_per_split: int = 0,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Per split: VQA accuracy (+ per kind) and caption perplexity of `model` → {split: metrics}."""
    text = text or text_tokenizer(model.config)
    was_training = model.training
    model.eval()
    out: dict[str, dict[str, float]] = {}
    for split in splits:
        part = split_records(records, split, max_per_split, seed)
        if not len(part):
            continue
        out[split] = vqa_accuracy(model, part.where(not_kind="caption"), text)
        out[split]["caption_perplexity"] = caption_perplexity(model, part.where(kind="caption"), text)
    model.train(was_training)
    return out


def baselines(
    records: VlmRecords, splits: Sequence[str] = EVAL_SPLITS, max_per_split: int = 0, seed: int = 0
) -> dict[str, dict[str, float]]:
    """The majority answer per kind (from all "train" records) on the records `evaluate_vqa` scores."""
    majority = majority_answers(records.where(split="train"))
    parts = {s: split_records(records, s, max_per_split, seed) for s in splits}
    return {s: majority_accuracy(majority, p.where(not_kind="caption")) for s, p in parts.items() if len(p)}


@dataclass(frozen=True)
class VqaEvalConfig:
    """`reasonact vla vqa-eval <run dir>`: evaluate a pre-stage run (or a `vla train` run) on VLM records."""

    run: tyro.conf.Positional[Path] = Path("runs/vlm_pretrain/tiny")  # run dir (`vla pretrain` or `vla train`)
    records: tuple[Path, ...] = ()  # record files; () = the ones the pre-stage run trained on
    ema: bool = True  # evaluate the EMA weights (False: the raw weights)
    untrained: bool = True  # also evaluate the same architecture freshly initialised (the untrained baseline)
    max_per_split: int = 0  # evaluate at most this many records per split (0: all)
    out: Path | None = None  # JSON report path (default: <run>/vqa_eval.json)
    threads: int = 1  # torch intra-op threads


def load_pretrained(run_dir: str | Path, ema: bool = True) -> KIVLA:
    """The model of a pre-stage (or `vla train`) run's latest checkpoint: EMA weights, or the raw ones."""
    run = Run(Path(run_dir))
    latest = run.latest()
    if latest is None:
        raise FileNotFoundError(f"run: {run_dir} has no complete checkpoint")
    config = VLAConfig.from_json(read_json(run.path / "model.json"))
    state = nn.ModuleDict({"model": build_model(config), "ema": build_model(config)})
    load_checkpoint(latest, state, restore_rng_state=False)
    return state["ema" if ema else "model"].eval()  # type: ignore[return-value]


def untrained_model(config: VLAConfig, seed: int = 0) -> KIVLA:
    """The same architecture freshly initialised (pretrained LM weights loaded where configured): the
    'untrained backbone' baseline."""
    torch.manual_seed(seed)
    return build_model(config).eval()


def vqa_eval(config: VqaEvalConfig) -> dict:
    """Print and write VQA accuracy / caption perplexity per split, next to the majority and untrained baselines."""
    from reasonact.atomic import atomic_write_json, read_json

    torch.set_num_threads(config.threads)
    model = load_pretrained(config.run, ema=config.ema)
    recorded = read_json(config.run / "config.json")
    paths = config.records or tuple(Path(p) for p in recorded.get("records", recorded.get("vlm", ())))
    if not paths:
        raise ValueError(f"records: {config.run} records no VLM record files; pass --records PATH")
    records = load_records(paths, model.config.vision.image_size)
    n = config.max_per_split
    report = {"model": evaluate_vqa(model, records, max_per_split=n), "majority": baselines(records, max_per_split=n)}
    if config.untrained:
        report["untrained"] = evaluate_vqa(untrained_model(model.config), records, max_per_split=config.max_per_split)
    report["records"] = [str(p) for p in paths]
    atomic_write_json(config.out or config.run / "vqa_eval.json", report)
    print(json.dumps(report, indent=2))
    return report
