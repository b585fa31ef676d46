"""Each StarCoder rule (Sec. 2.1) and the parse check (Sec. 2.4), with its threshold as a parameter."""

from __future__ import annotations

import pytest

from dscoder.config import ConfigError
from dscoder.data.filters import FilterSettings, filter_file, visible_text

S = FilterSettings()
GOOD_PY = "def add(a, b):\n    return a + b\n"


def test_clean_code_is_kept():
    assert filter_file(GOOD_PY, "python", "a.py", S) is None
    assert filter_file("int add(int a, int b) { return a + b; }\n", "c", "a.c", S) is None
    assert filter_file("", "python", "pkg/__init__.py", S) is None  # package markers survive


def test_line_length_rules():
    assert filter_file("x = '" + "a" * 1001 + "'\n", "python", "a.py", S) == "max_line_length"
    long_avg = "\n".join(["value = '" + "a" * 120 + "'"] * 5)
    assert filter_file(long_avg, "python", "a.py", S) == "avg_line_length"
    assert filter_file(long_avg, "python", "a.py", FilterSettings(max_avg_line_length=200)) is None


def test_alpha_fraction():
    digits = "".join(f"v{i} = [{i * 7}, {i * 13}, {i * 17}]\n" for i in range(100))
    assert filter_file(digits, "python", "a.py", S) == "alpha_fraction"
    assert filter_file(digits, "python", "a.py", FilterSettings(min_alpha_fraction=0.0)) is None


def test_xml_header_except_xslt():
    doc = '<?xml version="1.0"?>\n<root><item>value text here</item></root>\n'
    assert filter_file(doc, "html", "a.html", S) == "xml_header"
    xslt = '<?xml version="1.0"?>\n<xsl:stylesheet version="1.0"></xsl:stylesheet>\n'
    assert filter_file(xslt, "xslt", "a.xsl", S) is None


def test_html_visible_text():
    page = "<html><body>\n" + "<p>Readable words for people, plenty of them.</p>\n" * 10 + "</body></html>\n"
    assert filter_file(page, "html", "a.html", S) is None
    scripty = "<html><head><script>" + "var abc = 1;\n" * 50 + "</script></head><body>Hi</body></html>"
    assert filter_file(scripty, "html", "b.html", S) == "html_visible_text"
    assert visible_text("<p>a <b>b</b></p><style>x{}</style>") == "a b"


def test_json_yaml_size_window():
    small = '{"name": "a"}'
    assert filter_file(small, "json", "a.json", S) == "data_file_size"
    mid = "{\n" + ",\n".join(f'  "key{i}": "value"' for i in range(8)) + "\n}\n"
    assert filter_file(mid, "json", "a.json", S) is None
    big = "items:\n" + "".join(f"  - name: item{i}\n" for i in range(400))
    assert filter_file(big, "yaml", "a.yaml", S) == "data_file_size"
    assert filter_file(big, "yaml", "a.yaml", FilterSettings(data_max_chars=100_000)) is None


def test_python_must_compile():
    assert filter_file("def f(:\n    pass\n", "python", "a.py", S) == "python_syntax"
    assert filter_file("print 'python two'\n", "python", "a.py", S) == "python_syntax"
    assert filter_file("def f(:\n    pass\n", "python", "a.py", FilterSettings(python_compile=False)) is None


def test_tree_sitter_error_share():
    broken = "int main( { return 0 \n"
    assert filter_file(broken, "c", "a.c", S) == "parse_errors"
    assert filter_file(broken, "c", "a.c", FilterSettings(max_parse_error_share=1.0)) is None
    assert filter_file(broken, "c", "a.c", FilterSettings(parse_languages=[])) is None


@pytest.mark.parametrize("section, name", [
    ({"min_alpha_fraction": 1.5}, "filter.min_alpha_fraction"),
    ({"data_min_chars": 10, "data_max_chars": 5}, "filter.data_min_chars"),
    ({"max_line_length": "long"}, "filter.max_line_length"),
    ({"max_line_lenght": 10}, "filter.max_line_lenght"),
])
def test_bad_params_name_the_parameter(section, name):
    with pytest.raises(ConfigError, match=name):
        FilterSettings.from_dict(section, "filter")


def test_decisions_carry_what_was_measured():
    from dscoder.data.filters import filter_decision

    drop = filter_decision("x = '" + "a" * 1500 + "'\n", "python", "a.py", S)
    assert drop.reason == "max_line_length" and drop.detail.startswith("1506 > 1000")
    drop = filter_decision("def f(:\n", "python", "a.py", S)
    assert drop.reason == "python_syntax" and drop.detail.startswith("line 1")
    assert filter_decision(GOOD_PY, "python", "a.py", S) is None


