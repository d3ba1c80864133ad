"""Errors, and the record of conversions that decides which of them a caller allows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class ImageFileError(ValueError):
    """The file is unreadable, too large, or refused; the message is one line naming the file."""


class ImageTooLargeError(ImageFileError):
    """The header declares more pixels, or a longer side, than allowed; nothing was decoded."""


class LossyConversionError(ImageFileError):
    """Reading the file as 8-bit sRGB would change information, and the caller refuses that."""


@dataclass(frozen=True)
class Note:
    """One conversion made while reading: what the file has (`what`) and what was done."""

    what: str
    done: str
    lossy: bool

    def __str__(self) -> str:
        return f"{self.what} {self.done}"


class Notes:
    """The conversions of one read, in order; a lossy one raises unless `allow_lossy`."""

    def __init__(self, path: Path, allow_lossy: bool) -> None:
        self.path = path
        self.allow_lossy = allow_lossy
        self.items: list[Note] = []

    def add(self, note: Note) -> None:
        """Record `note`; raises LossyConversionError for a lossy note when lossy is refused."""
        if note.lossy and not self.allow_lossy:
            raise LossyConversionError(
                f"{self.path}: {note.what} cannot be read exactly as 8-bit sRGB; refused"
            )
        self.items.append(note)

    def lossless(self, what: str, done: str) -> None:
        self.add(Note(what, done, lossy=False))

    def lossy(self, what: str, done: str) -> None:
        self.add(Note(what, done, lossy=True))

    def refuse(self, problem: str) -> ImageFileError:
        """The error for metadata that is refused whatever the policy (raise it)."""
        return ImageFileError(f"{self.path}: {problem}")
