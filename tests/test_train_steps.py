"""Proof that the "steps" export trains a process reward model: ``step_token_labels`` puts each
step's label on the step's last token (as TRL's PRMTrainer tokenized; TRL 1.x ships no PRM
trainer), and one ``transformers.Trainer`` step of a token-classification head on the tiny
Qwen2, in which only those tokens carry loss."""

from __future__ import annotations

import math
import os

import pytest

from startui.rft.export import export, read_jsonl, step_token_labels
from startui.rft.select import SelectConfig
from startui.store import Store
from tests.test_export import trajectories
from tests.test_export_steps import T1_LABELS, edit, fourteen, plain

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def steps_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("steps")
    with Store(f"sqlite:///{tmp / 'steps.sqlite'}") as store:
        for t in trajectories()[:2] + [plain("t7", 7, mode="greedy")]:
            store.save_trajectory(t)
            store.add_review(t.id, reviewer="ann", decision="accepted")
        store.set_step_labels("t1", reviewer="ann", labels=T1_LABELS)
        edit(store, "t2", "bob", fourteen)
        store.set_step_labels("t2", reviewer="ann", labels={0: 1, 1: -1, 3: 0})
        store.set_step_labels("t7", reviewer="ann", labels={1: -1, 3: 1})
        export(store, tmp / "out", ["exp"], select_config=SelectConfig(dataset="steps"))
    return tmp / "out"


@pytest.fixture(scope="module")
def tokenizer():
    from bench.standins import train_tokenizer

    return train_tokenizer()


def test_each_label_sits_on_the_last_token_of_its_step(steps_dir, tokenizer):
    rows = list(read_jsonl(steps_dir))
    assert [r["id"] for r in rows] == ["t1", "t2", "t7"]
    for row in rows:
        feats = step_token_labels(row, tokenizer)
        ids, labels = feats["input_ids"], feats["labels"]
        assert len(ids) == len(labels)
        where = [i for i, lab in enumerate(labels) if lab != -100]
        assert [labels[i] for i in where] == [int(x) for x in row["labels"]]
        # the text up to each labelled token is the prompt and the steps so far, exactly
        for k, i in enumerate(where):
            assert tokenizer.decode(ids[:i + 1]) == row["prompt"] + "".join(
                row["completions"][:k + 1])
        assert tokenizer.decode(ids) == row["prompt"] + "".join(row["completions"])
    last = step_token_labels(rows[0], tokenizer, train_on_last_step_only=True)
    assert [x for x in last["labels"] if x != -100] == [int(rows[0]["labels"][-1])]
    sep = step_token_labels(rows[0], tokenizer, step_separator="\n")
    assert len(sep["input_ids"]) > len(step_token_labels(rows[0], tokenizer)["input_ids"])
    assert len(step_token_labels(rows[0], tokenizer, max_length=7)["labels"]) == 7
    with pytest.raises(ValueError, match="empty step"):
        step_token_labels({**rows[0], "completions": ["", "x"], "labels": [True, False]},
                          tokenizer)


def test_one_prm_training_step_on_the_tiny_model(steps_dir, tiny_dir, tmp_path):
    import datasets
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        Trainer,
        TrainingArguments,
    )

    tok = AutoTokenizer.from_pretrained(tiny_dir)
    rows = datasets.load_from_disk(str(steps_dir / "dataset"))
    ints = datasets.List(datasets.Value("int64"))
    # features: else map keeps the bool type of the "labels" column it replaces (as TRL did)
    train = rows.map(lambda r: step_token_labels(r, tok), remove_columns=rows.column_names,
                     features=datasets.Features({"input_ids": ints, "labels": ints}))
    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_pretrained(tiny_dir, num_labels=2)
    assert model.config.pad_token_id == tok.pad_token_id
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    args = TrainingArguments(output_dir=str(tmp_path / "ckpt"), max_steps=1, learning_rate=1e-3,
                             per_device_train_batch_size=3, use_cpu=True, save_strategy="no",
                             report_to="none", logging_steps=1, optim="adamw_torch", bf16=False,
                             seed=0)
    collator = DataCollatorForTokenClassification(tok)
    trainer = Trainer(model=model, args=args, train_dataset=train, data_collator=collator)
    batch = collator([train[i] for i in range(3)])
    labelled = batch["labels"] != -100
    assert labelled.sum().item() == sum(len(r) for r in rows["labels"])
    assert set(batch["labels"][labelled].tolist()) == {0, 1}
    # the loss is the cross-entropy of the step labels alone
    model.train()
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                labels=batch["labels"])
    want = torch.nn.functional.cross_entropy(out.logits[labelled], batch["labels"][labelled])
    assert torch.allclose(out.loss, want, atol=1e-6)
    model.zero_grad()
    result = trainer.train()
    assert result.global_step == 1 and math.isfinite(result.training_loss)
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())}
    assert any(n.startswith("score") for n in changed) and len(changed) > 2
