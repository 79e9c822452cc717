"""VLM pre-stage: learns the scenes' VQA beyond the majority answer, resumes exactly, exports a backbone the
action trainer starts from, and refuses bad records with clear errors."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file

from reasonact.data.vlm import PRESETS as VLM_PRESETS
from reasonact.data.vlm import generate
from reasonact.training.vla_config import TINY_VLM, VLATrainConfig
from reasonact.training.vla_trainer import Trainer
from reasonact.training.vlm_pretrain import Pretrainer, load_backbone, save_backbone
from reasonact.training.vlm_pretrain_config import PRESETS
from reasonact.vla.model import build_model
from reasonact.vla.vqa_eval import ANSWER_END, baselines, evaluate_vqa, load_pretrained, load_records


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """Real records: 2 pick-place episodes (two object colours), every 5th frame, all in the train split."""
    out = tmp_path_factory.mktemp("vlm")
    config = dataclasses.replace(
        VLM_PRESETS["tiny"][1], episodes_per_task=2, every=5, heldout_scene_every=0, heldout_fraction=0.0, out=out
    )
    generate(config)
    return out / "vlm.parquet"


def _config(tmp_path, records, **changes):
    base = dataclasses.replace(PRESETS["tiny"][1], records=(records,), out=tmp_path, warmup=10, log_every=1)
    return dataclasses.replace(base, **changes)


@pytest.mark.slow
def test_tiny_prestage_beats_the_majority_answer_on_training_records(tmp_path, records):
    trainer = Pretrainer(_config(tmp_path, records, steps=400, batch_size=8, lr=1e-2, save_every=400, eval_samples=0))
    majority = baselines(trainer.records)["train"]["accuracy"]
    before = evaluate_vqa(trainer.model, trainer.records, trainer.text)["train"]["accuracy"]
    report = trainer.fit()
    after = evaluate_vqa(trainer.model, trainer.records, trainer.text)["train"]
    assert before < 0.05 < majority < after["accuracy"], (before, majority, after)
    assert after["accuracy_color"] > baselines(trainer.records)["train"]["accuracy_color"]  # read from the image
    assert report["model"]["train"]["caption_perplexity"] < 3.0  # bytes: uniform would be 256
    images = report["image_dependence"]
    assert images["ce_real"] < images["ce_shuffled"] and images["ce_real"] < images["ce_black"]
    assert (tmp_path / "tiny" / "backbone.safetensors").is_file() and (
        tmp_path / "tiny" / "plots" / "metrics.png"
    ).is_file()


def test_resume_from_a_checkpoint_repeats_the_same_steps(tmp_path, records):
    cfg = _config(tmp_path, records, steps=6, save_every=3, batch_size=4, eval_samples=4)
    straight = Pretrainer(cfg)
    straight.fit()
    run = straight.run
    final = {k: v.clone() for k, v in straight.state.state_dict().items()}
    logged = [m for m in run.metrics() if "loss" in m]
    (run.checkpoints / "latest").write_text("step_000000003")  # as if killed after the step-3 checkpoint
    resumed = Pretrainer(dataclasses.replace(cfg, resume=True))
    assert resumed.step == 3
    resumed.fit()
    again = [m for m in run.metrics() if "loss" in m]
    assert [m["loss"] for m in again] == [m["loss"] for m in logged] and len(again) == 6
    for name, value in resumed.state.state_dict().items():
        assert torch.equal(value, final[name]), name


def test_backbone_starts_another_variant_and_refuses_other_dims(tmp_path):
    torch.manual_seed(0)
    trained = build_model(dataclasses.replace(TINY_VLM, variant="ki"))
    save_backbone(trained, tmp_path)
    target = build_model(dataclasses.replace(TINY_VLM, variant="frozen", state_dim=4))  # other embedding rows
    load_backbone(target, tmp_path)
    vocab = TINY_VLM.lm.vocab_size
    assert torch.equal(target.vision.patch.weight, trained.vision.patch.weight)
    assert torch.equal(target.lm.blocks[1].qkv.weight, trained.lm.blocks[1].qkv.weight)
    assert torch.equal(target.lm.embed.weight[:vocab], trained.lm.embed.weight[:vocab])
    assert not torch.equal(
        target.lm.embed.weight[vocab:], trained.lm.embed.weight[vocab : target.lm.embed.weight.shape[0]]
    )
    assert set(load_file(str(tmp_path / "backbone.safetensors"))) == {
        n for n in trained.state_dict() if n.split(".")[0] in ("vision", "projector", "lm")
    }
    wider = dataclasses.replace(TINY_VLM, vision=dataclasses.replace(TINY_VLM.vision, image_size=64))
    with pytest.raises(ValueError, match=r"init_backbone: .*vision.image_size.*\(64, 32\)"):
        load_backbone(build_model(wider), tmp_path)
    with pytest.raises(FileNotFoundError, match=r"init_backbone: .*vla pretrain"):
        load_backbone(target, tmp_path / "nothing")


def test_vla_train_starts_the_frozen_variant_from_the_backbone(tmp_path, records):
    """`vla train --init-backbone`: the action trainer's model (and its EMA) start from the pre-stage weights;
    the frozen variant keeps them, so it scores exactly the pre-stage's VQA and caption perplexity (other state /
    FAST rows in its embedding notwithstanding: `evaluate_vqa` reads the text rows only)."""
    spec = importlib.util.spec_from_file_location("vla_trainer_tests", Path(__file__).with_name("test_vla_trainer.py"))
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)  # its synthetic LeRobot dataset writer
    for key in ("observation.state", "action"):  # the LeRobot writer now asks for entry names
        helpers.FEATURES[key]["names"] = [f"{key}_{i}" for i in range(helpers.FEATURES[key]["shape"][0])]
    torch.manual_seed(3)
    pre = build_model(TINY_VLM)
    save_backbone(pre, tmp_path / "pre")
    cfg = VLATrainConfig(
        model=dataclasses.replace(TINY_VLM, variant="frozen"), datasets=(helpers.write_dataset(tmp_path / "ds"),),
        out=tmp_path, name="run", steps=2, batch_size=4, warmup=1, save_every=2, eval_samples=4,
        init_backbone=tmp_path / "pre",
    )  # fmt: skip
    trainer = Trainer(cfg)
    assert torch.equal(trainer.ema.model.vision.patch.weight, pre.vision.patch.weight)
    trainer.fit()
    for name, p in trainer.model.named_parameters():
        if name.split(".")[0] in ("vision", "projector") or (name.startswith("lm.") and name != "lm.embed.weight"):
            assert torch.equal(p, pre.get_parameter(name)), name
    frozen = trainer.ema.model.eval()
    assert frozen.lm.embed.weight.shape != pre.lm.embed.weight.shape  # other rows after the text vocabulary
    vlm = load_records((records,), TINY_VLM.vision.image_size)
    assert evaluate_vqa(frozen, vlm, max_per_split=12) == evaluate_vqa(pre.eval(), vlm, max_per_split=12)


def _write(path, images, answers, kinds=None):
    rows = [
        {"image": {"bytes": iio.imwrite("<bytes>", im, extension=".png"), "path": None}, "question": "Describe.",
         "answer": a, "kind": (kinds or ["caption"] * len(answers))[i], "split": "train"}
        for i, (im, a) in enumerate(zip(images, answers, strict=True))
    ]  # fmt: skip
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_bad_records_are_refused_with_the_file_and_what_was_wrong(tmp_path):
    square = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match=r"no_answer.parquet: record 1 .*has no answer"):
        load_records([_write(tmp_path / "no_answer.parquet", [square, square], ["a", " "])], 32)
    with pytest.raises(ValueError, match=r"record 0 image: expected a square RGB image .*received shape \(16, 24, 3\)"):
        load_records([_write(tmp_path / "wide.parquet", [np.zeros((16, 24, 3), np.uint8)], ["a"])], 32)
    with pytest.raises(ValueError, match=r"images of different sizes"):
        load_records([_write(tmp_path / "mixed.parquet", [square, np.zeros((8, 8, 3), np.uint8)], ["a", "b"])], 32)
    pq.write_table(pa.table({"question": ["q"]}), tmp_path / "cols.parquet")
    with pytest.raises(
        ValueError, match=r"cols.parquet: VLM records lack columns \['answer', 'image', 'kind', 'split'\]"
    ):
        load_records([tmp_path / "cols.parquet"], 32)
    with pytest.raises(FileNotFoundError, match="reasonact data vlm"):
        load_records([tmp_path / "missing.parquet"], 32)
    loaded = load_records([_write(tmp_path / "ok.parquet", [square], ["a"])], 32)
    assert loaded.images.shape == (1, 32, 32, 3) and loaded.answers == ["a"] and ANSWER_END not in loaded.answers[0]


def test_frozen_variant_and_empty_training_set_are_refused(tmp_path):
    path = _write(tmp_path / "held.parquet", [np.zeros((16, 16, 3), np.uint8)], ["a"])
    table = pq.read_table(path).to_pylist()
    table[0]["split"] = "heldout_scene"
    pq.write_table(pa.Table.from_pylist(table), path)
    with pytest.raises(ValueError, match=r"records: no 'train' records"):
        Pretrainer(_config(tmp_path, path))
    frozen = dataclasses.replace(TINY_VLM, variant="frozen")
    with pytest.raises(ValueError, match=r"model.variant: 'frozen' freezes the backbone"):
        Pretrainer(_config(tmp_path, path, model=frozen))


def test_vqa_eval_reads_a_pretrain_run(tmp_path, records):
    from reasonact.vla.vqa_eval import VqaEvalConfig, vqa_eval

    Pretrainer(_config(tmp_path, records, steps=2, save_every=2, eval_samples=4)).fit()
    report = vqa_eval(VqaEvalConfig(run=tmp_path / "tiny", max_per_split=6))
    assert set(report) == {"model", "majority", "untrained", "records"}
    assert report["untrained"]["train"]["n"] == report["model"]["train"]["n"] == report["majority"]["train"]["n"] <= 6
    assert json.loads((tmp_path / "tiny" / "vqa_eval.json").read_text())["majority"] == report["majority"]
    assert load_pretrained(tmp_path / "tiny").config == TINY_VLM
