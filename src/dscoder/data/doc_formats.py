"""How a repository document marks its files: the header before each file block, the text
before the first block, and the tokens a tokenizer must hold as single ids for it.

Three layouts, so that one corpus can feed (and be compared with) other code-model recipes:

- ``deepseek`` (Sec. 2.2): a comment line with the file's path, in the file's own comment
  syntax (``# a/b.py``), before each file; nothing before the first file; no extra tokens.
- ``starcoder2``: ``<repo_name>NAME`` once, then ``<file_sep>PATH\\n`` before each file's
  content, nothing between files (the separator token marks the boundary), as in the
  StarCoder2 paper's repository-context format.
- ``qwen2.5``: ``<|repo_name|>NAME\\n`` once, then ``<|file_sep|>PATH\\n`` before each file, a
  newline after a file that lacks one (Qwen2.5-Coder's repository-level format).

In every format the header is part of the file's span (schemas.FILE_SPAN ``header_chars``),
and the repository line is the document's prefix (text before the first span), which
``repo_blocks.drop_files`` keeps. A file whose content spells a separator token is not
escaped: like the recipes that use these formats, we accept the ambiguity.
"""

from __future__ import annotations

from dataclasses import dataclass

from dscoder.data.languages import path_header

DOC_FORMATS = ("deepseek", "starcoder2", "qwen2.5")
DEFAULT_DOC_FORMAT = "deepseek"


@dataclass(frozen=True)
class DocFormat:
    name: str
    repo_token: str | None
    """Token that opens the document, followed by the repository's name (None: no prefix)."""
    repo_line_end: str
    """What follows the repository's name."""
    file_token: str | None
    """Token that opens each file header, followed by its path (None: a path comment)."""
    gap_after_unterminated: str
    """Added after a file whose content does not end in a newline (outside its span)."""

    @property
    def tokens(self) -> tuple[str, ...]:
        """Tokens a tokenizer must encode as one id each for documents in this format."""
        return tuple(t for t in (self.repo_token, self.file_token) if t)

    def prefix(self, repo_name: str) -> str:
        return "" if self.repo_token is None else f"{self.repo_token}{repo_name}{self.repo_line_end}"

    def header(self, path: str, language: str) -> str:
        return path_header(path, language) if self.file_token is None else f"{self.file_token}{path}\n"

    def gap(self, content: str) -> str:
        return self.gap_after_unterminated if content and not content.endswith("\n") else ""


FORMATS: dict[str, DocFormat] = {
    "deepseek": DocFormat("deepseek", None, "", None, "\n"),
    "starcoder2": DocFormat("starcoder2", "<repo_name>", "", "<file_sep>", ""),
    "qwen2.5": DocFormat("qwen2.5", "<|repo_name|>", "\n", "<|file_sep|>", "\n"),
}


def get_format(name: str) -> DocFormat:
    if name not in FORMATS:
        raise ValueError(f"doc_format must be one of {DOC_FORMATS}, got {name!r}")
    return FORMATS[name]


def format_tokens(name: str) -> tuple[str, ...]:
    """The tokens the tokenizer must add for documents in format `name` (none for deepseek)."""
    return get_format(name).tokens
