"""Fine-tune on a startui Hint-RFT export with TRL's SFTTrainer: the START recipe, for GPU users.

    python -m startui export out/seed --run seed-1 --dataset seed        # D_seed
    accelerate launch examples/train_sft.py --data out/seed/data.jsonl \\
        --model /models/QwQ-32B-Preview --output ckpt/start-0
    # then: generate with START-0, score, export --dataset start (D_START), and fine-tune the
    # *base* model again on D_START to get START (DESIGN.md section 1).

What it does: reads the JSONL export, turns each row into token ids and labels with
``startui.rft.export.token_labels`` (-100 on the prompt and outside the row's ``loss_mask``: kernel
outputs are never trained on, nor hints if the export masked them), and runs one
``SFTTrainer`` over the pre-tokenized data (TRL uses a ``labels`` column as is).

Defaults are the paper's full fine-tuning setting as we read it — learning rate 7e-6, global
batch 128, 3 epochs, 16k-token sequences — plus choices the paper leaves open (cosine schedule,
3% warmup, bf16, activation checkpointing); check them against the paper before quoting them,
and scale the learning rate and batch to your hardware. A 32B model needs several 80 GB GPUs with
ZeRO-3 or FSDP (pass your accelerate/deepspeed config as usual); ``--max-steps 1 --cpu`` with a
tiny model is the smoke test (tests/test_train.py runs exactly that).

The ``prompt`` column was templated for the model that generated the data. Training the same
family (the paper fine-tunes the model that generated D_seed) keeps it; ``--retemplate`` rebuilds
the prompt from ``messages`` with the new tokenizer's chat template instead (the loss mask is
relative to the completion, so it stays valid).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # startui without installing it

from startui.rft.export import FILES, token_labels  # noqa: E402

PAPER = {"learning_rate": 7e-6, "global_batch": 128, "epochs": 3.0, "max_length": 16384}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True,
                   help="the export's data.jsonl, or the export folder holding it")
    p.add_argument("--model", required=True, help="base model: a local folder or a hub id")
    p.add_argument("--tokenizer", help="tokenizer (default: the model's; must be a fast one)")
    p.add_argument("--output", required=True, help="where checkpoints and the model go")
    p.add_argument("--learning-rate", type=float, default=PAPER["learning_rate"])
    p.add_argument("--global-batch", type=int, default=PAPER["global_batch"],
                   help="sequences per optimizer step across all GPUs (gradient accumulation "
                        "makes up the rest)")
    p.add_argument("--batch-size", type=int, default=1, help="sequences per GPU per step")
    p.add_argument("--epochs", type=float, default=PAPER["epochs"])
    p.add_argument("--max-length", type=int, default=PAPER["max_length"],
                   help="tokens per sequence; longer ones are cut at the end")
    p.add_argument("--warmup", type=float, default=0.03, help="warmup, as a ratio of all steps")
    p.add_argument("--scheduler", default="cosine")
    p.add_argument("--max-steps", type=int, default=-1, help="stop after this many steps")
    p.add_argument("--save-strategy", default="epoch", help="epoch, steps or no")
    p.add_argument("--retemplate", action="store_true",
                   help="rebuild prompts from `messages` with this tokenizer's chat template")
    p.add_argument("--cpu", action="store_true", help="train on the CPU (smoke tests)")
    p.add_argument("--cache-dir", help="datasets cache folder (default: the usual one)")
    return p.parse_args(argv)


def load_rows(data: str, cache_dir: str | None = None) -> Any:
    import datasets

    path = Path(data)
    if path.is_dir():
        path = path / FILES["jsonl"]
    if not path.is_file():
        raise SystemExit(f"no export at {data}: expected data.jsonl from "
                         "`python -m startui export OUT`")
    return datasets.load_dataset("json", data_files=str(path), split="train",
                                 cache_dir=cache_dir)


def tokenize(rows: Any, tokenizer: Any, *, max_length: int, retemplate: bool) -> Any:
    if not getattr(tokenizer, "is_fast", False):
        raise SystemExit("the tokenizer must be a fast one (offset mapping turns the export's "
                         "character spans into token labels)")

    def one(row: dict[str, Any]) -> dict[str, list[int]]:
        if retemplate:
            row = dict(row, prompt=tokenizer.apply_chat_template(
                row["messages"][:-1], tokenize=False, add_generation_prompt=True))
        return token_labels(row, tokenizer, max_length=max_length)

    return rows.map(one, remove_columns=rows.column_names, desc="token labels")


def main(argv: list[str] | None = None) -> Any:
    args = parse_args(argv)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer or args.model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    train = tokenize(load_rows(args.data, args.cache_dir), tokenizer,
                     max_length=args.max_length, retemplate=args.retemplate)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    accumulate = max(1, args.global_batch // (args.batch_size * world))
    use_bf16 = not args.cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    model = AutoModelForCausalLM.from_pretrained(
        args.model, dtype=torch.bfloat16 if use_bf16 else torch.float32)
    config = SFTConfig(
        output_dir=args.output, learning_rate=args.learning_rate, num_train_epochs=args.epochs,
        max_steps=args.max_steps, per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=accumulate, lr_scheduler_type=args.scheduler,
        warmup_steps=args.warmup, bf16=use_bf16, activation_checkpointing=not args.cpu,
        max_length=args.max_length, logging_steps=1 if args.max_steps > 0 else 10,
        save_strategy=args.save_strategy, report_to="none", use_cpu=args.cpu,
        optim="adamw_torch" if args.cpu else "adamw_torch_fused")
    trainer = SFTTrainer(model=model, args=config, train_dataset=train,
                         processing_class=tokenizer)
    result = trainer.train()
    if args.save_strategy != "no":
        trainer.save_model(args.output)
    return result


if __name__ == "__main__":
    main()
