"""Changes that spoil one file of the example workspace, for the catalogue's cases."""

from __future__ import annotations

from pathlib import Path

from tests.errors.catalogue import Change


def edit(path: str, old: str, new: str) -> Change:
    """Replace the first `old` in the workspace file `path` with `new`."""

    def change(ws: Path) -> None:
        file = ws / path
        text = file.read_text(encoding="utf-8")
        assert old in text, f"{old!r} is not in {path}"
        file.write_text(text.replace(old, new, 1), encoding="utf-8")

    return change


def append(path: str, data: str | bytes) -> Change:
    """Add text (or raw bytes) at the end of the workspace file `path`."""

    def change(ws: Path) -> None:
        file = ws / path
        file.write_bytes(file.read_bytes() + (data if isinstance(data, bytes) else data.encode("utf-8")))

    return change


def write(path: str, text: str) -> Change:
    """Create (or replace) the workspace file `path`."""

    def change(ws: Path) -> None:
        (ws / path).write_text(text, encoding="utf-8")

    return change


def rename(path: str, new: str) -> Change:
    """Rename the workspace file `path` to `new`."""

    def change(ws: Path) -> None:
        (ws / path).rename(ws / new)

    return change


def both(*changes: Change) -> Change:
    """Several changes, in order."""

    def change(ws: Path) -> None:
        for each in changes:
            each(ws)

    return change


def drop_lines(path: str, containing: str) -> Change:
    """Remove every line of the workspace file `path` that contains `containing`."""

    def change(ws: Path) -> None:
        file = ws / path
        lines = file.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines if containing not in line]
        assert len(kept) < len(lines), f"{containing!r} is not in {path}"
        file.write_text("".join(kept), encoding="utf-8")

    return change


def remove(path: str) -> Change:
    """Delete the workspace file `path`."""

    def change(ws: Path) -> None:
        (ws / path).unlink()

    return change
