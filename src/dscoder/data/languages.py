"""Language detection by file extension and file name, and each language's comment syntax.

Covers the 87 programming languages of the DeepSeek-Coder corpus (Sec. 2, Table 1), plus a few
languages the installed default corpus holds (Cython, restructured text, INI/config). One
table, one entry per language: adding a language is adding a row.

`comment` is the (open, close) pair used for the path header that precedes each file in a
repository document (Sec. 2.2); `None` marks a language with no comment syntax (JSON),
which gets a neutral marker instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath


@dataclass(frozen=True)
class Language:
    id: str
    name: str
    extensions: tuple[str, ...] = ()
    filenames: tuple[str, ...] = ()
    comment: tuple[str, str] | None = ("#", "")
    in_paper: bool = True  # one of the paper's 87 languages (Table 1)


H = ("#", "")
C = ("//", "")
D = ("--", "")
SEMI = (";", "")
PCT = ("%", "")
XML = ("<!--", " -->")
ML = ("(*", " *)")
BLOCK = ("/*", " */")

LANGUAGES: tuple[Language, ...] = (
    Language("ada", "Ada", (".adb", ".ads", ".ada"), comment=D),
    Language("agda", "Agda", (".agda",), comment=D),
    Language("alloy", "Alloy", (".als",), comment=C),
    Language("antlr", "ANTLR", (".g4",), comment=C),
    Language("applescript", "AppleScript", (".applescript", ".scpt"), comment=D),
    Language("assembly", "Assembly", (".asm", ".s", ".S", ".nasm"), comment=SEMI),
    Language("augeas", "Augeas", (".aug",), comment=ML),
    Language("awk", "Awk", (".awk",), comment=H),
    Language("batchfile", "Batchfile", (".bat", ".cmd"), comment=("REM", "")),
    Language("bluespec", "Bluespec", (".bsv",), comment=C),
    Language("c", "C", (".c", ".h"), comment=C),
    Language("csharp", "C#", (".cs", ".csx"), comment=C),
    Language("clojure", "Clojure", (".clj", ".cljs", ".cljc", ".edn"), comment=SEMI),
    Language("cmake", "CMake", (".cmake",), ("CMakeLists.txt",), comment=H),
    Language("coffeescript", "CoffeeScript", (".coffee",), comment=H),
    Language("common-lisp", "Common Lisp", (".lisp", ".lsp", ".cl"), comment=SEMI),
    Language("cpp", "C++", (".cpp", ".cc", ".cxx", ".c++", ".hpp", ".hh", ".hxx", ".h++", ".ipp", ".tcc", ".inl"), comment=C),
    Language("css", "CSS", (".css",), comment=BLOCK),
    Language("cuda", "CUDA", (".cu", ".cuh"), comment=C),
    Language("dart", "Dart", (".dart",), comment=C),
    Language("dockerfile", "Dockerfile", (".dockerfile",), ("Dockerfile", "Containerfile"), comment=H),
    Language("elixir", "Elixir", (".ex", ".exs"), comment=H),
    Language("elm", "Elm", (".elm",), comment=D),
    Language("emacs-lisp", "Emacs Lisp", (".el",), comment=SEMI),
    Language("erlang", "Erlang", (".erl", ".hrl"), comment=PCT),
    Language("fsharp", "F#", (".fs", ".fsi", ".fsx"), comment=C),
    Language("fortran", "Fortran", (".f", ".f90", ".f95", ".f03", ".for", ".F90"), comment=("!", "")),
    Language("glsl", "GLSL", (".glsl", ".vert", ".frag", ".geom"), comment=C),
    Language("go", "Go", (".go",), comment=C),
    Language("groovy", "Groovy", (".groovy", ".gradle"), comment=C),
    Language("haskell", "Haskell", (".hs",), comment=D),
    Language("html", "HTML", (".html", ".htm", ".xhtml"), comment=XML),
    Language("idris", "Idris", (".idr",), comment=D),
    Language("isabelle", "Isabelle", (".thy",), comment=ML),
    Language("java", "Java", (".java",), comment=C),
    Language("java-server-pages", "Java Server Pages", (".jsp",), comment=("<%--", " --%>")),
    Language("javascript", "JavaScript", (".js", ".mjs", ".cjs", ".jsx"), comment=C),
    Language("json", "JSON", (".json", ".jsonl", ".geojson"), comment=None),
    Language("julia", "Julia", (".jl",), comment=H),
    Language("jupyter-notebook", "Jupyter Notebook", (".ipynb",), comment=None),
    Language("kotlin", "Kotlin", (".kt", ".kts"), comment=C),
    Language("lean", "Lean", (".lean",), comment=D),
    Language("literate-agda", "Literate Agda", (".lagda",), comment=D),
    Language("literate-coffeescript", "Literate CoffeeScript", (".litcoffee",), comment=H),
    Language("literate-haskell", "Literate Haskell", (".lhs",), comment=D),
    Language("lua", "Lua", (".lua",), comment=D),
    Language("makefile", "Makefile", (".mk", ".mak"), ("Makefile", "makefile", "GNUmakefile"), comment=H),
    Language("maple", "Maple", (".mpl",), comment=H),
    Language("markdown", "Markdown", (".md", ".markdown"), comment=XML),
    Language("mathematica", "Mathematica", (".nb", ".wl", ".wls"), comment=ML),
    Language("matlab", "MATLAB", (".m",), comment=PCT),
    Language("ocaml", "OCaml", (".ml", ".mli"), comment=ML),
    Language("pascal", "Pascal", (".pas", ".pp", ".dpr"), comment=("//", "")),
    Language("perl", "Perl", (".pl", ".pm", ".t"), comment=H),
    Language("php", "PHP", (".php", ".phtml"), comment=C),
    Language("powershell", "PowerShell", (".ps1", ".psm1", ".psd1"), comment=H),
    Language("prolog", "Prolog", (".pro", ".prolog"), comment=PCT),
    Language("protocol-buffer", "Protocol Buffer", (".proto",), comment=C),
    Language("python", "Python", (".py", ".pyw", ".pyi"), comment=H),
    Language("r", "R", (".r", ".R"), comment=H),
    Language("racket", "Racket", (".rkt",), comment=SEMI),
    Language("restructuredtext", "reStructuredText", (".rst",), comment=("..", "")),
    Language("rmarkdown", "RMarkdown", (".rmd", ".Rmd"), comment=XML),
    Language("ruby", "Ruby", (".rb", ".rake", ".gemspec"), ("Rakefile", "Gemfile"), comment=H),
    Language("rust", "Rust", (".rs",), comment=C),
    Language("sas", "SAS", (".sas",), comment=BLOCK),
    Language("scala", "Scala", (".scala", ".sc"), comment=C),
    Language("scheme", "Scheme", (".scm", ".ss"), comment=SEMI),
    Language("shell", "Shell", (".sh", ".bash", ".zsh"), comment=H),
    Language("smalltalk", "Smalltalk", (".st",), comment=('"', '"')),
    Language("solidity", "Solidity", (".sol",), comment=C),
    Language("sparql", "SPARQL", (".sparql", ".rq"), comment=H),
    Language("sql", "SQL", (".sql",), comment=D),
    Language("stan", "Stan", (".stan",), comment=C),
    Language("standard-ml", "Standard ML", (".sml", ".sig"), comment=ML),
    Language("stata", "Stata", (".do", ".ado"), comment=C),
    Language("systemverilog", "SystemVerilog", (".sv", ".svh"), comment=C),
    Language("tcl", "TCL", (".tcl",), comment=H),
    Language("tcsh", "Tcsh", (".tcsh", ".csh"), comment=H),
    Language("tex", "TeX", (".tex", ".sty", ".cls"), comment=PCT),
    Language("thrift", "Thrift", (".thrift",), comment=C),
    Language("typescript", "TypeScript", (".ts", ".tsx", ".mts", ".cts"), comment=C),
    Language("verilog", "Verilog", (".v", ".vh"), comment=C),
    Language("vhdl", "VHDL", (".vhd", ".vhdl"), comment=D),
    Language("visual-basic", "Visual Basic", (".vb", ".bas", ".vbs"), comment=("'", "")),
    Language("xslt", "XSLT", (".xsl", ".xslt"), comment=XML),
    Language("yacc", "Yacc", (".y", ".yy"), comment=BLOCK),
    Language("yaml", "YAML", (".yml", ".yaml"), comment=H),
    Language("zig", "Zig", (".zig",), comment=C),
    # Not among the paper's 87, but present in the installed default corpus.
    Language("cython", "Cython", (".pyx", ".pxd", ".pxi"), comment=H, in_paper=False),
    Language("toml", "TOML", (".toml",), comment=H, in_paper=False),
    Language("ini", "INI", (".ini", ".cfg"), comment=(";", ""), in_paper=False),
    Language("text", "Text", (".txt",), comment=None, in_paper=False),
)

BY_ID: dict[str, Language] = {lang.id: lang for lang in LANGUAGES}
_BY_EXT: dict[str, str] = {}
_BY_NAME: dict[str, str] = {}
for _lang in LANGUAGES:
    for _ext in _lang.extensions:
        _BY_EXT.setdefault(_ext, _lang.id)
    for _fname in _lang.filenames:
        _BY_NAME.setdefault(_fname, _lang.id)

# Languages treated as prose/config rather than code by stages that care (repo_docs places
# them after the code files; the continued-pretraining mix counts Markdown separately).
NON_CODE = frozenset({"markdown", "restructuredtext", "text", "json", "yaml", "toml", "ini", "rmarkdown"})

# A `.h` header is C unless it uses C++-only syntax (Linguist does the same by heuristics).
_CPP_MARKERS = ("namespace ", "template<", "template <", "class ", "public:", "private:", "std::", "#include <iostream>")


def detect_language(path: str, content: str | None = None) -> str | None:
    """The language id of a file, by file name, then extension; None when unknown."""
    p = PurePosixPath(path)
    if p.name in _BY_NAME:
        return _BY_NAME[p.name]
    suffix = p.suffix
    lang = _BY_EXT.get(suffix) or _BY_EXT.get(suffix.lower())
    if lang == "c" and suffix == ".h" and content is not None and any(m in content for m in _CPP_MARKERS):
        return "cpp"
    return lang


def paper_languages() -> list[str]:
    """Ids of the paper's 87 languages."""
    return [lang.id for lang in LANGUAGES if lang.in_paper]


def path_header(path: str, language: str) -> str:
    """The comment line that precedes a file in a repository document (Sec. 2.2)."""
    lang = BY_ID.get(language)
    if lang is None or lang.comment is None:
        return f"<|file|> {path}\n"  # neutral marker for languages without comments
    open_, close = lang.comment
    return f"{open_} {path}{close}\n"
