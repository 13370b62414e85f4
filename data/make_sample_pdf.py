"""Write data/sample/fire-safety-at-home.pdf, a small text PDF, with no dependencies.

Run from the repository root: python data/make_sample_pdf.py
"""

from pathlib import Path

TITLE = "Fire safety at home"
LINES = [
    "Fire safety at home",
    "",
    "Fit a smoke alarm on every floor and test it once a month by pressing the button.",
    "Replace the batteries every year, or buy alarms with ten-year sealed batteries.",
    "",
    "Plan an escape route from every room and agree on a meeting point outside.",
    "Keep keys to doors and windows where everyone can find them in the dark.",
    "",
    "Never leave cooking unattended, and keep tea towels away from the hob.",
    "If a pan of oil catches fire, turn off the heat and cover it with a lid or a",
    "damp cloth. Never throw water on burning oil.",
    "",
    "If there is a fire, get everyone out, stay out and call the fire brigade.",
]


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def build_pdf() -> bytes:
    content = ["BT", "/F1 12 Tf", "15 TL", "72 740 Td"]
    for line in LINES:
        content.append(f"({_escape(line)}) Tj T*")
    content.append("ET")
    stream = "\n".join(content).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        f"<< /Title ({_escape(TITLE)}) /Producer (searchctl sample data) >>".encode("latin-1"),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


if __name__ == "__main__":
    target = Path(__file__).resolve().parent / "sample" / "fire-safety-at-home.pdf"
    target.write_bytes(build_pdf())
    print(f"wrote {target}")
