"""Decoding by hand (``Generator.sample_many``): every core for the duration, the model's
key/value cache under either of its names, one top-p sampling step, and a batch of prompts
sampled n times each with their cache held once (``sample_batch``)."""

from __future__ import annotations

import contextlib
import inspect
import os

from .errors import SearchctlError

__all__ = [
    "PREFILL_ROWS",
    "SharedPrefix",
    "cache_argument",
    "cache_of",
    "can_share_prefix",
    "every_core",
    "prefill",
    "sample_batch",
    "sample_top_p",
    "shared_prefix_for",
]


def cache_argument(model) -> str:
    """The keyword a causal LM takes its cache by: `cache` (transformers 5), else `past_key_values`."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


@contextlib.contextmanager
def every_core(torch):
    """Generation on every core: a searcher opened before (FAISS) leaves torch's OpenMP
    pool at one thread, and queries written after a search then ran on one core of two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def cache_of(output):
    return getattr(output, "cache", None) or output.past_key_values


def _nucleus(torch, sorted_probs, index, top_p: float, generator):
    """Sample from best-first probabilities cut to the smallest prefix holding ``top_p``."""
    sorted_probs[(sorted_probs.cumsum(-1) - sorted_probs) > top_p] = 0
    picked = torch.multinomial(sorted_probs / sorted_probs.sum(-1, keepdim=True), 1, generator=generator)
    return index.gather(-1, picked).squeeze(-1)


def _draw(torch, probs, generator):
    """One token per row, drawn by the inverse of its cumulative distribution
    (``torch.multinomial`` draws an exponential variate for every token: 60 ms for 64 rows
    of SmolLM2's 49,152, against 1 ms)."""
    cumulative = probs.cumsum(-1)
    if not torch.isfinite(cumulative[:, -1]).all():  # torch.multinomial refuses these too
        raise SearchctlError(
            "the generator's next-token probabilities are not finite (NaN or infinity in its output): "
            "its weights are damaged or overflow in this precision; give another model"
        )
    point = torch.rand((probs.shape[0], 1), generator=generator) * cumulative[:, -1:]
    return torch.searchsorted(cumulative, point, right=True).clamp_(max=probs.shape[-1] - 1)


# Draws a row gets from the whole distribution before its nucleus is looked for by sorting:
# each draw lands in the nucleus with probability at least ``top_p``.
NUCLEUS_DRAWS = 3


def sample_top_p(torch, logits, temperature: float, top_p: float, generator):
    """One token per row: temperature, then the smallest set of tokens holding ``top_p``
    (best first; a drawn token as likely as the last one of that set is kept too).

    A token is drawn from the whole row and kept if it lies in that set, that is if the
    tokens more likely than it hold at most ``top_p``; otherwise the row draws again. A
    kept draw is exactly a draw from the set, renormalised, with no sort: one pass over
    the row to draw and one to check (sorting cost more than a decoding step's attention).
    A row still refused after ``NUCLEUS_DRAWS`` draws (a small ``top_p``) has its set found
    by ``_sorted_nucleus``."""
    probs = torch.softmax(logits / temperature, dim=-1)
    out = torch.empty(probs.shape[0], dtype=torch.long)
    pending = torch.arange(probs.shape[0])
    for _ in range(NUCLEUS_DRAWS if top_p < 1 else 1):
        rows = probs if len(pending) == probs.shape[0] else probs[pending]
        drawn = _draw(torch, rows, generator)
        before = torch.where(rows > rows.gather(-1, drawn), rows, 0).sum(-1)
        kept = before <= top_p
        out[pending[kept]] = drawn[kept, 0]
        pending = pending[~kept]
        if len(pending) == 0:
            return out
    out[pending] = _sorted_nucleus(torch, probs[pending], top_p, generator)
    return out


# The best tokens ``_sorted_nucleus`` looks for a row's nucleus in, fewest first: at
# temperature 1 and top-p 0.95 SmolLM2's nucleus held 16 tokens or fewer in 41 % of rows,
# 64 in 53 %, 1,024 in 90 % and 8,192 in 99.5 % (2,496 rows of SciFact queries).
NUCLEUS_STAGES = (64, 1024, 8192)


def _sorted_nucleus(torch, probs, top_p: float, generator):
    """One token per row from its nucleus found by sorting: in a row's best k tokens (k of
    ``NUCLEUS_STAGES`` in turn) once they hold more than ``top_p`` (every token past them
    then has more than ``top_p`` before it and is cut anyway), else in the whole row."""
    out = torch.empty(probs.shape[0], dtype=torch.long)
    pending = torch.arange(probs.shape[0])
    for k in NUCLEUS_STAGES:
        if k >= probs.shape[-1] or len(pending) == 0:
            break
        rows = probs if len(pending) == probs.shape[0] else probs[pending]
        top, index = torch.topk(rows, k)
        held = top.sum(-1) > top_p
        if held.any():
            out[pending[held]] = _nucleus(torch, top[held], index[held], top_p, generator)
        pending = pending[~held]
    if len(pending):  # a flat distribution: its nucleus reaches past every stage
        ordered, where = torch.sort(probs[pending], descending=True)
        out[pending] = _nucleus(torch, ordered, where, top_p, generator)
    return out


