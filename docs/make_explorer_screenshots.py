"""Write the README's explorer pictures from the README's own commands (a documentation script, not a test).

Runs the ``saliencelab run`` and ``saliencelab report --run`` lines of the
README's "Explore a data set run" block in a fresh folder (or reuses
``--store``), serves the store with ``sl.explore`` and photographs two views in
Debian's Chromium through Playwright:

- ``docs/explorer.png``: the 7s sorted by integrated gradients' deletion AUC,
  the watermarked ones (bottom-right square) among them;
- ``docs/explorer-spray.png``: SpRAy's clusters of the 7s, the watermark cluster's members shown.

Run: ``python docs/make_explorer_screenshots.py [--store digits-run.zarr] [--out docs]``.
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

import saliencelab as sl

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Explore a data set run"
VIEWPORT = {"width": 1100, "height": 760}
CLIP = {"width": 1100, "height": 1180}
"""The pictures' size: the top of each page (the SpRAy page's clusters included)."""


def readme_commands() -> list[list[str]]:
    """The ``saliencelab run`` and ``saliencelab report`` commands of the README's explorer block, as argv lists."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)```", text[text.index(SECTION) :], re.S)
    if block is None:
        raise RuntimeError(f"the README's {SECTION!r} section has no bash block")
    lines = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    return [shlex.split(line) for line in lines if line.startswith(("saliencelab run ", "saliencelab report "))]


def build_store(folder: Path) -> Path:
    """Run the README's commands in ``folder``; the store they write."""
    store = None
    for argv in readme_commands():
        executable = shutil.which(argv[0])
        if executable is None:
            raise RuntimeError("the saliencelab command is not on PATH: pip install -e '.[runs,explore]'")
        subprocess.run([executable, *argv[1:]], cwd=folder, check=True)
        if argv[1] == "run":
            store = folder / argv[argv.index("--store") + 1]
    if store is None:
        raise RuntimeError("the README's explorer block has no saliencelab run command")
    return store


def photograph(store: Path, out: Path) -> list[Path]:
    """Serve ``store`` and save the two views in ``out``."""
    running = sl.explore(str(store), quiet=True)
    written = []
    try:
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=shutil.which("chromium"))
            page = browser.new_page(viewport=VIEWPORT)
            for route, name, action in (
                ("#/?label=7&sort=integrated_gradients.deletion_auc&method=integrated_gradients", "explorer", None),
                ("#/spray/7", "explorer-spray", "#clusters .cluster:last-child h3"),
            ):
                page.goto(running.url + route)
                page.wait_for_selector(f'body[data-ready="{route}"]', state="attached")
                if action is not None:
                    page.click(action)
                page.wait_for_load_state("networkidle")
                page.wait_for_function("() => Array.from(document.images).every(i => i.complete)")
                page.evaluate("() => window.scrollTo(0, 0)")
                path = out / f"{name}.png"
                page.screenshot(path=path, full_page=True, clip={"x": 0, "y": 0, **CLIP})
                written.append(path)
            browser.close()
    finally:
        running.stop()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=None, help="A store the README's commands wrote already.")
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="Where the pictures go.")
    args = parser.parse_args()
    store = args.store if args.store is not None else build_store(Path(tempfile.mkdtemp(prefix="explorer-docs-")))
    for path in photograph(store, args.out):
        print(f"{path}: {path.stat().st_size / 1024:.0f} kB")


if __name__ == "__main__":
    main()
