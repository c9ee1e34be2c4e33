"""Small, real PDFs for the interop tests, written by hand (no imaging or PDF library is guaranteed on
CI): pages of text in Helvetica with a true text layer, "scanned" pages that hold only a JPEG
(made by libvips' `vips text`, which tools/setup.sh installs with libvips-tools), and a PDF locked
with a user password (the standard security handler, revision 2: 40-bit RC4)."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

PAGE_W, PAGE_H = 612, 792  # US Letter, points


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def assemble(objects: list[bytes], trailer: bytes = b"") -> bytes:
    """A PDF of numbered objects (1 = catalog) with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, trailer, xref)
    return bytes(out)


def _stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def text_pdf(pages: list[list[str]]) -> bytes:
    """One page per list of lines, each line in Helvetica 12 pt (a first line in 18 pt)."""
    n = len(pages)
    # 1 catalog, 2 pages, 3 font, then per page: page object, content stream.
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(n)).encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, n),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    for i, lines in enumerate(pages):
        ops = ["BT", "/F1 18 Tf", f"72 {PAGE_H - 72} Td", "20 TL"]
        for k, line in enumerate(lines):
            if k == 1:
                ops.append("/F1 12 Tf")
            ops.append(f"({_escape(line)}) Tj T*")
        ops.append("ET")
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>"
                       % (PAGE_W, PAGE_H, 5 + 2 * i))
        objects.append(_stream("\n".join(ops).encode("latin-1")))
    return assemble(objects)


def text_image(text: str, workdir: Path, name: str, dpi: int = 300) -> tuple[Path, int, int]:
    """A grey JPEG of `text` rendered by libvips (black on white), its path, width and height."""
    png = workdir / f"{name}.png"
    jpg = workdir / f"{name}.jpg"
    subprocess.run(["vips", "text", str(png), text, "--dpi", str(dpi)], check=True, capture_output=True)
    # vips text draws white text on black: invert, then pad with a white margin OCR likes.
    inverted = workdir / f"{name}-inv.png"
    subprocess.run(["vips", "invert", str(png), str(inverted)], check=True, capture_output=True)
    width = int(subprocess.run(["vipsheader", "-f", "width", str(inverted)], check=True, capture_output=True, text=True).stdout)
    height = int(subprocess.run(["vipsheader", "-f", "height", str(inverted)], check=True, capture_output=True, text=True).stdout)
    margin = 60
    subprocess.run(["vips", "embed", str(inverted), str(jpg) + "[Q=90]", str(margin), str(margin),
                    str(width + 2 * margin), str(height + 2 * margin), "--extend", "white"], check=True, capture_output=True)
    return jpg, width + 2 * margin, height + 2 * margin


def scanned_pdf(jpeg: bytes, width: int, height: int) -> bytes:
    """One page holding only the grey JPEG, scaled to the page width: no text layer at all."""
    scale = (PAGE_W - 72) / width
    w, h = width * scale, height * scale
    content = f"q {w:.2f} 0 0 {h:.2f} 36 {PAGE_H - 72 - h:.2f} cm /Im1 Do Q".encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources << /XObject << /Im1 5 0 R >> >> /Contents 4 0 R >>"
               % (PAGE_W, PAGE_H),
               _stream(content),
               _stream(jpeg, b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /DCTDecode "
                       % (width, height))]
    return assemble(objects)


# The 32-byte padding of the PDF standard security handler (PDF 1.7, 7.6.3.3).
_PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")


def _rc4(key: bytes, data: bytes) -> bytes:
    s, j = list(range(256)), 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) % 256
        s[i], s[j] = s[j], s[i]
    out, i, j = bytearray(), 0, 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + s[i]) % 256
        s[i], s[j] = s[j], s[i]
        out.append(byte ^ s[(s[i] + s[j]) % 256])
    return bytes(out)


def encrypted_pdf(user_password: bytes = b"secret") -> bytes:
    """A one-page PDF that opens only with `user_password` (revision 2, 40-bit RC4: algorithms 3.2-3.4).
    Its content is left unencrypted: a reader refuses it at the password check, before any content."""
    doc_id = hashlib.md5(b"prism-index-test").digest()
    permissions = -4
    padded = (user_password + _PAD)[:32]
    owner = _rc4(hashlib.md5((b"owner" + _PAD)[:32]).digest()[:5], padded)
    key = hashlib.md5(padded + owner + permissions.to_bytes(4, "little", signed=True) + doc_id).digest()[:5]
    user = _rc4(key, _PAD)
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] >>" % (PAGE_W, PAGE_H),
               b"<< /Filter /Standard /V 1 /R 2 /O <%s> /U <%s> /P %d >>" % (owner.hex().encode(), user.hex().encode(), permissions)]
    return assemble(objects, b"/Encrypt 4 0 R /ID [<%s> <%s>] " % (doc_id.hex().encode(), doc_id.hex().encode()))
