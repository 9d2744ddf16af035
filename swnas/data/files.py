"""Image-folder listings shared by the in-memory and the streamed readers: file types, Tiny ImageNet's val/."""

from __future__ import annotations

from pathlib import Path

from swnas.errors import InputError

__all__ = ["IMAGE_EXTENSIONS", "scan_annotated_val"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp", ".gif")


def scan_annotated_val(val_dir: Path, classes: list[str]) -> tuple[list[str], list[int]] | None:
    """Tiny ImageNet's val/: images/ plus val_annotations.txt (file <TAB> class ...) instead of class
    folders; ``None`` when ``val_dir`` has no annotation file. Shared by the in-memory and the
    streaming (:mod:`swnas.data.folder`) readers."""
    ann = val_dir / "val_annotations.txt"
    if not ann.is_file():
        return None
    index = {c: i for i, c in enumerate(classes)}
    paths, labels = [], []
    for line in ann.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) < 2:
            continue
        if parts[1] not in index:
            raise InputError(f"imagefolder: {str(ann)!r} names class {parts[1]!r} absent from train/")
        paths.append(str(val_dir / "images" / parts[0]))
        labels.append(index[parts[1]])
    if not paths:
        raise InputError(f"imagefolder: {str(ann)!r} lists no images")
    return paths, labels
