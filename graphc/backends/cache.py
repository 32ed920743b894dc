"""The on-disk module cache: generated source in a content-hashed directory.

Each module is a real `.py` file imported with importlib and registered in `sys.modules`,
which is what Numba's own `cache=True` needs to find its compiled code again in another
process (it keeps it in `__pycache__` beside the file). Files are written atomically, so
two processes compiling the same model at once both end up with the same complete file;
an entry whose source does not match its hash, or whose Numba cache cannot be read, is
rebuilt rather than trusted.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType

ENV = "GRAPHC_CACHE_DIR"


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """Where modules go: `override`, else $GRAPHC_CACHE_DIR, else the user cache dir."""
    if override is not None:
        return Path(override)
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    import platformdirs

    return Path(platformdirs.user_cache_dir("graphc", appauthor=False)) / "modules"


def safe_name(name: str, limit: int = 40) -> str:
    """A Python identifier derived from any model name (for files and module names)."""
    s = re.sub(r"\W+", "_", name.encode("ascii", "ignore").decode()).strip("_").lower()
    s = s[:limit] or "model"
    return s if not s[0].isdigit() else "m_" + s


def key_of(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:20]


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write via a temporary file in the same directory and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(source: str, name: str, directory: str | os.PathLike | None = None) -> ModuleType:
    """Import `source` as a module from the cache, writing it there first if needed.

    The source's hash names the module (`graphc_<name>_<hash>`), so a module is never
    stale: the hash covers the graph, the dtype and the versions the source records.
    """
    key = key_of(source)
    mod_name = f"graphc_{safe_name(name)}_{key}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    folder = cache_dir(directory) / mod_name
    path = folder / f"{mod_name}.py"
    try:
        current = path.read_text() if path.exists() else None
    except (OSError, UnicodeDecodeError):
        current = None
    if current != source:  # missing, or corrupted: write it again
        write_atomic(path, source)
        if current is not None:  # whatever was compiled from the bad file goes too
            shutil.rmtree(folder / "__pycache__", ignore_errors=True)
    try:
        return _import(mod_name, path)
    except Exception:  # e.g. Numba's cache of an eagerly compiled helper is unreadable
        shutil.rmtree(folder / "__pycache__", ignore_errors=True)
        return _import(mod_name, path)


def _import(mod_name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(mod_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[mod_name]
        raise
    return module


def forget(module: ModuleType) -> ModuleType:
    """Drop a module's Numba cache (it could not be read) and import it afresh."""
    path = Path(module.__file__ or "")
    shutil.rmtree(path.parent / "__pycache__", ignore_errors=True)
    sys.modules.pop(module.__name__, None)
    return _import(module.__name__, path)


def clear(directory: str | os.PathLike | None = None) -> int:
    """Delete every cached module; returns how many there were."""
    root = cache_dir(directory)
    if not root.is_dir():
        return 0
    entries = [p for p in root.iterdir() if p.is_dir() and p.name.startswith("graphc_")]
    for p in entries:
        shutil.rmtree(p, ignore_errors=True)
    return len(entries)
