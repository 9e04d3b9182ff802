"""Proof that the export trains: token labels from a real (locally trained) tokenizer, -100
exactly on the prompt and the kernel outputs, and one optimisation step of TRL's SFTTrainer on a
tiny Qwen2 built from a config, in which masked tokens carry no loss."""

from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path

import pytest

from startui.answers import SCORER
from startui.rft.export import export, read_jsonl, token_labels
from startui.store import Store
from tests.test_export import trajectories

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("trl")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tokenizer():
    from bench.standins import train_tokenizer

    return train_tokenizer()


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train")
    with Store(f"sqlite:///{tmp / 'train.sqlite'}") as store:
        for t in trajectories():
            store.save_trajectory(t)
            store.add_score(t.id, scorer=SCORER, correct=True)
        export(store, tmp / "out", ["exp"])
    return tmp / "out"


def tiny_model(vocab: int, seed: int = 0):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    return Qwen2ForCausalLM(Qwen2Config(
        vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
        tie_word_embeddings=False))


def expected_trained(row, offsets) -> list[bool]:
    """Independently of token_labels: a token is trained iff it is non-empty, lies in the
    completion, and touches no kernel output."""
    base = len(row["prompt"])
    outputs = [(base + s["start"], base + s["end"]) for s in row["segments"]
               if s["kind"] == "output"]
    return [e > s and s >= base and all(e <= o0 or s >= o1 for o0, o1 in outputs)
            for s, e in offsets]


def test_token_labels_are_minus_100_exactly_on_prompt_and_kernel_output(export_dir, tokenizer):
    rows = list(read_jsonl(export_dir))
    assert sorted(r["id"] for r in rows) == sorted(t.id for t in trajectories())
    for row in rows:
        feats = token_labels(row, tokenizer)
        enc = tokenizer(row["prompt"] + row["completion"], add_special_tokens=False,
                        return_offsets_mapping=True)
        want = expected_trained(row, enc["offset_mapping"]) + [True]  # + the trained EOS
        got = [label != -100 for label in feats["labels"]]
        assert got == want
        assert feats["input_ids"][-1] == feats["labels"][-1] == tokenizer.eos_token_id
        assert all(lab in (-100, tid) for lab, tid in zip(feats["labels"], feats["input_ids"],
                                                          strict=True))
        output_text = "".join(row["completion"][s["start"]:s["end"]] for s in row["segments"]
                              if s["kind"] == "output")
        trained_text = tokenizer.decode([t for t in feats["labels"][:-1] if t != -100])
        assert output_text and output_text not in trained_text
        assert "\\boxed" in trained_text
    short = token_labels(rows[0], tokenizer, max_length=10)
    assert len(short["input_ids"]) == len(short["labels"]) == 10


def test_one_sft_step_and_masked_tokens_carry_no_loss(export_dir, tokenizer, tmp_path):
    import datasets
    from trl import SFTConfig, SFTTrainer

    rows = list(read_jsonl(export_dir))
    feats = [token_labels(r, tokenizer) for r in rows]
    train = datasets.Dataset.from_list(feats)
    model = tiny_model(len(tokenizer))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    config = SFTConfig(output_dir=str(tmp_path / "ckpt"), max_steps=1, learning_rate=1e-3,
                       per_device_train_batch_size=2, use_cpu=True, save_strategy="no",
                       report_to="none", logging_steps=1, max_length=1024,
                       activation_checkpointing=False, optim="adamw_torch", bf16=False)
    trainer = SFTTrainer(model=model, args=config, train_dataset=train,
                         processing_class=tokenizer)
    # TRL kept our labels as they are
    assert trainer.train_dataset[0]["labels"] == feats[0]["labels"]
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
    width = batch["input_ids"].shape[1]
    for i in range(2):
        labels = feats[i]["labels"]
        assert batch["labels"][i].tolist() == labels + [-100] * (width - len(labels))
    # masked targets carry no loss: the loss's gradient w.r.t. the logits that predict them is
    # exactly zero, and non-zero where a trained token is predicted
    model.train()
    logits = model(input_ids=batch["input_ids"],
                   attention_mask=batch.get("attention_mask")).logits
    logits.retain_grad()
    shift_labels = batch["labels"][:, 1:]
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                             shift_labels.reshape(-1), ignore_index=-100)
    loss.backward()
    grad = logits.grad[:, :-1].abs().sum(-1)
    masked = shift_labels == -100
    assert masked.any() and (~masked).any()
    assert torch.all(grad[masked] == 0)
    assert torch.all(grad[~masked] > 0)
    # the model's loss is the mean cross-entropy over the trained tokens alone; training on
    # everything (labels = input ids) would give another number
    model.zero_grad()
    with torch.no_grad():
        ids = batch["input_ids"]
        ref = model(input_ids=ids, attention_mask=batch.get("attention_mask"),
                    labels=batch["labels"]).loss
        per_token = torch.nn.functional.cross_entropy(
            logits[:, :-1].detach().reshape(-1, logits.shape[-1]),
            ids[:, 1:].reshape(-1), reduction="none").view(ids.shape[0], -1)
        assert torch.allclose(ref, per_token[~masked].mean(), atol=1e-5)
        assert not torch.allclose(ref, per_token[batch["attention_mask"][:, 1:] == 1].mean())
    # one real optimisation step
    result = trainer.train()
    assert math.isfinite(result.training_loss) and result.global_step == 1
    changed = sum(not torch.equal(before[n], p.detach()) for n, p in model.named_parameters())
    assert changed > 0


def test_the_example_recipe_runs_a_step_on_a_tiny_model(export_dir, tmp_path):
    from bench.standins import build_tiny_model

    model_dir = build_tiny_model(tmp_path / "tiny")
    spec = importlib.util.spec_from_file_location("train_sft", ROOT / "examples" / "train_sft.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    result = mod.main(["--data", str(export_dir), "--model", str(model_dir), "--output",
                       str(tmp_path / "ckpt"), "--max-steps", "1", "--cpu", "--global-batch",
                       "2", "--max-length", "512", "--save-strategy", "no", "--cache-dir",
                       str(tmp_path / "cache"), "--retemplate"])
    assert result.global_step == 1 and math.isfinite(result.training_loss)
