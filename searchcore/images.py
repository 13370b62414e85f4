"""Decoding an image file safely: the first frame, bounded before any pixel is read.

More than ``MAX_PIXELS`` pixels is a decompression bomb and is refused, as are a
truncated or corrupt image and bytes that are no image at all; each with a short reason
(``NotAnImage``), the same for the indexer (which skips the file with it) and for the
daemon (which draws thumbnails).
"""

from __future__ import annotations

import io
import warnings
from datetime import datetime

from .errors import SearchctlError

__all__ = ["MAX_PIXELS", "NotAnImage", "open_image", "image_metadata"]

# About a 60-megapixel photo; a bigger one is most likely a decompression bomb.
MAX_PIXELS = 64_000_000


class NotAnImage(SearchctlError):
    """The bytes cannot be decoded as an image; ``str()`` is the short reason."""


def open_image(data: bytes):
    """(the image as opened, its first frame decoded as RGB); ``NotAnImage`` when it cannot be."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise NotAnImage("empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise NotAnImage("decompression bomb") from None
    except UnidentifiedImageError:
        raise NotAnImage("not an image") from None
    except (OSError, SyntaxError, ValueError):
        raise NotAnImage("broken image") from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise NotAnImage("decompression bomb")
    if width < 1 or height < 1:
        raise NotAnImage("broken image")
    try:
        image.seek(0)  # an animation: the first frame only
        image.load()
        return image, image.convert("RGB")
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise NotAnImage("broken image") from exc


def image_metadata(image) -> dict:
    meta: dict = {"width": image.width, "height": image.height}
    if image.format:
        meta["format"] = image.format.lower()
    try:
        exif = image.getexif()
    except Exception:  # a damaged EXIF block costs the metadata, not the image
        return meta
    taken = exif.get_ifd(0x8769).get(36867) or exif.get(306)  # DateTimeOriginal, else DateTime
    if isinstance(taken, str):
        try:
            meta["taken"] = datetime.strptime(taken.strip("\x00 "), "%Y:%m:%d %H:%M:%S").isoformat()
        except ValueError:
            pass
    camera = " ".join(str(exif.get(tag, "")).strip("\x00 ") for tag in (271, 272)).strip()  # Make, Model
    if camera:
        meta["camera"] = camera
    return meta
