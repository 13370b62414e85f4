"""Each document's language, detected at indexing: ``lang`` in its metadata.

py3langid (langid.py's model, 97 languages, shipped in its wheel; numpy only) reads the
title and the first ``SAMPLE`` characters of the text. Chosen against lingua (a 96 MB
wheel) on real text by ``bench/languages.py``: the message catalogues of 15 languages
under /usr/share/locale (40 samples of about 60 words each) and 400 documents of each of
the four English collections in the shared evaluation data. ``detect`` named every
catalogue sample right and gave none of the 1,600 English documents another language, at
0.65 ms a document; lingua 2.1 (low-accuracy mode) also named every sample right but gave
32 English documents another language (8 of them one with a stemmer) at 4.1 ms.

A language is recorded only when the text holds enough letters to tell and the model is
sure of it (``CONFIDENCE``); otherwise the document has no ``lang`` and its keywords are
stemmed as English ones are. A ``lang`` a record already carries (a JSONL field) is kept,
as its primary code ("pt_BR" is "pt"); one that is no language code ("python") is left as
it is and nothing is detected.
"""

from __future__ import annotations

import functools
import re

__all__ = ["detect", "describe", "CONFIDENCE", "SAMPLE"]

SAMPLE = 3000  # characters of the text read
MIN_LETTERS = 24  # fewer letters than this: no language recorded
CONFIDENCE = 0.8  # the model's normalised probability of its best language
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
_CODE = re.compile(r"^[a-z]{2,3}$")


@functools.cache
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect(text: str, title: str | None = None) -> str | None:
    """The ISO 639-1 code of the language ``text`` is written in, or None when it cannot
    be told (too little text, or no language sure enough)."""
    sample = f"{title}\n{text[:SAMPLE]}" if title else text[:SAMPLE]
    if len(_LETTER.findall(sample)) < MIN_LETTERS:
        return None
    lang, probability = _identifier().classify(sample)
    return str(lang) if probability >= CONFIDENCE else None


def describe(metadata: dict, text: str, title: str | None) -> str | None:
    """Set ``metadata["lang"]`` (a record's own, in lower case, or the detected one) and
    return it."""
    if "lang" in metadata:  # the record's own field: a language code is kept, anything else left alone
        given = metadata["lang"]
        primary = given.strip().lower().replace("_", "-").split("-")[0] if isinstance(given, str) else ""
        if not _CODE.match(primary):  # "python", 3: not a language; the record's value stays as it is
            return None
        metadata["lang"] = primary  # "de", "de-DE", "pt_BR": the language's own code
        return primary
    found = detect(text, title)
    if found is not None:
        metadata["lang"] = found
    return found
