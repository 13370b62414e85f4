"""Fine-tune the generator (a causal LM) on the user's own text.

Causal language modelling with the transformers ``Trainer``: every token is predicted
from the ones before it (``DataCollatorForLanguageModeling(mlm=False)``, the pad token is
the end-of-text token). Three sources of text:

- plain text (a file, paragraphs separated by blank lines) and an index's chunks: the
  texts are joined, each ended by the end-of-text token, and cut into blocks of
  ``block_size`` tokens, so no token is wasted on padding and nothing is truncated;
- query/passage pairs: each pair becomes one conversation in the model's chat template,
  the passage in the prompt ``finetune.queries`` writes queries with and the query as the
  answer, so the model learns to write queries like the examples.

A held-out 10 % of the texts (by seed, before blocking) is scored before and after as
perplexity, exp of the mean token loss. A model that is not better than its base is
reported as such; the folder is written anyway, and the command fails unless forced.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from searchcore.classifier import quiet_transformers
from searchcore.devices import resolve_device
from searchcore.errors import UsageError
from searchcore.generator import Generator

from .embedder import publish_model
from .pairs import Pair
from .queries import PASSAGE_WORDS, QUERY_PROMPT

__all__ = ["GeneratorResult", "train_generator", "pair_text", "paragraphs"]


@dataclass
class GeneratorResult:
    out: str
    base: str
    source: str
    texts: int
    held_out: int
    train_tokens: int
    perplexity_before: float
    perplexity_after: float
    seconds_training: float
    settings: dict = field(default_factory=dict)

    @property
    def improved(self) -> bool:
        return self.perplexity_after < self.perplexity_before

    def not_better(self) -> str:
        return (
            f"the fine-tuned generator is not better than {self.base} (held-out perplexity "
            f"{self.perplexity_before:.2f} -> {self.perplexity_after:.2f}); it is in {self.out} anyway"
        )

    def line(self) -> str:
        return (
            f"held-out perplexity {self.perplexity_before:.2f} -> {self.perplexity_after:.2f} "
            f"({self.texts - self.held_out:,} texts, {self.train_tokens:,} tokens, {self.seconds_training:.0f} s)"
        )

    def to_dict(self) -> dict:
        return {**asdict(self), "improved": self.improved}


def paragraphs(text: str) -> list[str]:
    """The non-empty paragraphs of a text (blocks separated by blank lines)."""
    blocks, current = [], []
    for line in text.splitlines():
        if line.strip():
            current.append(line.rstrip())
        elif current:
            blocks.append("\n".join(current))
            current = []
    if current:
        blocks.append("\n".join(current))
    return blocks


def pair_text(generator: Generator, pair: Pair) -> str:
    """One pair as the conversation the generator is prompted with, the query its answer."""
    passage = " ".join(pair.positive.split()[:PASSAGE_WORDS])
    prompt = QUERY_PROMPT.format(passage=passage)
    if not generator.has_chat_template:
        return f"{prompt}\n{pair.query}"
    messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": pair.query}]
    return generator.tokenizer.apply_chat_template(messages, tokenize=False)


def _blocks(tokenizer, texts: list[str], block_size: int) -> list[list[int]]:
    stream: list[int] = []
    for text in texts:
        stream.extend(tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id])
    blocks = [stream[i : i + block_size] for i in range(0, len(stream), block_size)]
    return [b for b in blocks if len(b) >= 2]


def _examples(tokenizer, texts: list[str], block_size: int, whole: bool) -> list[dict]:
    if whole:  # one example per text (a conversation), cut at block_size
        ids = [tokenizer(t, add_special_tokens=False)["input_ids"][:block_size] for t in texts]
    else:
        ids = _blocks(tokenizer, texts, block_size)
    return [{"input_ids": i, "attention_mask": [1] * len(i)} for i in ids if len(i) >= 2]


def _model_card(result: GeneratorResult) -> str:
    settings = "\n".join(f"- {k}: {v}" for k, v in result.settings.items())
    return f"""---
library_name: transformers
base_model: {result.base}
pipeline_tag: text-generation
---

# Fine-tuned generator

