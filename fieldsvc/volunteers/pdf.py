"""Print a certificate's HTML to PDF with WeasyPrint (kept apart: it needs Pango on the server)."""

from __future__ import annotations


class PdfUnavailable(RuntimeError):
    """WeasyPrint or the system libraries it loads (Pango) are missing."""


def html_to_pdf(html: str, stylesheets: list[str]) -> bytes:
    """Render HTML with local stylesheet files to PDF; raise PdfUnavailable where WeasyPrint
    cannot load. The HTML itself loads nothing: no request leaves the server to print it."""
    try:
        from weasyprint import CSS, HTML
    except (ImportError, OSError) as missing:
        raise PdfUnavailable() from missing
    return HTML(string=html).write_pdf(stylesheets=[CSS(filename=path) for path in stylesheets])
