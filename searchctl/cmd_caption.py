"""``searchctl caption``: describe images in words with an image-to-text model."""

from __future__ import annotations

import json
from pathlib import Path

import click

__all__ = ["caption_cmd"]


@click.command("caption")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="IMAGE...")
@click.option(
    "--model",
    "model",
    metavar="NAME_OR_PATH",
    required=True,
    help="An image-to-text model: a local folder or a name in the Hugging Face cache (e.g. microsoft/git-base-coco).",
)
@click.option(
    "--plot",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also draw each image with its caption as the title into this PNG.",
)
@click.option("--json", "as_json", is_flag=True, help="Print [{path, caption}] as JSON.")
def caption_cmd(images, model, plot, as_json):
    """Print a caption for each image: what an image-to-text model sees in it (the
    captions `index --caption-model` adds to image documents)."""
    from searchcore.captions import Captioner
    from searchcore.images import NotAnImage, open_image

    pictures = []
    for path in images:
        if not path.is_file():
            raise click.UsageError(f"no such image: {path}")
        try:
            pictures.append(open_image(path.read_bytes())[1])
        except NotAnImage as exc:
            raise click.UsageError(f"{path} cannot be read as an image: {exc}") from None
    captions = Captioner(model).caption(pictures)
    if plot is not None:
        from .plots import captioned_images

        captioned_images(pictures, captions, [p.name for p in images], plot)
    if as_json:
        click.echo(json.dumps([{"path": str(p), "caption": c} for p, c in zip(images, captions)], indent=2))
    else:
        for path, text in zip(images, captions):
            click.echo(f"{path}: {text}")
    if plot is not None:
        click.echo(f"drew {len(pictures)} captioned image{'s' if len(pictures) != 1 else ''} into {plot}", err=True)
