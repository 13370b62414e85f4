"""OCR quality and speed: rapidocr (PP-OCR on ONNX Runtime) against tesseract, on images
this script renders itself.

50 images (several fonts and sizes, rotated by up to 5 degrees either way, light noise,
half of them on a photo-like background) and 10 image-only PDF pages, each with known
text. For each engine: word recall (the share of the source's words found in what OCR
read), images per second on this machine, and retrieval: a query of 3-5 words taken from
each file, against an index of all 60 built with that engine (the default embedder,
hybrid search), and how often the right file is in the top 3.

    .venv/bin/python bench/ocr.py [--engines rapidocr,tesseract] [--images 50] [--pages 10]
    .venv/bin/python bench/ocr.py --real DIR --images 60 --engines rapidocr-once,rapidocr,tesseract
    .venv/bin/python bench/ocr.py --real DIR --images 0 --engines none --pool-pages 40 --rounds 3

With --real DIR, the set is real scanned images with known text instead (the ICDAR 2019
SROIE receipts: NAME.jpg with NAME.csv, a box and its text per line), kept outside the
project; the queries are 3-5 words of each receipt's known text. --pool-pages N makes the
first N of them one image-only PDF and reads it in the indexing process and through the
OCR pool (``searchcore.ocr_pool``), with the shipped fp32 models and with the int8
ones (``searchcore.ocr_int8``), alternating, and prints pages per second and word recall
of each.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

# This folder holds http.py; it must not shadow the standard library's.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WORDS = """harbour lighthouse keeper lantern signal channel breakwater tide anchor vessel cargo
island cliff storm weather winter summer report committee minutes budget fuel engine
repair schedule meeting council survey coast beacon ferry passenger ticket station
bridge river valley garden library museum school hospital market bakery kitchen
recipe bread butter cheese orange purple silver golden quickly slowly quietly
tomorrow yesterday morning evening northern southern eastern western ancient modern
""".split()
FONT_DIRS = ("/usr/share/fonts/truetype", "/usr/share/fonts")


def fonts() -> list[str]:
    """Sans, serif and monospaced faces of the two families Debian ships, regular and bold."""
    wanted = re.compile(r"(DejaVu|Liberation)(Sans|Serif|Mono|SansMono)?-?(Regular|Bold)?\.ttf$")
    found = sorted({str(p) for d in FONT_DIRS for p in Path(d).glob("**/*.ttf") if wanted.search(p.name)})
    return found[:12] or sorted(str(p) for d in FONT_DIRS for p in Path(d).glob("**/*.ttf"))[:8]


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 7))).capitalize()


def render(lines: list[str], font_path: str, size: int, rng: random.Random, photo: bool, canvas=(1100, 420)):
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    font = ImageFont.truetype(font_path, size)
    if photo:  # a soft gradient with blurred blotches, like a photo behind the text
        base = np.linspace(170, 250, canvas[0])[None, :, None] * np.ones((canvas[1], 1, 3))
        blotches = np.random.default_rng(rng.randint(0, 2**31)).normal(0, 30, (canvas[1] // 20, canvas[0] // 20, 3))
        small = Image.fromarray(np.clip(128 + blotches, 0, 255).astype("uint8")).resize(canvas)
        image = Image.blend(Image.fromarray(base.astype("uint8")), small.filter(ImageFilter.GaussianBlur(8)), 0.35)
    else:
        image = Image.new("RGB", canvas, "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((40, 40 + int(i * size * 1.5)), line, fill=(20, 20, 20), font=font)
    image = image.rotate(rng.uniform(-5, 5), expand=True, fillcolor="white", resample=Image.BICUBIC)
    noise = np.random.default_rng(rng.randint(0, 2**31)).normal(0, 8, (image.height, image.width, 3))
    return Image.fromarray(np.clip(np.asarray(image, dtype=float) + noise, 0, 255).astype("uint8"))


def make_set(folder: Path, images: int, pages: int, seed: int = 7) -> dict[str, str]:
    """The files, and the text each holds."""
    rng = random.Random(seed)
    faces = fonts()
    truth = {}
    for i in range(images):
        lines = [sentence(rng) for _ in range(rng.randint(2, 4))]
        image = render(lines, faces[i % len(faces)], rng.choice([22, 26, 30, 36, 44]), rng, photo=i % 2 == 1)
        name = f"image-{i:02d}.png"
        image.save(folder / name)
        truth[name] = "\n".join(lines)
    for i in range(pages):
        lines = [sentence(rng) for _ in range(10)]
        page = render(lines, faces[i % len(faces)], 34, rng, photo=False, canvas=(1240, 1754))
        name = f"scan-{i:02d}.pdf"
        page.save(folder / name, resolution=150)
        truth[name] = "\n".join(lines)
    return truth


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def recall(source: str, read: str) -> float:
    wanted, found = words(source), set(words(read))
    return sum(w in found for w in wanted) / max(len(wanted), 1)


def engine_named(name: str):
    """An engine by name: ``rapidocr`` (the default, as `searchctl index` runs it: the
    int8 detector and recogniser), ``rapidocr-fp32`` (the models rapidocr-onnxruntime ships),
    ``rapidocr-once`` (one reading, no retries, stray letters not joined: how it read
    before those were added), ``rapidocr-raw`` (without re-spacing words), ``rapidocr-batchN``
    (the recogniser reading N text lines at once), ``tesseract``."""
    from searchcore.embedder import default_cache_dir
    from searchcore.ocr import RapidOcr, make_ocr
    from searchcore.ocr_int8 import int8_models

    if name == "rapidocr-fp32":
        return RapidOcr()
    int8 = int8_models(default_cache_dir())
    if name == "rapidocr-raw":
        return RapidOcr(respace_words=False, int8=int8)
    if name == "rapidocr-once":
        return RapidOcr(retry=False, strays=False, int8=int8)
    if name == "rapidocr":
        return RapidOcr(int8=int8)
    if name.startswith("rapidocr-batch") and name[len("rapidocr-batch") :].isdigit():
        return RapidOcr(int8=int8, rec_batch=int(name[len("rapidocr-batch") :]))
    return make_ocr(name)


def real_set(folder: Path, limit: int) -> dict[str, str]:
    """Scanned images with known text, as the ICDAR 2019 SROIE receipts come: NAME.jpg and
    NAME.csv, each line of which is a box's eight coordinates and then its text."""
    truth = {}
    for image in sorted(folder.glob("*.jpg"))[:limit]:
        boxes = image.with_suffix(".csv")
        if boxes.exists():
            lines = boxes.read_text(encoding="utf-8", errors="replace").splitlines()
            truth[image.name] = "\n".join(line.split(",", 8)[8] for line in lines if line.count(",") >= 8)
    return truth


