"""The page every certification PDF is drawn on (fpdf2), made by docpdf.Doc: kept
apart so that fpdf2 is imported only when a document is drawn."""

from __future__ import annotations

from collections.abc import Sequence

from fpdf import FPDF

from certification.docpdf import BAR, GREY, TARGET_LINE, plain


class Page(FPDF):
    """An A4 page with the issuer in the header and the page number in the footer."""

    def __init__(self, issuer: str, title: str) -> None:
        super().__init__(format="A4")
        self.issuer, self.doc_title = plain(issuer), plain(title)
        self.set_auto_page_break(auto=True, margin=18)
        self.set_title(self.doc_title)
        self.set_author(self.issuer)
        self.set_creator("Vigía")
        self.add_page()

    def header(self) -> None:
        self.set_font("Helvetica", "", 8)
        self.set_text_color(*GREY)
        self.cell(0, 5, f"{self.issuer} - {self.doc_title}", new_x="LMARGIN", new_y="NEXT")
        self.set_text_color(0, 0, 0)
        self.ln(2)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", "", 8)
        self.set_text_color(*GREY)
        self.cell(0, 5, f"Página {self.page_no()}", align="C")
        self.set_text_color(0, 0, 0)

    def title_line(self, text: str, size: int = 16) -> None:
        self.set_font("Helvetica", "B", size)
        self.multi_cell(0, size * 0.5, plain(text), new_x="LMARGIN", new_y="NEXT")
        self.ln(2)

    def section(self, text: str) -> None:
        self.ln(3)
        self.set_font("Helvetica", "B", 12)
        self.cell(0, 7, plain(text), new_x="LMARGIN", new_y="NEXT")
        self.set_font("Helvetica", "", 10)

    def field(self, label: str, value: object, width: float = 48) -> None:
        """'Label: value' with the value wrapping under itself."""
        self.set_font("Helvetica", "B", 10)
        self.cell(width, 6, plain(label))
        self.set_font("Helvetica", "", 10)
        self.multi_cell(0, 6, plain(value), new_x="LMARGIN", new_y="NEXT")

    def text_block(self, text: str, size: int = 10) -> None:
        self.set_font("Helvetica", "", size)
        self.multi_cell(0, size * 0.5, plain(text), new_x="LMARGIN", new_y="NEXT")

    def grid(
        self, head: Sequence[str], rows: Sequence[Sequence[object]], widths: Sequence[int]
    ) -> None:
        """A table whose cells wrap; the header repeats on each new page."""
        self.set_font("Helvetica", "", 8)
        with self.table(col_widths=tuple(widths), line_height=4, first_row_as_headings=True) as t:
            t.row([plain(h) for h in head])
            for r in rows:
                t.row([plain(v) for v in r])

    def bars(
        self,
        items: Sequence[tuple[str, float, str]],
        target: float | None = None,
        label_width: float = 55,
    ) -> None:
        """Horizontal bars, one per (label, share 0..1, figure text), as vector
        rectangles; `target` draws the line every bar is measured against."""
        full = self.epw - label_width - 28
        self.set_font("Helvetica", "", 9)
        top = self.get_y()
        for label, share, figure in items:
            if self.will_page_break(7):
                self.add_page()
                top = self.get_y()
            y = self.get_y()
            self.cell(label_width, 6, plain(label))
            self.set_fill_color(230, 230, 230)
            self.rect(self.l_margin + label_width, y + 1, full, 4, style="F")
            self.set_fill_color(*BAR)
            width = max(0.0, min(1.0, share)) * full
            if width > 0:
                self.rect(self.l_margin + label_width, y + 1, width, 4, style="F")
            self.set_x(self.l_margin + label_width + full + 2)
            self.cell(26, 6, plain(figure), new_x="LMARGIN", new_y="NEXT")
        if target is not None:
            x = self.l_margin + label_width + target * full
            self.set_draw_color(*TARGET_LINE)
            self.set_line_width(0.5)
            self.line(x, top, x, self.get_y())
            self.set_draw_color(0, 0, 0)
            self.set_line_width(0.2)

    def columns(
        self, items: Sequence[tuple[str, float]], target: float | None, height: float = 45
    ) -> None:
        """Vertical bars (a series over time), shares 0..1, labels under each bar."""
        if self.will_page_break(height + 12):
            self.add_page()
        top, n = self.get_y(), max(len(items), 1)
        step = self.epw / n
        self.set_fill_color(*BAR)
        self.set_font("Helvetica", "", 6)
        for i, (label, share) in enumerate(items):
            h = max(0.0, min(1.0, share)) * height
            x = self.l_margin + i * step
            if h > 0:
                self.rect(x + step * 0.15, top + height - h, step * 0.7, h, style="F")
            self.set_xy(x, top + height + 1)
            self.cell(step, 4, plain(label), align="C")
        self.set_draw_color(0, 0, 0)
        self.line(self.l_margin, top + height, self.l_margin + self.epw, top + height)
        if target is not None:
            y = top + height - target * height
            self.set_draw_color(*TARGET_LINE)
            self.set_line_width(0.5)
            self.line(self.l_margin, y, self.l_margin + self.epw, y)
            self.set_draw_color(0, 0, 0)
            self.set_line_width(0.2)
        self.set_xy(self.l_margin, top + height + 7)

    def finish(self) -> bytes:
        return bytes(self.output())
