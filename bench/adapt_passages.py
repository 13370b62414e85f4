"""The passage side too: MarginMSE on both towers of the embedder, then the index re-embedded.

    python bench/adapt_passages.py RUN INDEX BEIR [--steps 800] [--batch 16] [--negatives 1]
                                   [--passage-tokens 160] [--splits train,test] [--work DIR]

`searchctl adapt` trains the query side only, against the vectors the index stores. This
measures the lever after it (GPL's own recipe): the same graded queries (RUN/graded.jsonl
of an `adapt` run on INDEX), each step embedding its queries *and* their positive and
``--negatives`` mined passages (title and text, as the index embeds them, cut to
``--passage-tokens`` while training) with one shared model, the student's margins pulled
to the teacher's by mean squared error (scale fitted by least squares on the untrained
model, bf16 autocast where the CPU has it). The trained model then re-embeds a copy of
INDEX (``indexer.reindex.reembedded_copy``, the index's backend) and dense, bm25 and
hybrid nDCG@10 of the base and the copy are scored on each judged split of BEIR in the
same run. It prints the table and the run's seconds with the CPU kind.
"""

from __future__ import annotations

import sys

sys.path = [p for p in sys.path if p not in ("", __file__.rsplit("/", 1)[0])]

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from quality import cpu_kind  # noqa: E402

MODES = ("dense", "bm25", "hybrid")


def passages_of(index: Path, wanted: set[int]) -> dict[int, str]:
    """Each wanted chunk as the index embeds it: its document's title, then its text."""
    from searchcore.embedder import embedded_text
    from searchcore.store import Store

    ids, texts = sorted(wanted), {}
    with Store.open(index, reader=True) as store:
        for start in range(0, len(ids), 500):
            for cid, record in store.chunk_records(ids[start : start + 500]).items():
                texts[cid] = embedded_text(record.title, record.text)
    return texts


def train(graded: list[dict], texts: dict[int, str], base: str, out: Path, opts) -> dict:
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(opts.seed)
    rng = random.Random(opts.seed)
    from finetune.precision import resolve_precision

    bf16 = resolve_precision("auto") == "bf16"
    model = SentenceTransformer(base, device="cpu")
    model.max_seq_length = opts.passage_tokens
    optimizer = torch.optim.AdamW(model.parameters(), lr=opts.lr, weight_decay=0.01)
    warm = max(1, opts.steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / warm if s < warm else max(0.0, (opts.steps - s) / max(1, opts.steps - warm))
    )

    def embed(batch: list[str]):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            found = model(model.tokenize(batch))["sentence_embedding"]
        return torch.nn.functional.normalize(found.float(), dim=-1)

    def sample(rows: list[int]) -> tuple[list[str], list[list[str]], list[list[float]]]:
        queries, groups, targets = [], [], []
        for i in rows:
            positive, *others = graded[i]["candidates"]
            pool = [c for c in others if c[0] in texts]
            negatives = rng.sample(pool, min(opts.negatives, len(pool)))
            queries.append(graded[i]["query"])
            groups.append([texts[positive[0]]] + [texts[c] for c, _ in negatives])
            targets.append([positive[1] - s for _, s in negatives])
        return queries, groups, targets

    def margins(queries: list[str], groups: list[list[str]]) -> list:
        q = embed(queries)
        p = embed([t for group in groups for t in group])
        out, at = [], 0
        for i, group in enumerate(groups):
            cos = p[at : at + len(group)] @ q[i]
            at += len(group)
            out.append(cos[0] - cos[1:])
        return out

    order = list(range(len(graded)))
    rng.shuffle(order)
    with torch.no_grad():  # least squares: scale x the untrained margins ~ the teacher's margins
        student, teacher = [], []
        for start in range(0, 256, 32):
            queries, groups, targets = sample(order[start : start + 32])
            for m, t in zip(margins(queries, groups), targets):
                student += m.tolist()
                teacher += t
        s, t = np.array(student), np.array(teacher)
        scale = float((s * t).sum() / (s * s).sum())
    model.train()
    started, cursor, loss_value = time.perf_counter(), 0, 0.0
    for step in range(1, opts.steps + 1):
        if cursor + opts.batch > len(order):
            rng.shuffle(order)
            cursor = 0
        queries, groups, targets = sample(order[cursor : cursor + opts.batch])
        cursor += opts.batch
        errors = [((scale * m - torch.tensor(t)) ** 2).mean() for m, t in zip(margins(queries, groups), targets)]
        loss = torch.stack(errors).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        loss_value = float(loss.detach())
        if step % max(1, opts.steps // 20) == 0:
            took = time.perf_counter() - started
            print(
                f"step {step}/{opts.steps} loss {loss_value:.4f} {took / step:.2f} s/step", file=sys.stderr, flush=True
            )
    model.eval()
    model.max_seq_length = 256
    model.save(str(out))
    return {"steps": opts.steps, "scale": round(scale, 4), "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="an `adapt` run's folder (its graded.jsonl)")
    parser.add_argument("index", type=Path, help="the index that run graded against")
    parser.add_argument("beir", type=Path, help="the collection's BEIR folder (queries, qrels)")
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--negatives", type=int, default=1)
    parser.add_argument("--passage-tokens", type=int, default=160)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--splits", default="train,test")
    parser.add_argument("--work", type=Path, default=None)
    opts = parser.parse_args()
    from indexer.reindex import reembedded_copy
    from searchcore.config import Config
    from searchcore.embedder import model_location
    from searchcore.evaluate import evaluate, load_beir
    from searchcore.search import Searcher
    from searchcore.store import Store

    work = opts.work or Path(tempfile.mkdtemp(prefix="adapt-passages-"))
    graded = [json.loads(line) for line in (opts.run / "graded.jsonl").read_text().splitlines() if line]
    graded = [g for g in graded if len(g["candidates"]) > 1 and g["candidates"][0][0] == g["positive"]]
    texts = passages_of(opts.index, {c for g in graded for c, _ in g["candidates"]})
    graded = [g for g in graded if g["positive"] in texts]
    with Store.open(opts.index, reader=True) as store:
        meta = store.meta()
    trained = train(graded, texts, str(model_location(meta.model)), work / "model", opts)
    began = time.perf_counter()
    copy = reembedded_copy(opts.index, work / "index", str(work / "model"), backend=meta.backend)
    reembed = round(time.perf_counter() - began, 1)
    print(f"both towers on {len(graded):,} graded queries; CPU {cpu_kind()}; training {trained['seconds']} s "
          f"({trained['steps']} steps of {opts.batch}), re-embedding {copy.embedded:,} chunks {reembed} s")  # fmt: skip
    print(f"{'split':<6} {'mode':<7} {'base':>7} {'adapted':>8} {'change':>8}")
    for split in opts.splits.split(","):
        queries, qrels = load_beir(opts.beir, split)
        scores = {}
        for name, folder in (("base", opts.index), ("adapted", work / "index")):
            with Searcher(Config(index_dir=folder)) as searcher:
                scores[name] = {m: evaluate(searcher, queries, qrels, mode=m).metrics["ndcg@10"] for m in MODES}
        for m in MODES:
            before, after = scores["base"][m], scores["adapted"][m]
            print(f"{split:<6} {m:<7} {before:7.4f} {after:8.4f} {after - before:+8.4f}")


if __name__ == "__main__":
    main()
