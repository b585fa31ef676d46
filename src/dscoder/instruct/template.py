"""The DeepSeek-Coder-Instruct prompt layout (Sec. 3.7) as text, as a chat template, as tokens.

A conversation is a list of `{"role", "content"}` messages: an optional leading `system`
message, then `user` / `assistant` turns alternating, starting with `user`. It renders as

    {bos}{system}\\n                       (the default system prompt when none is given)
    ### Instruction:\\n{user}\\n
    ### Response:\\n{assistant}\\n<|EOT|>\\n
    ... more turns ...
    ### Response:\\n                        (only with add_generation_prompt)

which is the released deepseek-coder-*-instruct `chat_template` (tokenizer_config.json),
with three choices where the release is loose:
  * the default system prompt is the released template's, spelled as it spells it
    ("Deepseek", no final period; the fine-tuning script in the same repository writes
    "DeepSeek ... refuse to answer." - both circulate);
  * a caller-given system message is followed by "\\n" like the default one (the released
    template emits it with no newline, gluing it to "### Instruction:");
  * the generation prompt is "### Response:\\n", exactly the end of a training prompt
    (the fine-tuning script's `build_instruction_prompt`).
`CHAT_TEMPLATE` (Jinja, for `tokenizer.chat_template`) and `render` (Python) produce the same
string; the tests check it for many conversations.

Loss mask: a turn's trainable tokens are its answer, the "\\n" before <|EOT|> and <|EOT|> itself
(the fine-tuning script trains on `f"{output}\\n{EOT_TOKEN}"`): what the model must emit to
answer and stop. The "\\n" after <|EOT|> is layout, not trained (generation stops at <|EOT|>).

Tokenization is piecewise: the rendered text is cut at the prompt/answer boundaries and each
piece is encoded on its own (content with `split_special_tokens`, so text that spells
"<|EOT|>" stays text; the BOS and EOT ids are inserted by id). The prompt part is therefore
encoded exactly as `tokenizer(apply_chat_template(..., add_generation_prompt=True))` encodes it
at inference; the answer's first token never merges with the "\\n" before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

#: The released deepseek-coder-instruct chat template's default system prompt (verbatim).
DEFAULT_SYSTEM_PROMPT = (
    "You are an AI programming assistant, utilizing the Deepseek Coder model, developed by Deepseek "
    "Company, and you only answer questions related to computer science. For politically sensitive "
    "questions, security and privacy issues, and other non-computer science questions, you will "
    "refuse to answer"
)
EOT = "<|EOT|>"
INSTRUCTION_HEADER = "### Instruction:\n"
RESPONSE_HEADER = "### Response:\n"

Message = Mapping[str, str]


def _jinja_str(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def chat_template(system_prompt: str = DEFAULT_SYSTEM_PROMPT, eot: str = EOT) -> str:
    """The Jinja chat template (whitespace-exact: every output comes from an expression)."""
    return (
        "{%- set ns = namespace(system=false) -%}"
        "{%- for message in messages -%}{%- if message['role'] == 'system' -%}{%- set ns.system = true -%}"
        "{%- endif -%}{%- endfor -%}"
        "{{- bos_token if bos_token else '' -}}"
        "{%- if not ns.system -%}{{- " + _jinja_str(system_prompt + "\n") + " -}}{%- endif -%}"
        "{%- for message in messages -%}"
        "{%- if message['role'] == 'system' -%}{{- message['content'] + '\\n' -}}"
        "{%- elif message['role'] == 'user' -%}{{- " + _jinja_str(INSTRUCTION_HEADER) + " + message['content'] + '\\n' -}}"
        "{%- else -%}{{- " + _jinja_str(RESPONSE_HEADER) + " + message['content'] + " + _jinja_str("\n" + eot + "\n")
        + " -}}{%- endif -%}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}{{- " + _jinja_str(RESPONSE_HEADER) + " -}}{%- endif -%}"
    )


CHAT_TEMPLATE = chat_template()


def set_chat_template(tokenizer: Any, system_prompt: str = DEFAULT_SYSTEM_PROMPT, eot: str = EOT) -> Any:
    """Set the template on a Hugging Face tokenizer (before `save_pretrained`); returns it."""
    tokenizer.chat_template = chat_template(system_prompt, eot)
    return tokenizer


def conversation_problem(messages: Any) -> str | None:
    """Why `messages` is not a trainable conversation (a short reason id), or None."""
    if not isinstance(messages, (list, tuple)) or not messages:
        return "messages_empty_or_not_list"
    roles = []
    for m in messages:
        if not isinstance(m, Mapping) or not isinstance(m.get("role"), str):
            return "message_malformed"
        if not isinstance(m.get("content"), str):
            return "message_content_not_string"
        roles.append(m["role"])
    if any(r not in ("system", "user", "assistant") for r in roles):
        return "unknown_role"
    turns = roles[1:] if roles[0] == "system" else roles
    if "system" in turns:
        return "system_not_first"
    if not turns or any(r != ("user" if i % 2 == 0 else "assistant") for i, r in enumerate(turns)):
        return "bad_role_order"
    if turns[-1] != "assistant":
        return "no_final_answer"
    return None


def segments(messages: Sequence[Message], *, system_prompt: str = DEFAULT_SYSTEM_PROMPT,
             eot: str = EOT, add_generation_prompt: bool = False) -> list[tuple[str, bool]]:
    """The rendered conversation (BOS excluded) as (text, trained) pieces in order; the EOT
    string is its own piece so the tokenizer can insert its id."""
    out: list[tuple[str, bool]] = []
    if not any(m["role"] == "system" for m in messages):
        out.append((system_prompt + "\n", False))
    for m in messages:
        if m["role"] == "system":
            out.append((m["content"] + "\n", False))
        elif m["role"] == "user":
            out.append((INSTRUCTION_HEADER + m["content"] + "\n", False))
        else:
            out.append((RESPONSE_HEADER, False))
            out.append((m["content"] + "\n", True))
            out.append((eot, True))
            out.append(("\n", False))
    if add_generation_prompt:
        out.append((RESPONSE_HEADER, False))
    merged: list[tuple[str, bool]] = []  # join neighbours of the same kind (fewer encode calls)
    for text, trained in out:
        if merged and merged[-1][1] == trained and text != eot and merged[-1][0] != eot:
            merged[-1] = (merged[-1][0] + text, trained)
        else:
            merged.append((text, trained))
    return merged


def render(messages: Sequence[Message], *, bos: str = "", system_prompt: str = DEFAULT_SYSTEM_PROMPT,
           eot: str = EOT, add_generation_prompt: bool = False) -> str:
    """The training prompt text; equals `apply_chat_template(messages, tokenize=False, ...)`."""
    return bos + "".join(t for t, _ in segments(messages, system_prompt=system_prompt, eot=eot,
                                                  add_generation_prompt=add_generation_prompt))


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    loss_mask: list[int]
    """1 where the token is a training target (answer, "\\n" and <|EOT|> of every turn)."""


def special_id(tokenizer: Any, token: str | None) -> int | None:
    """Id of a token spelled `token` in an HF tokenizer, or None when it has no such token."""
    if not token:
        return None
    tid = tokenizer.convert_tokens_to_ids(token)
    return None if tid is None or tid == tokenizer.unk_token_id and token != tokenizer.unk_token else int(tid)


def encode_conversation(tokenizer: Any, messages: Sequence[Message], *, system_prompt: str = DEFAULT_SYSTEM_PROMPT,
                        eot: str = EOT, add_bos: bool = True) -> Encoded:
    """(input_ids, loss_mask) of a conversation with an HF tokenizer that has `eot` as a token;
    begins with BOS when `add_bos` and the tokenizer has one (see the module docstring)."""
    eot_id = special_id(tokenizer, eot)
    if eot_id is None:
        raise ValueError(f"tokenizer has no {eot!r} token; instruction tuning needs it (Sec. 3.7)")
    ids: list[int] = []
    mask: list[int] = []
    bos_id = tokenizer.bos_token_id if add_bos else None
    if bos_id is not None:
        ids.append(int(bos_id))
        mask.append(0)
    for text, trained in segments(messages, system_prompt=system_prompt, eot=eot):
        piece = [eot_id] if text == eot else tokenizer(text, add_special_tokens=False,
                                                       split_special_tokens=True)["input_ids"]
        ids.extend(piece)
        mask.extend([int(trained)] * len(piece))
    return Encoded(ids, mask)


def save_chat_tokenizer(tokenizer_dir: str, out_dir: str, *, system_prompt: str = DEFAULT_SYSTEM_PROMPT,
                        eot: str = EOT, eot_as_eos: bool = True) -> None:
    """Copy a tokenizer directory with the chat template set, atomically. With `eot_as_eos`
    its eos_token becomes `eot`, as in the released Instruct tokenizers, so an exported model's
    generation_config stops at the end of an answer. Pass `out_dir` as the trainer's
    tokenizer_dir: the export copies it (chat_template.jinja included)."""
    from transformers import AutoTokenizer

    from dscoder.io import atomic_path

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    if special_id(tok, eot) is None:
        raise ValueError(f"tokenizer {tokenizer_dir!r} has no {eot!r} token")
    set_chat_template(tok, system_prompt, eot)
    if eot_as_eos:
        tok.eos_token = eot
    with atomic_path(out_dir, is_dir=True) as tmp:
        tok.save_pretrained(str(tmp))
