"""A report as markdown sections with figures: rendered inline (base64, for the Dagster UI)
or as a folder (``report.md`` + ``figures/*.png``, for a file users keep and share)."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from bio_assets.core.io.atomic import atomic_write


@dataclass(frozen=True)
class Figure:
    name: str  # file stem, unique within the report
    png: bytes
    caption: str


def _cell(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        text = "n/a" if value != value else f"{value:.4g}"
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(headers: list[str], rows: list[list[object]]) -> str:
    """A pipe table; floats to 4 significant digits, NaN and None as n/a, pipes escaped."""
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def thumbnail(png: bytes, max_width: int) -> bytes:
    """``png`` scaled down to at most ``max_width`` pixels wide (aspect kept), as a PNG."""
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        if image.width > max_width:
            image = image.resize((max_width, max(1, round(image.height * max_width / image.width))), Image.LANCZOS)
        out = io.BytesIO()
        image.save(out, format="PNG", optimize=True)
    return out.getvalue()


@dataclass
class Report:
    title: str
    sections: list[tuple[str, list[str | Figure]]] = field(default_factory=list)

    def add(self, title: str, *blocks: str | Figure) -> None:
        self.sections.append((title, list(blocks)))

    @property
    def figures(self) -> list[Figure]:
        return [b for _, blocks in self.sections for b in blocks if isinstance(b, Figure)]

    def _render(self, link) -> str:
        parts = [f"# {self.title}"]
        for title, blocks in self.sections:
            parts.append(f"## {title}")
            parts += [f"**{b.caption}**\n\n![{b.caption}]({link(b)})" if isinstance(b, Figure) else b for b in blocks]
        return "\n\n".join(parts) + "\n"

    def inline_markdown(self) -> str:
        return self._render(lambda f: f"data:image/png;base64,{base64.b64encode(f.png).decode()}")

    def preview_markdown(self, folder: Path, max_width: int = 360) -> str:
        """The report with each figure as a small inline preview (at most ``max_width`` pixels wide)
        captioned with the path of its full-size file under ``folder`` (see ``write``)."""
        parts = [f"# {self.title}"]
        for title, blocks in self.sections:
            parts.append(f"## {title}")
            for block in blocks:
                if isinstance(block, Figure):
                    uri = f"data:image/png;base64,{base64.b64encode(thumbnail(block.png, max_width)).decode()}"
                    full = Path(folder) / "figures" / f"{block.name}.png"
                    parts.append(f"**{block.caption}**\n\n![{block.caption}]({uri})\n\nfull size: `{full}`")
                else:
                    parts.append(block)
        return "\n\n".join(parts) + "\n"

    def write(self, folder: Path) -> Path:
        """``folder/report.md`` with its figures under ``folder/figures/``, each file replaced atomically."""
        names = [f.name for f in self.figures]
        if len(names) != len(set(names)):
            raise ValueError(f"figure names repeat: {sorted(n for n in names if names.count(n) > 1)}")
        for figure in self.figures:
            atomic_write(
                Path(folder) / "figures" / f"{figure.name}.png", lambda handle, png=figure.png: handle.write(png)
            )
        path = Path(folder) / "report.md"
        text = self._render(lambda f: f"figures/{f.name}.png")
        atomic_write(path, lambda handle: handle.write(text.encode()))
        return path
