"""Language detection as indexing does it, on real text: how often it is right, how often an
English document is taken for a language whose stemmer would then reduce its keywords, and
how long it takes.

    python bench/languages.py [DATA] [--locales /usr/share/locale] [--per-language 40]
    python bench/languages.py --lingua SIDE_ENV_SITE_PACKAGES   # also lingua, installed apart

Two kinds of text nobody here wrote:
  - the translated message catalogues (.mo) of free software under --locales (Debian ships
    them for every installed package): for each language, samples of about 60 words made
    of its translated messages; a language with fewer than 10 samples is left out;
  - 400 documents of each collection in DATA (../shared/eval-data), all in English.

For each detector: right answers per language, English documents given another language
(and how many of those a Snowball stemmer would then stem: the ones that change keyword
ranking), and milliseconds per document. lingua (a 96 MB wheel) is never installed into the
project: ``pip install --target DIR lingua-language-detector`` and pass DIR.
"""

from __future__ import annotations

import sys

sys.path = [p for p in sys.path if p not in ("", __file__.rsplit("/", 1)[0])]

import argparse
import gettext
import json
import random
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from indexer.languages import detect  # noqa: E402
from searchcore.store.stemming import SNOWBALL  # noqa: E402

LANGUAGES = ["de", "fr", "es", "it", "nl", "pt", "sv", "da", "fi", "pl", "ru", "tr", "cs", "hu", "ro"]


def catalogue_samples(locales: Path, lang: str, n: int, words: int = 60) -> list[str]:
    messages = []
    for mo in sorted((locales / lang / "LC_MESSAGES").glob("*.mo")):
        try:
            with mo.open("rb") as f:
                catalog = gettext.GNUTranslations(f)._catalog  # type: ignore[attr-defined]
        except Exception:
            continue
        messages += [
            v.replace("\n", " ") for k, v in catalog.items() if k and isinstance(v, str) and len(v.split()) >= 3
        ]
    random.Random(0).shuffle(messages)
    samples, current = [], []
    for message in messages:
        current.append(message)
        if sum(len(m.split()) for m in current) >= words:
            samples.append(" ".join(current))
            current = []
        if len(samples) >= n:
            break
    return samples


def english_documents(data: Path, limit: int = 400) -> dict[str, list[str]]:
    out = {}
    for corpus in sorted(data.glob("*/corpus.jsonl")):
        rows = [json.loads(line) for line in corpus.open(encoding="utf-8")]
        random.Random(0).shuffle(rows)
        out[corpus.parent.name] = [f"{r.get('title') or ''}\n{r.get('text') or ''}".strip() for r in rows[:limit]]
    return out


def lingua_detector(site: str):
    sys.path.insert(0, site)
    from lingua import LanguageDetectorBuilder

    built = LanguageDetectorBuilder.from_all_languages().with_low_accuracy_mode().build()

    def run(text: str) -> str | None:
        found = built.detect_language_of(text)
        return found.iso_code_639_1.name.lower() if found else None

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, nargs="?", default=ROOT.parent / "shared" / "eval-data")
    parser.add_argument("--locales", type=Path, default=Path("/usr/share/locale"))
    parser.add_argument("--per-language", type=int, default=40)
    parser.add_argument("--lingua", default=None, help="a folder lingua-language-detector is installed into")
    args = parser.parse_args()
    detectors = {"py3langid (searchctl)": detect}
    if args.lingua:
        detectors["lingua 2 (low accuracy)"] = lingua_detector(args.lingua)
    sets = {lang: catalogue_samples(args.locales, lang, args.per_language) for lang in LANGUAGES}
    sets = {lang: texts for lang, texts in sets.items() if len(texts) >= 10}
    english = english_documents(args.data) if args.data.is_dir() else {}
    names = ", ".join(english) or "no collection"
    print(f"{sum(map(len, sets.values()))} catalogue samples in {len(sets)} languages; "
          f"{sum(map(len, english.values()))} English documents of {names}")  # fmt: skip
    for name, run in detectors.items():
        run("warm up the model")
        right = total = 0
        started = time.perf_counter()
        wrong: dict[str, int] = {}
        for lang, texts in sets.items():
            for text in texts:
                found = run(text)
                total += 1
                right += found == lang
                if found != lang:
                    wrong[f"{lang}->{found}"] = wrong.get(f"{lang}->{found}", 0) + 1
        other = stemmed = count = 0
        for texts in english.values():
            for text in texts:
                found = run(text)
                count += 1
                if found not in ("en", None):
                    other += 1
                    stemmed += found in SNOWBALL
        seconds = time.perf_counter() - started
        print(f"{name}: catalogues {right}/{total} right{f' (wrong: {wrong})' if wrong else ''}; "
              f"English documents given another language {other}/{count}, of them stemmed as it {stemmed}; "
              f"{1000 * seconds / max(1, total + count):.2f} ms/document")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
