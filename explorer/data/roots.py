"""Where the web app may read data from, and folder scans that stay inside a folder.

Owns: the one decision whether a typed data folder may be used (resolve_data_root), the list
of allowed data roots, and walking an image folder without following links out of it.

Allowed data roots (for the web app; the CLI's --data-root is the machine owner's and is not
restricted):
  CNN_EXPLORER_DATA_ROOTS   folders separated by os.pathsep (":" on Linux), set by the server's
                            owner; when unset: <repo>/data and ~/.cache/cnn-explorer/data.
  The default data folder (default_data_root(): $CNN_EXPLORER_DATA or ~/.cache/cnn-explorer/data,
  where torchvision sets are downloaded) is always allowed: it is what an empty field means.
A typed folder is resolved first (`~`, `..` and every symlink), so a link inside a root that
points at /etc is outside.

Scans (scan_image_folder) never follow a link to a folder (so a link loop cannot hang them),
follow a link to a file only when it resolves inside the scanned folder, and stop with a
DataError after MAX_SCAN_ENTRIES entries or MAX_SCAN_SECONDS seconds.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from explorer.errors import DataError

ENV_ROOTS = "CNN_EXPLORER_DATA_ROOTS"
PROJECT_DATA = Path(__file__).resolve().parents[2] / "data"      # <repo>/data
MAX_PATH_CHARS = 4096            # PATH_MAX on Linux (limits.h); a longer text is not a path
MAX_SCAN_ENTRIES = 200_000       # files and folders one scan may visit (ImageNet's train set is 1.28 M)
MAX_SCAN_SECONDS = 10.0          # wall-clock seconds one scan may take (a slow network share, a huge tree)
MAX_SCAN_DEPTH = 16              # folder levels below a class folder


def default_data_root() -> Path:
    """$CNN_EXPLORER_DATA if set, else ~/.cache/cnn-explorer/data."""
    env = os.environ.get("CNN_EXPLORER_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "cnn-explorer" / "data"


def allowed_roots() -> list[Path]:
    """The resolved folders the app may read data under (see the module docstring)."""
    text = os.environ.get(ENV_ROOTS, "")
    listed = [Path(p).expanduser() for p in text.split(os.pathsep) if p.strip()]
    if not listed:
        listed = [PROJECT_DATA, Path.home() / ".cache" / "cnn-explorer" / "data"]
    out: list[Path] = []
    for p in [default_data_root(), *listed]:
        resolved = p.resolve()
        if resolved not in out:
            out.append(resolved)
    return out


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def resolve_data_root(text: str | os.PathLike, roots: list[Path] | None = None) -> Path:
    """The resolved folder a person typed, when it lies under one of `roots` (default
    allowed_roots()); DataError naming the allowed roots otherwise. Whether it exists is the
    loader's business (a torchvision set may be downloaded into a new folder)."""
    raw = os.fspath(text) if isinstance(text, os.PathLike) else text
    if not isinstance(raw, str) or not raw.strip():
        raise DataError("The data folder is empty: type a folder, or leave the field empty for the default.")
    raw = raw.strip()
    if len(raw) > MAX_PATH_CHARS or "\x00" in raw:
        raise DataError(f"'{raw[:60]}...' is not a folder path (too long, or it holds a NUL character).")
    allowed = [Path(r).resolve() for r in (roots if roots is not None else allowed_roots())]
    try:
        resolved = Path(raw).expanduser().resolve()
    except (OSError, RuntimeError, ValueError) as e:   # a symlink loop, an unknown ~user
        raise DataError(f"The data folder '{raw}' cannot be resolved ({e}).") from None
    if any(_inside(resolved, root) for root in allowed):
        return resolved
    shown = "; ".join(str(r) for r in allowed) or "(none)"
    via = "" if str(resolved) == raw else f" (it resolves to {resolved})"
    raise DataError(f"The data folder '{raw}'{via} is outside the folders this server reads data from: {shown}. "
                    f"Put the data in a folder under one of them, or ask the server's owner to add its folder "
                    f"to {ENV_ROOTS}.")


# --- scanning an image folder -----------------------------------------------------------------------

class _Budget:
    """Counts visited entries and elapsed time of one scan; DataError when either runs out."""

    def __init__(self, root: Path, max_entries: int, max_seconds: float):
        self.root, self.max_entries, self.max_seconds = root, max_entries, max_seconds
        self.entries = 0
        self.deadline = time.monotonic() + max_seconds

    def tick(self) -> None:
        self.entries += 1
        if self.entries > self.max_entries:
            raise DataError(f"The image folder {self.root} holds more than {self.max_entries:,} files and "
                            f"folders, more than one scan reads. Point the data folder at a smaller folder (a "
                            f"subset of the images, one sub-folder per class).")
        if self.entries % 256 == 0 and time.monotonic() > self.deadline:
            raise DataError(f"Scanning the image folder {self.root} took more than {self.max_seconds:g} s "
                            f"(after {self.entries:,} entries). Use a smaller folder, on a local disk.")


def _file_target(entry: os.DirEntry, root: Path) -> str | None:
    """The path to read for a directory entry that is a regular file (a link only when it
    resolves to a regular file inside root); None for anything else."""
    try:
        if entry.is_symlink():
            target = Path(entry.path).resolve()
            return str(target) if _inside(target, root) and target.is_file() else None
        return entry.path if entry.is_file(follow_symlinks=False) else None
    except (OSError, RuntimeError):
        return None


def _walk_class(folder: str, root: Path, extensions: tuple[str, ...], budget: _Budget) -> list[str]:
    """Image files under one class folder, sorted, without entering linked folders."""
    found: list[str] = []
    stack = [(folder, 0)]
    while stack:
        current, depth = stack.pop()
        try:
            entries = sorted(os.scandir(current), key=lambda e: e.name)
        except OSError:
            continue                     # unreadable sub-folder: skipped like an unreadable image
        for entry in entries:
            budget.tick()
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                if depth < MAX_SCAN_DEPTH:
                    stack.append((entry.path, depth + 1))
            elif entry.name.lower().endswith(extensions):
                target = _file_target(entry, root)
                if target is not None:
                    found.append(target)
    return sorted(found)


def scan_image_folder(root: Path, extensions: tuple[str, ...], max_entries: int | None = None,
                      max_seconds: float | None = None) -> tuple[list[str], list[list[str]]]:
    """(class names, image paths per class) of root/CLASS/**/IMAGE.

    Class folders are root's non-hidden sub-folders that are real folders (not links).
    `extensions` are lowercase, with the dot. DataError when root is not a folder or a limit
    (MAX_SCAN_ENTRIES, MAX_SCAN_SECONDS by default) is reached."""
    root = Path(root).resolve()
    budget = _Budget(root, MAX_SCAN_ENTRIES if max_entries is None else max_entries,
                     MAX_SCAN_SECONDS if max_seconds is None else max_seconds)
    try:
        if not stat.S_ISDIR(os.stat(root).st_mode):
            raise NotADirectoryError(str(root))
        top = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as e:
        raise DataError(f"The image folder {root} cannot be read ({e.strerror or e}).") from None
    names, files = [], []
    for entry in top:
        budget.tick()
        if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
            continue
        names.append(entry.name)
        files.append(_walk_class(entry.path, root, extensions, budget))
    return names, files


__all__ = ["ENV_ROOTS", "PROJECT_DATA", "MAX_SCAN_ENTRIES", "MAX_SCAN_SECONDS", "allowed_roots",
           "resolve_data_root", "scan_image_folder"]
