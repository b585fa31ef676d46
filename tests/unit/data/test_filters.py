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
