"""A tiny, real-layout corpus built inside a test: a few repositories in several languages,
with files that trip each filter rule, for stage and pipeline tests."""

from __future__ import annotations

from pathlib import Path

FILES = {
    "alpha/pkg/__init__.py": "from .core import run\n",
    "alpha/pkg/core.py": "from .util import helper\n\n\ndef run(x):\n    return helper(x) + 1\n",
    "alpha/pkg/util.py": "def helper(x):\n    \"\"\"Double x.\"\"\"\n    return 2 * x\n",
    "alpha/pkg/table.py": "".join(f"T{i} = [{i * 7}, {i * 13}, {i * 17}]\n" for i in range(60)),  # low alpha share
    "alpha/README.md": "# alpha\n\nA tiny package used by the tests.\n",
    "beta/src/main.c": '#include "util.h"\n\nint main(void) { return util(); }\n',
    "beta/src/util.h": "int util(void);\n",
    "beta/src/util.c": '#include "util.h"\n\nint util(void) { return 0; }\n',
    "beta/src/broken.c": "int main( { return 0 \n",
    "beta/data/config.json": '{\n  "name": "beta",\n  "version": "1.0.0",\n  "files": ["src/main.c"]\n}\n',
    "gamma/index.js": "const lib = require('./lib');\nmodule.exports = function main() { return lib.value; };\n",
    "gamma/lib.js": "exports.value = 42;\n",
    "gamma/min.js": "var a=" + "1+" * 700 + "1;\n",  # minified: one very long line
    "gamma/page.html": "<html><body>\n" + "<p>Visible words for readers of this page.</p>\n" * 5 + "</body></html>\n",
    "gamma/bin.dat.js": None,  # binary, written below
}


def make_corpus(root: Path) -> list[dict]:
    """Write the corpus under `root`; return `dirs`-style source specs for it."""
    for rel, text in FILES.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if text is None:
            p.write_bytes(b"\x00\x01\x02binary")
        else:
            p.write_text(text)
    return [{"type": "dirs", "path": str(root)}]
