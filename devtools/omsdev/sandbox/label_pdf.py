"""A small, valid one-page PDF shipping label, built by hand so the sandbox needs no PDF library."""

from __future__ import annotations

LABEL_WIDTH_PT, LABEL_HEIGHT_PT = 288, 432  # 4 x 6 inch, the usual thermal label


def _pdf_text(value: str) -> str:
    """PDF literal string: Helvetica's standard encoding covers Latin-1; escape the delimiters."""
    safe = value.encode("latin-1", "replace").decode("latin-1")
    return safe.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def label_pdf(title: str, lines: list[str]) -> bytes:
    """Title in large type, then one line per entry; a border so it looks like a label when printed."""
    text = [f"BT /F1 20 Tf 24 {LABEL_HEIGHT_PT - 48} Td ({_pdf_text(title)}) Tj ET"]
    y = LABEL_HEIGHT_PT - 84
    for line in lines:
        text.append(f"BT /F1 11 Tf 24 {y} Td ({_pdf_text(line)}) Tj ET")
        y -= 18
    border = f"1 w 12 12 {LABEL_WIDTH_PT - 24} {LABEL_HEIGHT_PT - 24} re S"
    content = "\n".join([border, *text]).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {LABEL_WIDTH_PT} {LABEL_HEIGHT_PT}] "
            "/Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>"
        ).encode(),
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")  # binary comment marks the file as binary
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref_at)
    return bytes(out)
