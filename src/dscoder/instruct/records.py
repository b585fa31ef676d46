"""User instruction files (Alpaca or chat form), validated record by record.

Accepted files: JSONL (one record per line) or JSON (a list of records, or one record).
A record is either

  Alpaca:  {"instruction": str, "input": str (optional), "output": str}
           -> user = instruction, plus "\\n\\n" + input when input is non-empty
              (the Alpaca convention of a separate input block); assistant = output
  chat:    {"messages": [{"role": "system"|"user"|"assistant", "content": str}, ...]}
           optional leading system message, then user/assistant alternating, ending with
           an assistant answer (the turns the loss is taken on).

Every record becomes an `Example` (normalised to chat form) or an audit row with a reason:
not_utf8, bad_json, not_an_object, unknown_format, missing_field:<f>, field_not_string:<f>,
empty_instruction, empty_output, messages_empty_or_not_list, message_malformed,
message_content_not_string, unknown_role, system_not_first, bad_role_order, no_final_answer,
empty_turn, too_long, duplicate, missing_file. Nothing is dropped silently.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from dscoder.instruct.template import conversation_problem

STAGE = "instruct_data"


@dataclass(frozen=True)
class Example:
    """One training conversation and where it came from."""

    id: str
    source: str
    """Name of the user file (params) or `mined:<language>`."""
    messages: tuple[dict[str, str], ...]
    repo_id: str | None = None
    path: str | None = None
    language: str | None = None
    split: str | None = None
    """"train" or "validation" once assigned."""

    def text(self) -> str:
        """All contents joined (what decontamination scans)."""
        return "\n".join(m["content"] for m in self.messages)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "source": self.source, "messages": [dict(m) for m in self.messages],
                "repo_id": self.repo_id, "path": self.path, "language": self.language, "split": self.split}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Example":
        return cls(id=d["id"], source=d["source"], messages=tuple(dict(m) for m in d["messages"]),
                   repo_id=d.get("repo_id"), path=d.get("path"), language=d.get("language"), split=d.get("split"))


def content_key(messages: Any) -> str:
    """Hash of a conversation's roles and contents (exact-duplicate detection)."""
    return hashlib.sha256(json.dumps([[m["role"], m["content"]] for m in messages], ensure_ascii=False).encode()).hexdigest()


def audit_row(reason: str, *, source: str, path: str | None = None, detail: str | None = None,
              size: int | None = None, repo_id: str | None = None, language: str | None = None) -> dict[str, Any]:
    """A row in the shared schemas.AUDIT layout (repo_name holds the source name)."""
    return {"stage": STAGE, "repo_id": repo_id, "repo_name": source, "path": path, "language": language,
            "reason": reason, "detail": detail, "size": size}


def record_to_messages(record: Any) -> tuple[list[dict[str, str]] | None, str | None, str | None]:
    """(messages, None, None) for a valid record, else (None, reason, detail)."""
    if not isinstance(record, dict):
        return None, "not_an_object", type(record).__name__
    if "messages" in record:
        msgs = record["messages"]
        problem = conversation_problem(msgs)
        if problem:
            return None, problem, None
        msgs = [{"role": m["role"], "content": m["content"]} for m in msgs]
        for i, m in enumerate(msgs):
            if m["role"] != "system" and not m["content"].strip():
                return None, "empty_turn", f"message {i} ({m['role']})"
        return msgs, None, None
    if "instruction" in record or "output" in record:
        for f in ("instruction", "output"):
            if f not in record:
                return None, f"missing_field:{f}", None
        for f in ("instruction", "input", "output"):
            if f in record and record[f] is not None and not isinstance(record[f], str):
                return None, f"field_not_string:{f}", type(record[f]).__name__
        instruction, inp, output = record["instruction"] or "", record.get("input") or "", record["output"] or ""
        if not instruction.strip():
            return None, "empty_instruction", None
        if not output.strip():
            return None, "empty_output", None
        user = instruction + ("\n\n" + inp if inp.strip() else "")
        return [{"role": "user", "content": user}, {"role": "assistant", "content": output}], None, None
    return None, "unknown_format", ",".join(sorted(map(str, record))[:8])


def _raw_records(path: Path) -> Iterator[tuple[int, bytes | None, Any, str | None]]:
    """(record number, raw bytes, parsed value, error reason) for each record of a file."""
    data = path.read_bytes()
    if path.suffix.lower() == ".json":
        try:
            value = json.loads(data.decode("utf-8"))
        except UnicodeDecodeError as e:
            yield 1, data, None, f"not_utf8:{e.start}"
            return
        except json.JSONDecodeError as e:
            yield 1, data, None, f"bad_json:{e.msg} at line {e.lineno}"
            return
        for i, item in enumerate(value if isinstance(value, list) else [value], 1):
            yield i, None, item, None
        return
    for lineno, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            yield lineno, line, json.loads(line.decode("utf-8")), None
        except UnicodeDecodeError as e:
            yield lineno, line, None, f"not_utf8:{e.start}"
        except json.JSONDecodeError as e:
            yield lineno, line, None, f"bad_json:{e.msg}"


@dataclass
class LoadResult:
    examples: list[Example] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    records: int = 0


def load_instruction_file(path: str | os.PathLike, *, name: str, max_chars: int = 0) -> LoadResult:
    """Examples of one user file, in file order, with an audit row per rejected record.
    `max_chars` > 0 rejects a conversation longer than that (characters of all contents) as
    too_long; ids are `<name>:<record number>` (line number for JSONL)."""
    out = LoadResult()
    p = Path(path)
    if not p.is_file():
        out.audit.append(audit_row("missing_file", source=name, path=str(path)))
        return out
    seen: dict[str, str] = {}
    for num, raw, value, error in _raw_records(p):
        out.records += 1
        size = len(raw) if raw is not None else len(json.dumps(value, ensure_ascii=False).encode())
        where = f"{path}:{num}"
        if error:
            reason, _, detail = error.partition(":")
            out.audit.append(audit_row(reason, source=name, path=where, detail=detail or None, size=size))
            continue
        msgs, reason, detail = record_to_messages(value)
        if msgs is None:
            out.audit.append(audit_row(reason, source=name, path=where, detail=detail, size=size))
            continue
        chars = sum(len(m["content"]) for m in msgs)
        if max_chars and chars > max_chars:
            out.audit.append(audit_row("too_long", source=name, path=where, detail=f"{chars} chars > {max_chars}", size=size))
            continue
        key = content_key(msgs)
        if key in seen:
            out.audit.append(audit_row("duplicate", source=name, path=where, detail=f"same as {seen[key]}", size=size))
            continue
        seen[key] = where
        out.examples.append(Example(id=f"{name}:{num}", source=name, messages=tuple(msgs), path=str(path)))
    return out
