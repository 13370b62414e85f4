"""A query encoder distilled from the index's own search: MarginMSE on frozen passages.

What it optimises: for each graded query (``finetune.grading``), the student's margin
between the query's positive chunk and each of ``negatives`` other candidates,
``scale * (cos(q, p) - cos(q, n))``, is pulled to the teacher's margin by mean squared
error (MarginMSE, as GPL does with a cross-encoder teacher; here the teacher is the
index's hybrid search). ``scale`` puts cosines on the teacher's units: fitted once, by
least squares, on the untrained model's margins.

Only the query side learns. The passages are the vectors the index already stores, so a
training step embeds a batch of short queries and nothing else (measured on this 2-core
CPU: about 0.65-0.85 s a step of 32 queries), the index is never re-embedded, and the
result swaps in or out at once: the index records it as its query encoder
(``IndexMeta.query_model``).

Training runs in steps with checkpoints (weights, optimizer, schedule, random states,
where in the data it was) written whole and then named by a ``latest`` file, so a run that
is killed resumes from its last checkpoint, never from zero; ``hours`` stops it at a time
budget (the learning-rate schedule stays planned for ``steps``). A seed makes a run
repeatable. Where torch sees a CUDA device (``device``), it trains there.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from searchcore.devices import resolve_device

from .grading import Graded

__all__ = ["DistillSettings", "DistillResult", "distill"]

# candidates a query's example holds (the positive and the rest), padded with the positive
_CANDIDATES = 48


@dataclass(frozen=True)
class DistillSettings:
    steps: int = 1000
    batch_size: int = 32
    lr: float = 2e-5
    negatives: int = 8  # margins per query (the positive against this many other candidates)
    seed: int = 42
    checkpoint_every: int = 100  # steps
    hours: float | None = None
    precision: str = "auto"
    device: str = "auto"


@dataclass
class DistillResult:
    out: str
    steps_done: int
    resumed_from: int
    scale: float
    seconds: float
    stopped_by_budget: bool = False
    final_loss: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


class _Examples:
    """The graded queries as arrays: candidate rows into a passage matrix, teacher scores, mask."""

    def __init__(self, graded: list[Graded], vectors: dict[int, np.ndarray]):
        ids = sorted({c for g in graded for c, _ in g.candidates if c in vectors})
        row = {c: i for i, c in enumerate(ids)}
        self.passages = np.stack([vectors[c] for c in ids]).astype(np.float32) if ids else np.zeros((0, 1), np.float32)
        self.queries: list[str] = []
        index, teacher, mask = [], [], []
        for g in graded:
            rows = [(c, s) for c, s in g.candidates if c in row][:_CANDIDATES]
            if len(rows) < 2 or rows[0][0] != g.positive:
                continue
            pad = _CANDIDATES - len(rows)
            self.queries.append(g.query)
            index.append([row[c] for c, _ in rows] + [row[g.positive]] * pad)
            teacher.append([s for _, s in rows] + [0.0] * pad)
            mask.append([1.0] * len(rows) + [0.0] * pad)
        self.index = np.asarray(index, np.int64).reshape(-1, _CANDIDATES)
        self.teacher = np.asarray(teacher, np.float32).reshape(-1, _CANDIDATES)
        self.mask = np.asarray(mask, np.float32).reshape(-1, _CANDIDATES)

    def __len__(self) -> int:
        return len(self.queries)


def _save_checkpoint(work: Path, step: int, model, optimizer, schedule, state: dict) -> None:
    import torch

    folder = work / f"checkpoint-{step}"
    tmp = work / f".checkpoint-{step}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(str(tmp))
    torch.save({"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(), **state}, tmp / "state.pt")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    latest = work / ".latest.tmp"
    latest.write_text(folder.name)
    with open(latest, "rb+") as fh:
        os.fsync(fh.fileno())
    latest.replace(work / "latest")  # a checkpoint counts only once it is whole and named here
    for old in work.glob("checkpoint-*"):
        if old != folder:
            shutil.rmtree(old, ignore_errors=True)


def _latest(work: Path) -> Path | None:
    try:
        folder = work / (work / "latest").read_text().strip()
    except OSError:
        return None
    return folder if (folder / "state.pt").exists() else None


def distill(
    graded: list[Graded],
    vectors: dict[int, np.ndarray],
    base: str,
    out: Path,
    work: Path,
    settings: DistillSettings = DistillSettings(),
    *,
    on_step: Callable[[int, int, float], None] | None = None,
    on_resume: Callable[[int], None] | None = None,
) -> DistillResult:
    """Train a query encoder from ``base`` (a sentence-transformers folder or name) on
    ``graded`` against the stored passage ``vectors``; write it to ``out``. ``work`` holds
    the checkpoints (a run into the same ``work`` resumes). ``on_step(done, total, loss)``
    hears the progress, ``on_resume(step)`` where a resumed run starts."""
    import torch
    from sentence_transformers import SentenceTransformer

    from searchcore.embedder import model_location

    from .precision import resolve_precision

    started = time.perf_counter()
    torch.set_num_threads(os.cpu_count() or 1)  # FAISS, once opened, leaves OpenMP at one thread
    device = resolve_device(settings.device)
    bf16 = resolve_precision(settings.precision) == "bf16" or (device == "cuda" and settings.precision == "auto")
    data = _Examples(graded, vectors)
    if len(data) == 0:
        from searchcore.errors import SearchctlError

        raise SearchctlError("no graded query has a candidate to learn from; give the index more text")
    work.mkdir(parents=True, exist_ok=True)
    resume = _latest(work)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the run shows its own progress
    model = SentenceTransformer(str(resume or model_location(base)), device=device)
    passages = torch.tensor(data.passages, device=device)
    teacher, mask = torch.tensor(data.teacher, device=device), torch.tensor(data.mask, device=device)
    index = torch.tensor(data.index, device=device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=0.01)
    warm = max(1, settings.steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: (s + 1) / warm if s < warm else max(0.0, (settings.steps - s) / max(1, settings.steps - warm)),
    )
    rng = random.Random(settings.seed)
    torch.manual_seed(settings.seed)
    order = list(range(len(data)))
    rng.shuffle(order)
    step, cursor, scale, resumed_from = 0, 0, 0.0, 0
    if resume is not None:
        state = torch.load(resume / "state.pt", weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        step, cursor, order, scale = state["step"], state["cursor"], state["order"], state["scale"]
        rng.setstate(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        resumed_from = step
        if on_resume is not None:
            on_resume(step)

    def embed(queries: list[str]):
        prepare = getattr(model, "preprocess", None) or model.tokenize  # `tokenize` in older releases
        features = {k: v.to(device) if hasattr(v, "to") else v for k, v in prepare(queries).items()}
        with torch.autocast(device if device == "cuda" else "cpu", dtype=torch.bfloat16, enabled=bf16):
            found = model(features)["sentence_embedding"]
        return torch.nn.functional.normalize(found.float(), dim=-1)

    if not scale:  # least squares: scale x the untrained margins ~ the teacher's margins
        with torch.no_grad():
            rows = torch.tensor(order[:2048], device=device)
            q = torch.cat(
                [embed([data.queries[i] for i in rows[s : s + 128].tolist()]) for s in range(0, len(rows), 128)]
            )
            cos = torch.einsum("bd,bkd->bk", q, passages[index[rows]])
            student = (cos[:, :1] - cos) * mask[rows]
            target = (teacher[rows, :1] - teacher[rows]) * mask[rows]
            scale = float((student * target).sum() / (student * student).sum().clamp(min=1e-9)) or 1.0
    model.train()
    deadline = started + settings.hours * 3600 if settings.hours else None
    loss_value, stopped = 0.0, False
    while step < settings.steps:
        if cursor + settings.batch_size > len(order):
            rng.shuffle(order)
            cursor = 0
        rows = torch.tensor(order[cursor : cursor + settings.batch_size], device=device)
        cursor += settings.batch_size
        q = embed([data.queries[i] for i in rows.tolist()])
        cos = torch.einsum("bd,bkd->bk", q, passages[index[rows]])
        m = mask[rows].clone()
        m[:, 0] = 0
        if settings.negatives < _CANDIDATES - 1:  # a random `negatives` of the other candidates
            draw = torch.rand(m.shape, device=device) * m
            keep = draw >= torch.topk(draw, settings.negatives, dim=1).values[:, -1:]
            m = m * keep * (draw > 0)
        error = (scale * (cos[:, :1] - cos) - (teacher[rows, :1] - teacher[rows])) ** 2
        loss = (error * m).sum() / m.sum().clamp(min=1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        step += 1
        loss_value = float(loss.detach())
        if on_step is not None:
            on_step(step, settings.steps, loss_value)
        out_of_time = deadline is not None and time.perf_counter() > deadline
        if step % settings.checkpoint_every == 0 or step == settings.steps or out_of_time:
            state = {"step": step, "cursor": cursor, "order": order, "scale": scale, "rng": rng.getstate(),
                     "torch_rng": torch.get_rng_state()}  # fmt: skip
            _save_checkpoint(work, step, model, optimizer, schedule, state)
        if out_of_time:
            stopped = True
            break
    model.eval()
    staging = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    model.save(str(staging))
    result = DistillResult(str(out), step, resumed_from, round(scale, 4), time.perf_counter() - started, stopped,
                           round(loss_value, 5))  # fmt: skip
    (staging / "searchctl-distill.json").write_text(json.dumps({**result.to_dict(), "settings": asdict(settings)}))
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return result
