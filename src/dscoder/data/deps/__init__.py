"""File-to-file dependencies inside a repository (Sec. 2.2), for Algorithm 1 (repo_order.py).

Two extraction modes share one resolver per language:
- `regex`: the paper's method, line-anchored patterns per language;
- `tree-sitter`: parse the file, query its import/include/using/require/use nodes.

Layout: `rules.py` is the per-language table (adding a language is adding an entry),
`refs.py` turns captured text into references, `extract.py` runs the two finders,
`resolve.py` maps references to files, `edges.py` puts them together for a repository.
"""

from dscoder.data.deps.edges import FileDeps, file_deps, repo_deps
from dscoder.data.deps.extract import MODES, Extraction, extract_refs
from dscoder.data.deps.refs import Ref
from dscoder.data.deps.resolve import RepoIndex
from dscoder.data.deps.rules import RULES, SUPPORTED_LANGUAGES, LanguageRules

__all__ = [
    "MODES", "RULES", "SUPPORTED_LANGUAGES", "Extraction", "FileDeps", "LanguageRules", "Ref",
    "RepoIndex", "extract_refs", "file_deps", "repo_deps",
]
