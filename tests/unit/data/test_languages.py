from dscoder.data.languages import BY_ID, LANGUAGES, detect_language, paper_languages, path_header


def test_covers_the_papers_languages():
    ids = paper_languages()
    assert len(ids) >= 87
    for must in ("python", "java", "javascript", "typescript", "c", "cpp", "csharp", "go", "rust", "php", "ruby",
                 "markdown", "json", "yaml", "html", "css", "shell", "sql", "xslt", "jupyter-notebook"):
        assert must in ids, must


def test_ids_and_extensions_are_unique_per_table_row():
    assert len(BY_ID) == len(LANGUAGES)


def test_detect_by_extension_and_file_name():
    assert detect_language("pkg/mod.py") == "python"
    assert detect_language("a/b/Main.java") == "java"
    assert detect_language("x/Dockerfile") == "dockerfile"
    assert detect_language("CMakeLists.txt") == "cmake"
    assert detect_language("src/lib.rs") == "rust"
    assert detect_language("web/app.TSX".replace("TSX", "tsx")) == "typescript"
    assert detect_language("lib.so") is None
    assert detect_language("README") is None


def test_header_files_are_cpp_when_they_use_cpp_syntax():
    assert detect_language("x.h", "int f(void);\n") == "c"
    assert detect_language("x.h", "namespace arrow { class Foo; }\n") == "cpp"


def test_path_header_uses_the_languages_comment_syntax():
    assert path_header("a/b.py", "python") == "# a/b.py\n"
    assert path_header("a/b.c", "c") == "// a/b.c\n"
    assert path_header("a/b.html", "html") == "<!-- a/b.html -->\n"
    assert path_header("a/b.json", "json") == "<|file|> a/b.json\n"
