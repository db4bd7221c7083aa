"""nltk's English Punkt sentence tokenizer data (`tokenizers/punkt_tab/english`), placed where nltk finds it offline.

lm-evaluation-harness's `ifeval` task counts sentences and words with `nltk.sent_tokenize` / `nltk.word_tokenize`,
which need the `punkt_tab` data, and at import it calls `nltk.download("punkt_tab")` when the data is missing — a
download from GitHub that the project's offline machines cannot make. nltk's data is not published on PyPI as such,
but the PyPI wheel of `llama-index-core` carries an unmodified copy of nltk's `punkt_tab` (with nltk's README) in
`llama_index/core/_static/nltk_cache/`. `fetch` takes that wheel from the package index with pip (`--no-deps`: the
package is never installed or imported), checks the four English files against the sha256 sums below, and writes
them with the README into `<root>/tokenizers/punkt_tab/english/` — by default `<sys.prefix>/nltk_data`, one of
the folders nltk searches, so a virtual environment carries its own copy and nothing needs `NLTK_DATA`.

`make install` runs `python -m gamealign.nltk_data` (a no-op once the data is there).
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .io import atomic_path

SOURCE = "llama-index-core==0.14.25"
PREFIX = "llama_index/core/_static/nltk_cache/tokenizers/punkt_tab/"
# sha256 of nltk's punkt_tab English files as that wheel carries them (recorded 2026-12-07)
SHA256 = {
    "english/abbrev_types.txt": "92a3e070f43d9b4c5534758ca40ad7343b04e7e29bfe0c2eb658a39445a4f779",
    "english/collocations.tab": "8e2da1225e4dd2cc9dba261ee231ccb134859e21b46006e7f472c5ee269af0cf",
    "english/ortho_context.tab": "4bbcca25ed3d3f06c02402abf8419b9f033b8adc06e7b482eca4e45f81a5dc4c",
    "english/sent_starters.txt": "f3f8535483e1dba487241b764945168123bca3209a9645e59acd1225dc76edac",
    "README": "d3251cae66a9359bd68c039e3a46172a05ca9df0b27dcdfa23ae594d68d27ec4",
}


def default_root() -> Path:
    return Path(sys.prefix) / "nltk_data"


def installed(root: Path | None = None) -> bool:
    """Whether the English punkt_tab files with the recorded sums are under `root` (default: where nltk finds them)."""
    if root is None:
        import nltk

        try:
            english = Path(nltk.data.find("tokenizers/punkt_tab/english/"))
        except LookupError:
            return False
    else:
        english = Path(root) / "tokenizers" / "punkt_tab" / "english"
    return all((english / name[len("english/"):]).is_file()
               and _sha256((english / name[len("english/"):]).read_bytes()) == digest
               for name, digest in SHA256.items() if name.startswith("english/"))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def extract(wheel: Path, root: Path) -> Path:
    """Write the English punkt_tab files of `wheel` under `root`, each checked against SHA256 first; returns the
    folder. Nothing is written unless every file is there and matches."""
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        data = {}
        for name, digest in SHA256.items():
            member = PREFIX + name
            if member not in names:
                raise FileNotFoundError(f"{wheel.name}: no {member} (the wheel no longer carries nltk's punkt_tab)")
            blob = zf.read(member)
            if _sha256(blob) != digest:
                raise ValueError(f"{wheel.name}: {member} has sha256 {_sha256(blob)}, not the recorded {digest}")
            data[name] = blob
    base = Path(root) / "tokenizers" / "punkt_tab"
    for name, blob in data.items():
        with atomic_path(base / name) as tmp:   # a reader never sees a half-written file
            tmp.write_bytes(blob)
    return base / "english"


def fetch(root: Path | None = None, wheel_dir: Path | None = None) -> Path:
    """Download SOURCE's wheel with pip (no dependencies, nothing installed) and extract the data under `root`."""
    root = Path(root) if root else default_root()
    if installed(root):
        return root / "tokenizers" / "punkt_tab" / "english"
    with tempfile.TemporaryDirectory(prefix="gamealign-punkt-") as tmp:
        where = Path(wheel_dir) if wheel_dir else Path(tmp)
        wheels = sorted(where.glob("llama_index_core-*.whl"))
        if not wheels:
            cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
                   SOURCE, "-d", str(where)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            wheels = sorted(where.glob("llama_index_core-*.whl"))
            if done.returncode != 0 or not wheels:
                raise RuntimeError(f"could not download {SOURCE} for nltk's punkt_tab data ({' '.join(cmd)}):\n"
                                   f"{done.stderr.strip()[-2000:]}")
        return extract(wheels[-1], root)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m gamealign.nltk_data", description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", help="nltk data folder (default: <sys.prefix>/nltk_data, which nltk searches)")
    ap.add_argument("--wheel-dir", help="a folder that already holds the llama_index_core wheel (no download)")
    a = ap.parse_args(argv)
    print(f"nltk punkt_tab (English): {fetch(a.root, a.wheel_dir)}")


if __name__ == "__main__":
    main()
