"""Captions: what an image shows, in words, by an image-to-text model.

The GIT recipe of transformers: ``AutoProcessor`` turns images into ``pixel_values``,
``AutoModelForCausalLM.generate`` writes the caption (beam search, four beams, at most
``MAX_CAPTION_TOKENS`` tokens) and the processor decodes it. Any such model works from a
local folder or the Hugging Face cache (microsoft/git-base-coco, a BLIP model through
its own auto class); nothing is downloaded at run time.
"""

from __future__ import annotations

from pathlib import Path

from .errors import SearchctlError

__all__ = ["Captioner", "MAX_CAPTION_TOKENS"]

MAX_CAPTION_TOKENS = 50


def _local(model: str) -> str:
    """``model`` as a local folder, or its snapshot in the Hugging Face cache."""
    if Path(model).expanduser().is_dir():
        return str(Path(model).expanduser())
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(model, local_files_only=True)
    except Exception as exc:
        raise SearchctlError(
            f"caption model {model!r} not found: it is neither a local folder nor in the Hugging Face cache, "
            "and nothing is downloaded at run time (see the README: Captions)"
        ) from exc


class Captioner:
    """An image-to-text model: ``caption(images) -> list[str]``."""

    def __init__(self, model: str, device: str = "cpu"):
        self.name = model
        self.device = device
        folder = _local(model)
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoProcessor

            self.processor = AutoProcessor.from_pretrained(folder)
            try:
                self.model = AutoModelForCausalLM.from_pretrained(folder)
            except ValueError:  # BLIP and its kind are image-to-text models of their own class
                from transformers import AutoModelForVision2Seq

                self.model = AutoModelForVision2Seq.from_pretrained(folder)
        except (OSError, ValueError, KeyError) as exc:
            raise SearchctlError(f"{model!r} is not an image-to-text model transformers can load ({exc})") from None
        self.model.to(device).eval()
        self._torch = torch

    def caption(self, images: list) -> list[str]:
        pixel_values = self.processor(images=[image.convert("RGB") for image in images], return_tensors="pt")
        with self._torch.inference_mode():
            generated = self.model.generate(
                pixel_values=pixel_values.pixel_values.to(self.device),
                max_length=MAX_CAPTION_TOKENS,
                num_beams=4,
                early_stopping=True,
            )
        return [text.strip() for text in self.processor.batch_decode(generated, skip_special_tokens=True)]
