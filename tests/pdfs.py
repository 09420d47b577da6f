"""PDFs the tests write themselves, byte by byte: text pages, scanned pages, both, and bad ones.

A page is either lines of text in Helvetica (one of the PDF standard fonts, which every reader
has, so the file needs no font data) or a JPEG drawn over the whole page, as a scanner makes it.
Written by hand rather than by a library so that each test says exactly what its file holds:
a text layer whose characters map to private-use code points, an /Encrypt dictionary, a page
count of zero.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from tests import render

A4 = (595, 842)  # points (1/72 in)
FONT_SIZE = 24
LEADING = 36

# A ToUnicode map sending every printable code to the private-use area: what a subset font with
# a broken or deliberately scrambled map extracts as. The glyphs drawn are still Helvetica's.
_PRIVATE_USE_CMAP = b"""/CIDInit /ProcSet findresource begin 12 dict begin begincmap
/CMapName /Scrambled def /CMapType 2 def
1 begincodespacerange <00> <FF> endcodespacerange
1 beginbfrange <20> <7E> <E020> endbfrange
endcmap CMapName currentdict /CMap defineresource pop end end"""


@dataclass(frozen=True)
class TextPage:
    lines: list[str]
    scrambled: bool = False  # the text layer maps to private-use code points: garbage


@dataclass(frozen=True)
class ScanPage:
    lines: list[str]
    pixels: tuple[int, int] = (850, 1200)  # the scan's size: about 100 dpi on A4
    turned: int = 0  # degrees clockwise the sheet was turned in the scanner (size turns too)


def scan_image(lines: list[str], pixels: tuple[int, int] = (850, 1200)) -> Image.Image:
    """A page image as a scanner would make it: the lines large, from the top left."""
    return render.page(lines, size=pixels, font_size=40, origin=(60, 80)).image


def pdf(
    pages: list[TextPage | ScanPage],
    *,
    encrypted: bool = False,
    size: tuple[int, int] = A4,
) -> bytes:
    """A PDF of pages of `size` points; `encrypted` adds a Standard security handler with a
    user password."""
    objects: list[bytes] = [b"", b""]  # 1: catalog, 2: page tree, filled in at the end

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    cmap = add(_stream(b"", _PRIVATE_USE_CMAP))
    scrambled = add(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /ToUnicode %d 0 R >>" % cmap
    )
    kids = []
    for page in pages:
        if isinstance(page, TextPage):
            shown = b" ".join(b"(%s) Tj T*" % _escape(line) for line in page.lines)
            operators = b"BT /F1 %d Tf 72 %d Td %d TL %s ET" % (
                FONT_SIZE,
                size[1] - 72,
                LEADING,
                shown,
            )
            resources = b"<< /Font << /F1 %d 0 R >> >>" % (scrambled if page.scrambled else font)
        else:
            scan = scan_image(page.lines, page.pixels).rotate(-page.turned, expand=True)
            jpeg = render.encode(scan, "JPEG", quality=90)
            width, height = scan.size
            image = add(
                _stream(
                    b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB "
                    b"/BitsPerComponent 8 /Filter /DCTDecode" % (width, height),
                    jpeg,
                )
            )
            operators = b"q %d 0 0 %d 0 0 cm /Scan Do Q" % size
            resources = b"<< /XObject << /Scan %d 0 R >> >>" % image
        contents = add(_stream(b"", operators))
        kids.append(
            add(
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources %s "
                b"/Contents %d 0 R >>" % (*size, resources, contents)
            )
        )
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % kid for kid in kids),
        len(kids),
    )
    trailer = b"/Size %d /Root 1 0 R" % (len(objects) + 1)
    if encrypted:
        # RC4 40-bit (the oldest handler). /U is what the empty user password would have to
        # produce; random bytes mean "a password is needed", so no reader can open the file.
        security = add(
            b"<< /Filter /Standard /V 1 /R 2 /P -4 /O <%s> /U <%s> >>" % (b"5a" * 32, b"c3" * 32)
        )
        trailer += b" /Encrypt %d 0 R /ID [<%s> <%s>]" % (security, b"ab" * 16, b"ab" * 16)
    return _file(objects, trailer)


def multipage_tiff(pages: list[list[str]], size: tuple[int, int] = (900, 300)) -> bytes:
    """A multi-page TIFF (as fax and document scanners write), one page of lines per frame."""
    images = [render.page(lines, size=size).image for lines in pages]
    out = io.BytesIO()
    images[0].save(out, "TIFF", save_all=True, append_images=images[1:], compression="tiff_lzw")
    return out.getvalue()


def _stream(dictionary: bytes, data: bytes) -> bytes:
    return b"<< %s /Length %d >>\nstream\n%s\nendstream" % (dictionary, len(data), data)


def _escape(text: str) -> bytes:
    escaped = text.encode("latin-1").replace(b"\\", b"\\\\")
    return escaped.replace(b"(", b"\\(").replace(b")", b"\\)")


def _file(objects: list[bytes], trailer: bytes) -> bytes:
    """The objects, a cross-reference table of their byte offsets, and the trailer."""
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.writelines(b"%010d 00000 n \n" % offset for offset in offsets)
    out.write(b"trailer\n<< %s >>\nstartxref\n%d\n%%%%EOF\n" % (trailer, xref))
    return out.getvalue()


def scans_outlasting_a_second(label: str, count: int) -> bytes:
    """A PDF of `count` small scanned pages (150 x 100 pt, 625 x 417 px at 300 dpi), page n
    reading `{label} n of {count}` and two more lines: each a full OCR, a tenth of a second on
    a fast CPU, well under a second on a loaded one. So the document outlasts a one-second
    deadline on any machine while every attempt still reads a page (text-layer pages take
    milliseconds: hundreds fit in a second on a quiet machine)."""
    filler = ["the quick brown fox", "jumps over 0123"]
    pages = [
        ScanPage([f"{label} {n} of {count}", *filler], pixels=(600, 400))
        for n in range(1, count + 1)
    ]
    return pdf(pages, size=(150, 100))