Fine-tuned from `{result.base}` with `searchctl finetune generator` on {result.source}: causal language
modelling, {result.texts - result.held_out:,} texts ({result.train_tokens:,} tokens).

## Settings

{settings}

## Held-out perplexity ({result.held_out:,} texts)

| base | fine-tuned |
|---|---|
| {result.perplexity_before:.3f} | {result.perplexity_after:.3f} |

Training took {result.seconds_training:.0f} s.
"""


def train_generator(
    texts: list[str] | list[Pair],
    out: Path,
    *,
    source: str,
    base: str = "SmolLM2-135M-Instruct",
    epochs: float = 1.0,
    lr: float = 5e-5,
    batch_size: int = 8,
    block_size: int = 256,
    seed: int = 42,
    precision: str = "auto",
    device: str = "auto",
    cache_dir: Path | None = None,
    progress: bool = False,
) -> GeneratorResult:
    """Fine-tune ``base`` on ``texts`` into ``out``; pairs become one conversation each
    (``pair_text``, in the base model's own chat template)."""
    from datasets import Dataset
    from transformers import DataCollatorForLanguageModeling, Trainer, TrainingArguments

    from .precision import resolve_precision

    quiet_transformers()
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "config.json").exists():
        raise UsageError(f"{out} exists and is not a model folder; pick a new --out")
    conversations = any(isinstance(t, Pair) for t in texts)
    items = [t for t in texts if isinstance(t, Pair) or t.strip()]
    if len(items) < 2:
        raise UsageError(f"{source} holds {len(items)} text(s); fine-tuning needs at least two (one is held out)")
    generator = Generator(base, cache_dir=cache_dir, precision="fp32")
    tokenizer, model = generator.tokenizer, generator.model
    strings = [pair_text(generator, t) if isinstance(t, Pair) else t for t in items]
    tokenizer.padding_side = "right"
    rng = random.Random(seed)
    order = list(range(len(strings)))
    rng.shuffle(order)
    held_count = max(1, len(strings) // 10)
    held = [strings[i] for i in order[:held_count]]
    train = [strings[i] for i in order[held_count:]]
    train_examples = _examples(tokenizer, train, block_size, conversations)
    held_examples = _examples(tokenizer, held, block_size, conversations)
    if not train_examples or not held_examples:
        raise UsageError(f"{source} is too short to fine-tune on; give more text")
    precision = resolve_precision(precision)
    on_cpu = resolve_device(device) == "cpu"
    staging = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    steps = -(-len(train_examples) // batch_size) * epochs
    args = TrainingArguments(
        output_dir=str(staging / "checkpoints"),
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size,
        learning_rate=lr,
        warmup_steps=max(1, int(0.1 * steps)),
        weight_decay=0.01,
        seed=seed,
        data_seed=seed,
        save_strategy="no",
        logging_strategy="no",
        eval_strategy="no",
        report_to=[],
        use_cpu=on_cpu,
        bf16=precision == "bf16",
        disable_tqdm=not progress,
        dataloader_num_workers=0,
    )
    model.config.use_cache = False
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(train_examples),
        eval_dataset=Dataset.from_list(held_examples),
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
    )
    if not progress:
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    before = math.exp(trainer.evaluate()["eval_loss"])
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    after = math.exp(trainer.evaluate()["eval_loss"])
    model.config.use_cache = True
    shutil.rmtree(staging / "checkpoints", ignore_errors=True)
    trainer.save_model(str(staging))
    tokenizer.padding_side = "left"
    tokenizer.save_pretrained(str(staging))
    result = GeneratorResult(
        out=str(out),
        base=generator.name,
        source=source,
        texts=len(strings),
        held_out=len(held),
        train_tokens=sum(len(e["input_ids"]) for e in train_examples),
        perplexity_before=before,
        perplexity_after=after,
        seconds_training=seconds,
        settings={
            "epochs": epochs,
            "lr": lr,
            "batch_size": batch_size,
            "block_size": block_size,
            "seed": seed,
            "precision": precision,
            "examples": "one conversation per pair" if conversations else f"blocks of {block_size} tokens",
        },
    )
    publish_model(staging, out, _model_card(result), result.to_dict())
    return result