# ---------------------------------------------------------------- Python compiled in runs

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from dscoder.data import filters as F  # noqa: E402


def _whole(text: str):
    """What compiling the whole file says, as python_syntax_error reports it."""
    try:
        F._compile(text, "a.py")
    except SyntaxError as e:
        return F.Drop("python_syntax", f"line {e.lineno}: {e.msg}")
    except (ValueError, RecursionError, MemoryError, OverflowError) as e:
        return F.Drop("python_syntax", type(e).__name__)
    return None


def _pieces(monkeypatch) -> list[int]:
    """Lengths of the sources handed to compile from now on."""
    sizes: list[int] = []
    real = F._compile

    def spy(text, path, flags=0):
        sizes.append(len(text))
        return real(text, path, flags)

    monkeypatch.setattr(F, "_compile", spy)
    return sizes


def test_a_long_module_is_compiled_in_bounded_runs(monkeypatch):
    text = "".join(f"def f{i}(a, b):\n    '''doc {i}'''\n    return a * {i} + b\n\n" for i in range(3000))
    sizes = _pieces(monkeypatch)
    assert F.python_syntax_error(text, "a.py", chunk=4096) is None
    assert len(text) > 40 * 4096 and sizes and max(sizes) < 4096 + 100 and sum(sizes) == len(text)


def test_runs_keep_every_whole_file_error_and_its_message():
    body = "".join(f"def f{i}():\n    return {i}\n" for i in range(400))
    cases = {
        "late syntax error": body + "def broken(:\n    pass\n",
        "module-level global after use": body + "x = 1\n" + body + "global x\n",
        "annotated then global": "x: int = 1\n" + body + "if True:\n    global x\n",
        "late __future__ import": body + "from __future__ import annotations\n",
        "future feature of the first run applies later": "from __future__ import annotations\n" + body
                                                         + "def o():\n    def g(x: (yield)):\n        pass\n",
        "barry_as_FLUFL imported in the file does not change its parsing": "from __future__ import barry_as_FLUFL\n"
                                                                            + body + "ok = 1 <> 2\n",
        "else at column 0 is not a run start": body + "if x:\n    pass\n" + body[:40] + "\nelse:\n    pass\n",
    }
    for name, text in cases.items():
        assert _whole(text) is not None, name
        assert F.python_syntax_error(text, "a.py", chunk=512) == _whole(text), name


def test_runs_judge_what_only_looks_like_a_statement_start(monkeypatch):
    # column-0 lines inside a string and inside brackets: the guessed end fails, the run grows
    body = "".join(f"def f{i}():\n    return {i}\n" for i in range(200))
    text = body + 'DOC = """\ndef not_code(:\n' + "x\n" * 300 + '"""\nT = [\n' + "1,\n" * 300 + "]\n" + body
    text += "def g():\n    global counter\n    counter = 1\n"  # a function's global is judged by runs
    assert _whole(text) is None
    assert F._chunks_compile(text, "a.py", 512)
    assert F.python_syntax_error(text, "a.py", chunk=512) is None


_STATEMENTS = st.sampled_from([
    "x = 1\n", "def f():\n    return x\n", "class C:\n    y = 2\n\n    def m(self):\n        return self\n",
    "@dec\ndef g():\n    pass\n", "if x:\n    pass\n", "else:\n    pass\n", "try:\n    pass\n", "except E:\n    pass\n",
    "finally:\n    pass\n", "s = '''\ndef h(:\n'''\n", "t = (\n1,\n)\n", "global x\n", "def k():\n    global x\n    x = 3\n",
    "from __future__ import annotations\n", "def a(p: (yield)):\n    pass\n", "return 1\n", "u = [\n", "]\n",
    "# comment at column 0\n", "\n", "    indented = 1\n", "print 'two'\n", "v: int = 1\n", "x\\\n+ 1\n",
    "async def co():\n    await z\n", "w = 1 <> 2\n", "from __future__ import barry_as_FLUFL\n", "lambda: (yield)\n",
    "def o():\n    def g(x: (yield)):\n        pass\n",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(_STATEMENTS, min_size=1, max_size=40), st.integers(1, 64))
def test_runs_agree_with_compiling_the_whole_file(statements, chunk):
    text = "".join(statements)
    assert F.python_syntax_error(text, "a.py", chunk=chunk) == _whole(text)