def sample_batch(torch, model, input_ids, attention_mask, n: int, *, max_new_tokens: int, temperature: float,
                 top_p: float, generator, stops: set[int]) -> list[list[int]]:  # fmt: skip
    """``n`` sampled continuations (token ids, without the stop) of each of a batch of
    left-padded prompts, the prompt's samples in turn: ``Generator.sample_many``'s batch.
    The prompts are read once (``prefill``) and their cache held once for their samples
    (``SharedPrefix``) or, for a model that cannot share it, copied ``n`` times. A sample
    ends at a token of ``stops`` or after ``max_new_tokens``; finished rows leave the batch
    whenever a quarter of it has finished (a prompt's samples together where they share)."""
    cache_name = cache_argument(model)
    stop_ids = torch.tensor(sorted(stops))
    mask = attention_mask
    share = can_share_prefix(model)
    logits, caches = prefill(torch, model, input_ids, mask, PREFILL_ROWS if share else len(mask))
    prefix, shared = shared_prefix_for(torch, model, caches, mask, n) if share else None, {}
    if prefix is None:  # the prompts' cache copied for each sample
        if len(caches) > 1:
            logits, caches = prefill(torch, model, input_ids, mask, len(mask))
        cache = caches[0]
        cache.batch_repeat_interleave(n)
        mask = mask[:, mask.shape[1] - cache.get_seq_length() :].repeat_interleave(n, 0)
    else:  # held once; the samples' own tokens go to a new cache
        cache, shared = None, {"shared_prefix": prefix}
    positions = attention_mask.sum(-1).repeat_interleave(n)  # of each sample's next token
    logits = logits.repeat_interleave(n, 0)
    written: list[list[int]] = [[] for _ in range(len(positions))]
    rows = torch.arange(len(positions))  # the sample each row of the batch writes
    done = torch.zeros(len(positions), dtype=torch.bool)
    unit = 1 if prefix is None else n  # a prompt's samples leave together where they share its cache
    for _ in range(max_new_tokens):
        nxt = sample_top_p(torch, logits, temperature, top_p, generator)
        for row, token, finished in zip(rows.tolist(), nxt.tolist(), done.tolist()):
            if not finished and token not in stops:
                written[row].append(token)
        done |= torch.isin(nxt, stop_ids)
        live = (~done.reshape(-1, unit).all(1)).nonzero().flatten()
        if len(live) == 0:
            break
        if len(live) <= 0.75 * (len(rows) // unit):  # drop the finished, cache and all
            keep = (live[:, None] * unit + torch.arange(unit)).flatten()
            rows, nxt, done, positions = rows[keep], nxt[keep], done[keep], positions[keep]
            if prefix is None:
                mask = mask[keep]
            else:
                prefix.select(live)
            if cache is not None:
                cache.batch_select_indices(keep)
        step_args = {cache_name: cache} if cache is not None else {}
        if prefix is None:
            mask = torch.cat([mask, torch.ones((mask.shape[0], 1), dtype=mask.dtype)], 1)
            step_args["attention_mask"] = mask
        step = model(input_ids=nxt[:, None], position_ids=positions[:, None], use_cache=True, **step_args, **shared)
        positions = positions + 1
        cache, logits = cache_of(step), step.logits[:, -1, :].float()
    return written


# -- the prompts' key/value cache held once while their samples decode --------------------

SHARED_PREFIX = "searchctl_shared_prefix"  # the attention implementation name registered


# Prompts the forward pass over them reads at a time where their caches are shared (the
# activations of fewer rows stay in the CPU's caches): 96 SciFact prompts x 2 samples,
# interleaved in one process, 9.32 queries/s eight at a time against 9.02 at 32.
PREFILL_ROWS = 8


def can_share_prefix(model) -> bool:
    """Whether ``SharedPrefix`` can attend for this model: attention through transformers'
    interface (sdpa), on the CPU, no sliding window (every layer's cache a plain one), and
    PyTorch's CPU flash-attention kernel, which gives the log-sum-exp the merge needs."""
    import torch

    layer_types = getattr(model.config, "layer_types", None) or ["full_attention"]
    return (
        hasattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu")
        and model.config._attn_implementation in ("sdpa", SHARED_PREFIX)
        and model.device.type == "cpu"
        and getattr(model.config, "sliding_window", None) is None
        and all(kind == "full_attention" for kind in layer_types)
    )


def prefill(torch, model, input_ids, mask, rows: int):
    """The forward pass over left-padded prompts, ``rows`` at a time: the logits of each
    one's last token, and the key/value cache of each pass (as long as its longest prompt:
    the columns its rows all pad are not computed)."""
    logits, caches = [], []
    for start in range(0, len(mask), rows):
        part = mask[start : start + rows]
        lead = int(part.any(0).int().argmax())  # columns of padding alone: left out of the pass
        part = part[:, lead:]
        out = model(input_ids=input_ids[start : start + rows, lead:], attention_mask=part,
                    position_ids=(part.cumsum(-1) - 1).clamp(min=0), use_cache=True, logits_to_keep=1)  # fmt: skip
        logits.append(out.logits[:, -1, :].float())
        caches.append(cache_of(out))
    return torch.cat(logits), caches


def shared_prefix_for(torch, model, caches, mask, n: int) -> SharedPrefix | None:
    """The prompts' caches (of ``prefill`` with ``mask``) held as one for their ``n``
    samples each, for a model ``can_share_prefix`` allows, where every layer of the caches
    is a plain growing one; else None (copy the cache n times)."""
    from transformers import AttentionInterface
    from transformers.cache_utils import DynamicLayer
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    parts = [getattr(cache, "layers", None) or [] for cache in caches]
    if not all(parts):
        return None
    if any(type(layer) is not DynamicLayer for layers in parts for layer in layers):
        return None
    if SHARED_PREFIX not in AttentionInterface._global_mapping:
        AttentionInterface.register(SHARED_PREFIX, _attention)
        AttentionMaskInterface.register(SHARED_PREFIX, sdpa_mask)  # every other call: as sdpa
    model.config._attn_implementation = SHARED_PREFIX

    def padded(tensors):  # each pass's keys or values, padded on the left to the whole batch's length
        width = mask.shape[1]
        return torch.cat([torch.nn.functional.pad(t, (0, 0, width - t.shape[2], 0)) for t in tensors])

    layers = [
        (padded([layers[i].keys for layers in parts]), padded([layers[i].values for layers in parts]))
        for i in range(len(parts[0]))
    ]
    return SharedPrefix(torch, layers, mask, n)


class SharedPrefix:
    """Attention of one decoding step over the prompts' cache, held once per prompt, and the
    samples' own tokens (the step's cache): ``Generator.sample_many``'s ``n`` samples of a
    prompt read its keys and values once per step, with no copy (copying the cache n times,
    growing each copy by ``torch.cat`` and attending over the copies took about a third of a
    decoding step). The two parts are attended separately and merged by their log-sum-exp,
    which is softmax over both."""

    def __init__(self, torch, layers, mask, n: int):
        self.torch = torch
        self.layers = layers  # per layer: keys and values, (prompts, kv heads, prompt length, head dim)
        dtype = layers[0][0].dtype
        self.bias = torch.zeros(mask.shape, dtype=dtype).masked_fill(mask == 0, float("-inf"))[:, None, None, :]
        self.n = n
        self._flash = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu

    def select(self, prompts) -> None:
        """Keep only these prompts (their samples' rows go with them)."""
        self.layers = [(k.index_select(0, prompts), v.index_select(0, prompts)) for k, v in self.layers]
        self.bias = self.bias.index_select(0, prompts)

    def attend(self, layer: int, query, key, value, scaling):
        """One token per row: query (rows, heads, 1, d), the samples' keys and values so
        far (rows, kv heads, steps, d); rows are each prompt's n samples in turn."""
        torch = self.torch
        rows, heads, _, d = query.shape
        kv_heads = key.shape[1]
        groups, prompts, n = heads // kv_heads, rows // self.n, self.n
        prefix_keys, prefix_values = self.layers[layer]
        # a prompt's n samples x its head group attend its keys as n x groups queries
        by_prompt = query.reshape(prompts, n, kv_heads, groups, d).transpose(1, 2).reshape(prompts, kv_heads, -1, d)
        out_p, lse_p = self._flash(by_prompt, prefix_keys, prefix_values, attn_mask=self.bias, scale=scaling)
        out_s, lse_s = self._flash(query.reshape(rows, kv_heads, groups, d), key, value, scale=scaling)
        out_p = out_p.reshape(prompts, kv_heads, n, groups, d).transpose(1, 2).reshape(rows, kv_heads, groups, d)
        lse_p = lse_p.reshape(prompts, kv_heads, n, groups).transpose(1, 2).reshape(rows, kv_heads, groups)
        top = torch.maximum(lse_p, lse_s)
        w_p, w_s = torch.exp(lse_p - top)[..., None], torch.exp(lse_s - top)[..., None]
        out = (out_p.float() * w_p + out_s.float() * w_s) / (w_p + w_s)
        return out.to(query.dtype).reshape(rows, 1, heads, d)


def _attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """transformers' sdpa attention, except in a step given ``shared_prefix``."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    prefix = kwargs.pop("shared_prefix", None)
    if prefix is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout,
                                      **kwargs)  # fmt: skip
    return prefix.attend(module.layer_idx, query, key, value, scaling), None
