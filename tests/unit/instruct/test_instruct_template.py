from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dscoder.instruct.template import (DEFAULT_SYSTEM_PROMPT, EOT, conversation_problem, encode_conversation, render,
                                       segments)

CONVERSATIONS = [
    [{"role": "user", "content": "Write add."}, {"role": "assistant", "content": "def add(a, b):\n    return a + b"}],
    [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi {{ x }} {% raw %}"},
     {"role": "assistant", "content": "'quoted' \\ back\\slash \"dq\""}],
    [{"role": "user", "content": "one"}, {"role": "assistant", "content": "1"},
     {"role": "user", "content": "two <|EOT|> spelled"}, {"role": "assistant", "content": "\n\n  2  \n"}],
]


def _runs(ids, mask):
    runs, cur = [], []
    for i, m in zip(ids, mask):
        if m:
            cur.append(i)
        elif cur:
            runs.append(cur)
            cur = []
    if cur:
        runs.append(cur)
    return runs


@pytest.mark.parametrize("messages", CONVERSATIONS)
def test_chat_template_reproduces_training_prompt(dscoder_tok, messages):
    text = dscoder_tok.apply_chat_template(messages, tokenize=False)
    assert text == render(messages, bos=dscoder_tok.bos_token)
    # the inference prompt (all turns but the last answer + generation prompt) is a prefix of training text
    prompt = dscoder_tok.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    assert prompt == render(messages[:-1], bos=dscoder_tok.bos_token, add_generation_prompt=True)
    assert text.startswith(prompt) and prompt.endswith("### Response:\n")
    assert text[len(prompt):] == messages[-1]["content"] + "\n" + EOT + "\n"


def test_layout_is_the_released_one(dscoder_tok):
    text = dscoder_tok.apply_chat_template(CONVERSATIONS[0], tokenize=False)
    assert text == (dscoder_tok.bos_token + DEFAULT_SYSTEM_PROMPT + "\n### Instruction:\nWrite add.\n"
                    "### Response:\ndef add(a, b):\n    return a + b\n<|EOT|>\n")


@pytest.mark.parametrize("messages", CONVERSATIONS)
def test_mask_covers_exactly_answers_and_eot(dscoder_tok, messages):
    enc = encode_conversation(dscoder_tok, messages)
    eot_id = dscoder_tok.convert_tokens_to_ids(EOT)
    assert enc.input_ids[0] == dscoder_tok.bos_token_id and enc.loss_mask[0] == 0
    answers = [m["content"] for m in messages if m["role"] == "assistant"]
    runs = _runs(enc.input_ids, enc.loss_mask)
    assert [dscoder_tok.decode(r) for r in runs] == [a + "\n" + EOT for a in answers]
    assert all(r[-1] == eot_id for r in runs)
    # EOT appears only where the template puts it: user text spelling "<|EOT|>" stays text
    assert enc.input_ids.count(eot_id) == len(answers)
    assert dscoder_tok.decode(enc.input_ids) == render(messages, bos=dscoder_tok.bos_token)


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40).filter(str.strip)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(turns=st.lists(st.tuples(_text, _text), min_size=1, max_size=3), system=st.none() | _text)
def test_mask_and_template_property(dscoder_tok, turns, system):
    messages = ([{"role": "system", "content": system}] if system else [])
    for q, a in turns:
        messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    assert dscoder_tok.apply_chat_template(messages, tokenize=False) == render(messages, bos=dscoder_tok.bos_token)
    enc = encode_conversation(dscoder_tok, messages)
    runs = _runs(enc.input_ids, enc.loss_mask)
    assert [dscoder_tok.decode(r) for r in runs] == [a + "\n" + EOT for _, a in turns]


def test_conversation_problems():
    u, a, s = ({"role": r, "content": "x"} for r in ("user", "assistant", "system"))
    assert conversation_problem([u, a]) is None
    assert conversation_problem([s, u, a, u, a]) is None
    assert conversation_problem([a, u]) == "bad_role_order"
    assert conversation_problem([u, u, a]) == "bad_role_order"
    assert conversation_problem([u]) == "no_final_answer"
    assert conversation_problem([u, s, a]) == "system_not_first"
    assert conversation_problem([{"role": "bot", "content": "x"}]) == "unknown_role"
    assert conversation_problem([]) == "messages_empty_or_not_list"
    assert conversation_problem([{"role": "user", "content": 3}]) == "message_content_not_string"


def test_tokenizer_without_eot_is_refused(general_tok):
    with pytest.raises(ValueError, match="EOT"):
        encode_conversation(general_tok, CONVERSATIONS[0])


def test_segments_mark_only_answers():
    segs = segments(CONVERSATIONS[2])
    assert "".join(t for t, m in segs if m) == "1\n" + EOT + "\n\n  2  \n\n" + EOT


def test_saved_chat_tokenizer_stops_at_eot(tmp_path, dscoder_tok):
    from transformers import AutoTokenizer

    from dscoder.instruct.template import save_chat_tokenizer

    dscoder_tok.save_pretrained(str(tmp_path / "src"))
    save_chat_tokenizer(str(tmp_path / "src"), str(tmp_path / "chat"))
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "chat"))
    assert tok.eos_token == EOT
    assert tok.apply_chat_template(CONVERSATIONS[1], tokenize=False) == render(CONVERSATIONS[1], bos=tok.bos_token)
    assert encode_conversation(tok, CONVERSATIONS[1]) == encode_conversation(dscoder_tok, CONVERSATIONS[1])