def measure(engine: str, folder: Path, truth: dict[str, str], work: Path) -> dict:
    """Recall and speed of reading each file; top-3 retrieval over what was read (the
    text indexed as it is, by the default embedder, hybrid)."""
    from indexer.build import build_index
    from indexer.readers import Skip, Vision, read_document
    from searchcore.config import Config
    from searchcore.options import SearchOptions
    from searchcore.search import Searcher

    ocr = engine_named(engine)
    vision = Vision(make_ocr=lambda: ocr)
    ocr.read(render(["warm up"], fonts()[0], 30, random.Random(0), photo=False))
    scores, seconds, skipped = {}, {}, 0
    texts = work / f"read-{engine}"
    texts.mkdir()
    for name in truth:
        data = (folder / name).read_bytes()
        started = time.perf_counter()
        try:
            text = " ".join(d.text for d in read_document(folder / name, data, vision).documents)
        except Skip:  # nothing read at all
            text, skipped = "", skipped + 1
        seconds[name] = time.perf_counter() - started
        scores[name] = recall(truth[name], text)
        (texts / f"{name}.txt").write_text(text or "(nothing read)")
    config = Config(index_dir=work / f"idx-{engine}")
    build_index(config, texts)
    rng = random.Random(11)
    queries = {name: " ".join(rng.sample(words(text), rng.randint(3, 5))) for name, text in truth.items()}
    with Searcher(config) as searcher:
        found = searcher.run(list(queries.values()), SearchOptions(k=3, per_doc=True))
    top3 = {name: any(Path(h.path).name == f"{name}.txt" for h in hits) for name, hits in zip(queries, found)}
    images = [n for n in truth if not n.endswith(".pdf")]
    pages = [n for n in truth if n.endswith(".pdf")]
    return {
        "engine": engine,
        "recall_images": sum(scores[n] for n in images) / len(images),
        "recall_pages": sum(scores[n] for n in pages) / max(len(pages), 1),
        "top3": sum(top3.values()) / len(top3),
        "images_per_s": len(images) / sum(seconds[n] for n in images),
        "pages_per_s": len(pages) / max(sum(seconds[n] for n in pages), 1e-9),
        "worst": sorted(scores.items(), key=lambda kv: kv[1])[:3],
        "nothing": skipped,
    }


