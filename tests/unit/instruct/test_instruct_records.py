from __future__ import annotations

import json
from collections import Counter

from dscoder.instruct.records import load_instruction_file

GOOD_ALPACA = {"instruction": "Sort a list.", "input": "[3, 1]", "output": "sorted(xs)"}
GOOD_CHAT = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"},
                          {"role": "assistant", "content": "a"}]}


def test_every_invalid_record_is_counted_with_its_reason(tmp_path):
    lines = [
        json.dumps(GOOD_ALPACA).encode(),
        json.dumps(GOOD_CHAT).encode(),
        b"{not json",
        b'{"instruction": "caf\xe9"}',  # latin-1 byte: not UTF-8
        json.dumps({"instruction": "x"}).encode(),
        json.dumps({"instruction": "x", "output": "  "}).encode(),
        json.dumps({"instruction": "", "output": "y"}).encode(),
        json.dumps({"instruction": "x", "output": 3}).encode(),
        json.dumps({"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}]}).encode(),
        json.dumps({"messages": [{"role": "user", "content": "q"}]}).encode(),
        json.dumps({"messages": [{"role": "robot", "content": "q"}]}).encode(),
        json.dumps({"messages": [{"role": "user", "content": " "}, {"role": "assistant", "content": "a"}]}).encode(),
        json.dumps({"text": "no format"}).encode(),
        json.dumps([1, 2]).encode(),
        json.dumps({"instruction": "long", "output": "z" * 500}).encode(),
        json.dumps(GOOD_ALPACA).encode(),  # duplicate of line 1
        b"",
    ]
    path = tmp_path / "user.jsonl"
    path.write_bytes(b"\n".join(lines))
    res = load_instruction_file(path, name="user", max_chars=200)
    reasons = Counter(a["reason"] for a in res.audit)
    assert reasons == Counter({
        "bad_json": 1, "not_utf8": 1, "missing_field": 0, "missing_field:output": 1, "empty_output": 1,
        "empty_instruction": 1, "field_not_string:output": 1, "bad_role_order": 1, "no_final_answer": 1,
        "unknown_role": 1, "empty_turn": 1, "unknown_format": 1, "not_an_object": 1, "too_long": 1, "duplicate": 1,
    }) - Counter()
    assert res.records == 16 and len(res.examples) + len(res.audit) == res.records
    assert [e.id for e in res.examples] == ["user:1", "user:2"]
    alpaca = res.examples[0].messages
    assert alpaca == ({"role": "user", "content": "Sort a list.\n\n[3, 1]"}, {"role": "assistant", "content": "sorted(xs)"})
    assert all(a["stage"] == "instruct_data" and a["path"].startswith(str(path)) for a in res.audit)
    assert {a["path"].rsplit(":", 1)[1] for a in res.audit if a["reason"] == "duplicate"} == {"16"}


def test_json_list_and_missing_file(tmp_path):
    path = tmp_path / "data.json"
    path.write_text(json.dumps([GOOD_ALPACA, {"instruction": "q"}, GOOD_CHAT]))
    res = load_instruction_file(path, name="j")
    assert len(res.examples) == 2 and [a["reason"] for a in res.audit] == ["missing_field:output"]
    bad = tmp_path / "broken.json"
    bad.write_text("[{")
    assert [a["reason"] for a in load_instruction_file(bad, name="b").audit] == ["bad_json"]
    assert [a["reason"] for a in load_instruction_file(tmp_path / "nope.jsonl", name="n").audit] == ["missing_file"]
