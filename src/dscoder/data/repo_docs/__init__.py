"""The repo_docs step (Sec. 2.2): repository-level documents, files in dependency order.

Layout: `document.py` orders a repository's files (Algorithm 1 and the default SCC order) and
concatenates them (`build_repo_doc`, settings `RepoDocsSettings`, params section `repo_docs`);
`step.py` is the streaming step the `repo_docs` stage runs, splitting repositories too large
for one document. The other modules find the file-to-file dependencies the order follows
(this package's exports below).

Two extraction modes share one resolver per language:
- `regex`: the paper's method, line-anchored patterns per language;
- `tree-sitter`: parse the file, query its import/include/using/require/use nodes.

Dependencies: `rules.py` is the per-language table (adding a language is adding an entry),
`refs.py` turns captured text into references, `extract.py` runs the two finders,
`resolve.py` maps references to files, `edges.py` puts them together for a repository.
"""

from dscoder.data.repo_docs.edges import FileDeps, file_deps, repo_deps
from dscoder.data.repo_docs.extract import MODES, Extraction, extract_refs
from dscoder.data.repo_docs.refs import Ref
from dscoder.data.repo_docs.resolve import RepoIndex
from dscoder.data.repo_docs.rules import RULES, SUPPORTED_LANGUAGES, LanguageRules

__all__ = [
    "MODES", "RULES", "SUPPORTED_LANGUAGES", "Extraction", "FileDeps", "LanguageRules", "Ref",
    "RepoIndex", "extract_refs", "file_deps", "repo_deps",
]