def pool_speed(images: list[Path], truth: list[str], rounds: int) -> dict:
    """Pages per second reading one image-only PDF of ``images`` (a page each), alternating
    ``rounds`` times: in the indexing process with the shipped fp32 models (ONNX
    Runtime's threads: how a run read scans before the pool and the int8 models),
    through the OCR pool (a process per core, one thread each) with the fp32 models,
    and through the pool with the int8 ones (how `searchctl index` reads them now); with
    each one's word recall against the receipts' known text."""
    import io

    from PIL import Image

    from indexer.readers import Vision
    from indexer.readers.pdf import read_pdf
    from searchcore.embedder import default_cache_dir
    from searchcore.ocr import make_ocr
    from searchcore.ocr_int8 import Int8Models, int8_models
    from searchcore.ocr_pool import OcrPool, pool_workers

    pages = [Image.open(path).convert("RGB") for path in images]
    buffer = io.BytesIO()
    pages[0].save(buffer, "PDF", save_all=True, append_images=pages[1:], resolution=150)
    data = buffer.getvalue()
    workers = pool_workers() or 2
    int8 = int8_models(default_cache_dir())  # built before the timing, as a second run finds it
    ways: dict[str, tuple[Int8Models | None, bool]] = {
        "in process, fp32": (None, False),
        f"pool of {workers}, fp32": (None, True),
        f"pool of {workers}, int8": (int8, True),
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    texts: dict[str, set[str]] = {name: set() for name in ways}
    for _ in range(rounds):
        for name, (models, pooled) in ways.items():
            pool = OcrPool("rapidocr", workers, lambda m=models: m) if pooled else None  # type: ignore[misc]
            vision = Vision(
                make_ocr=lambda m=models: make_ocr("rapidocr", int8=m),  # type: ignore[misc]
                make_pool=(lambda p=pool: p) if pool else None,
            )
            started = time.perf_counter()  # the pool's start (processes, models) counts
            texts[name].add(read_pdf(data, [], vision)[0].text)
            times[name].append(time.perf_counter() - started)
            vision.close()
    median = {name: sorted(t)[len(t) // 2] for name, t in times.items()}
    known = "\n".join(truth)
    return {
        "pages": len(pages),
        "seconds": median,
        "recall": {name: recall(known, next(iter(found))) for name, found in texts.items()},
        "same_text_each_round": all(len(found) == 1 for found in texts.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--engines", default="rapidocr,rapidocr-raw,tesseract", help="rapidocr-raw: without re-spacing words"
    )
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--pages", type=int, default=10)
    parser.add_argument(
        "--real",
        type=Path,
        default=None,
        metavar="DIR",
        help="measure on real scans with known text instead (SROIE layout: NAME.jpg + NAME.csv boxes)",
    )
    parser.add_argument(
        "--pool-pages",
        type=int,
        default=0,
        metavar="N",
        help="with --real: also read the first N scans as one image-only PDF, in process and through the OCR pool",
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of --pool-pages")
    args = parser.parse_args()
    engines = [e for e in args.engines.split(",") if e not in ("", "none")]
    engines = [e for e in engines if e != "tesseract" or shutil.which("tesseract")]
    with tempfile.TemporaryDirectory() as tmp:
        if args.real is not None:
            folder, truth = args.real, real_set(args.real, args.images)
            print(f"{len(truth)} real scans from {folder}; engines: {', '.join(engines)}")
        else:
            folder = Path(tmp) / "set"
            folder.mkdir()
            truth = make_set(folder, args.images, args.pages)
            print(f"{args.images} images and {args.pages} image-only PDF pages rendered; engines: {', '.join(engines)}")
        print(f"{'engine':<12} {'recall img':>10} {'recall pdf':>10} {'top-3':>7} {'img/s':>7} {'pages/s':>8}")
        for engine in engines if truth else []:
            r = measure(engine, folder, truth, Path(tmp))
            print(
                f"{r['engine']:<12} {r['recall_images']:>10.3f} {r['recall_pages']:>10.3f} {r['top3']:>7.1%} "
                f"{r['images_per_s']:>7.2f} {r['pages_per_s']:>8.2f}  read nothing: {r['nothing']}; worst: "
                + ", ".join(f"{n} {s:.2f}" for n, s in r["worst"])
            )
        if args.real is not None and args.pool_pages:
            scans = sorted(args.real.glob("*.jpg"))[: args.pool_pages]
            truth_pages = list(real_set(args.real, args.pool_pages).values())
            r = pool_speed(scans, truth_pages, args.rounds)
            first = next(iter(r["seconds"].values()))
            print(f"one {r['pages']}-page scanned PDF, median of {args.rounds} alternating rounds:")
            for name, sec in r["seconds"].items():
                print(
                    f"  {name:<18} {sec:6.1f} s  {r['pages'] / sec:.2f} pages/s  {first / sec:.2f}x  "
                    f"word recall {r['recall'][name]:.3f}"
                )
            print(f"  same text in every round: {r['same_text_each_round']}")


if __name__ == "__main__":
    main()
