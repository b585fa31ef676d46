"""Fill-in-the-Middle (Sec. 3.1): which unit is transformed, the layouts, and a measure.

The unit (`unit`) is what one FIM example is cut from:

  document  the paper's words taken literally: each repository document, before packing. A
            document is a whole repository (tens of thousands of tokens), so prefix, suffix
            and middle fall into different training windows and the model almost never sees
            a complete example; kept to reproduce that behaviour exactly.
  file      each file block of the document (its path header stays in front as ordinary
            text), before packing, the other files staying around it as context: repo-level
            FIM as in StarCoder2 and Qwen2.5-Coder. The middle ends with EOS, as at the end of
            a document, so an infilling prompt's answer ends the same way.
  window    context-level FIM (Bavarian et al. 2022, Sec. 3): applied by the packer to a
            training window after documents are joined, so every example fits in its window
            (see `dscoder.tokens.pack`); cut points are token boundaries that are also character
            boundaries, so the index stays exact without re-encoding.

With probability `rate` a unit is split and rearranged; the choice and the cut points are a
pure function of (seed, unit key), so a unit gets the same transform whatever shard or
process encodes it. Layouts (`text` = prefix+middle+suffix):

  PSM (the paper's mode): <fim_begin> prefix <fim_hole> suffix <fim_end> middle
  SPM: <fim_begin> <fim_hole> suffix <fim_end> prefix middle
       the "variant 2" of Bavarian et al. 2022 (arXiv 2207.14255, Sec. 3) used by StarCoder's
       Megatron FIM (`[PRE, SUF] + suffix + [MID] + prefix + middle`) and Code Llama, with
       PRE/SUF/MID = fim_begin/fim_hole/fim_end: prefix and middle stay adjacent, so the
       model continues the prefix exactly as in ordinary completion.
  MSP: K spans masked T5-style (Raffel et al. 2020), text = c0 m0 c1 m1 ... m_{K-1} cK:
       <fim_begin> c0 <msp_0> c1 <msp_1> ... cK <fim_end> <msp_0> m0 <msp_1> m1 ...
       the paper names MSP but gives no details (span count, lengths): K = `msp_spans`,
       the 2K cut points uniform like PSM's two.
The packer appends EOS after every document (`...middle<eos>` in PSM, as Sec. 3.1 writes).
Cut points are uniform over 0..len(text) (StarCoder's `randint(0, len+1, 2)`, sorted), so any
piece may be empty.

`transform` returns the layout as items: a sentinel name (str, a key of
`tokenizer.SPECIAL_TOKENS`) or a `Piece` (role and character range of the original text),
so the packer can encode each piece separately and record exactly which characters of the
document each token covers. `undo` inverts the *rendered* sequence (sentinels and piece texts,
not the recorded ranges), which the round-trip property test checks.

`complete_examples` measures what the model sees: which training windows of a written token
file hold a complete example. It reads token ids only, never the packer's bookkeeping.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Mapping, Sequence, Union

import numpy as np

from dscoder.config import Settings, check
from dscoder.tokens.tokenizer import N_MSP_SENTINELS

Mode = Literal["psm", "spm", "msp"]
Unit = Literal["file", "window", "document"]
UNITS = ("file", "window", "document")
#: Roles a piece of a document can play; "whole" is an untransformed document.
ROLES = ("whole", "prefix", "middle", "suffix", "context", "span")


@dataclass(frozen=True, kw_only=True)
class PackFimSettings(Settings):
    section: ClassVar[str] = "fim"

    rate: float = 0.5
    """Probability that a unit is transformed (Sec. 3.1, Fig. 3: 0.5 in PSM mode)."""
    unit: Unit = "file"
    """What one example is cut from: file (each file block, in its repository's context),
    window (each training window, after packing) or document (the whole repository document,
    the paper's literal wording; see the module docstring)."""
    mode: Mode = "psm"
    """psm (the paper's choice), spm or msp (the Fig. 3 ablations)."""
    spm_share: float = 0.0
    """mode=psm only: share of the transformed documents emitted as SPM instead (StarCoder-style
    joint PSM+SPM training); 0 is pure PSM as in the paper."""
    msp_spans: int = 3
    """mode=msp only: masked spans per document (not given by the paper)."""
    seed: int = 0
    """With the document id, fixes every choice; change it to draw another set of transforms."""

    def validate(self) -> None:
        check(0.0 <= self.rate <= 1.0, "fim.rate", f"must be in [0, 1], got {self.rate}")
        check(self.mode in ("psm", "spm", "msp"), "fim.mode", f"must be psm, spm or msp, got {self.mode!r}")
        check(self.unit in UNITS, "fim.unit", f"must be one of {', '.join(UNITS)}, got {self.unit!r}")
        check(0.0 <= self.spm_share <= 1.0, "fim.spm_share", f"must be in [0, 1], got {self.spm_share}")
        check(self.spm_share == 0.0 or self.mode == "psm", "fim.spm_share",
              f"only applies to mode=psm (mode is {self.mode!r}); set it to 0")
        check(1 <= self.msp_spans <= N_MSP_SENTINELS, "fim.msp_spans",
              f"must be in [1, {N_MSP_SENTINELS}] (the tokenizer's MSP sentinels), got {self.msp_spans}")


@dataclass(frozen=True)
class Piece:
    """text[start:end] of the original document, playing `role`; `span` numbers MSP pieces."""

    role: str
    start: int
    end: int
    span: int = -1


Item = Union[str, Piece]


def _uniforms(seed: int, doc_id: str, n: int) -> list[float]:
    """n floats in [0, 1) from blake2b(seed, doc id): portable across Python/numpy versions."""
    out: list[float] = []
    counter = 0
    while len(out) < n:
        h = hashlib.blake2b(f"{seed}\0{doc_id}\0{counter}".encode(), digest_size=64).digest()
        out.extend((int.from_bytes(h[i: i + 8], "little") >> 11) / (1 << 53) for i in range(0, 64, 8))
        counter += 1
    return out[:n]


def _cut(u: float, points: Sequence[int]) -> int:
    """The cut point drawn by u among the allowed positions (uniform, like StarCoder's
    `randint(0, len+1)` over characters when `points` is every position)."""
    return points[min(int(u * len(points)), len(points) - 1)]


def decide(unit_key: str, p: PackFimSettings) -> tuple[str, list[float]]:
    """The unit's mode ("none", "psm", "spm" or "msp") and the draws its cut points use."""
    u = _uniforms(p.seed, unit_key, 2 + 2 * max(p.msp_spans, 1))
    if u[0] >= p.rate:
        return "none", u
    return ("spm" if p.mode == "spm" or (p.mode == "psm" and u[1] < p.spm_share) else p.mode), u


def layout(points: Sequence[int], mode: str, u: Sequence[float], p: PackFimSettings) -> list[Item]:
    """Items for the range points[0]..points[-1], cut only at `points` (sorted, every allowed
    cut position, both ends included), for a mode and draws chosen by `decide`."""
    start, end = points[0], points[-1]
    if mode == "none":
        return [Piece("whole", start, end)]
    if mode == "msp":
        cuts = [start, *sorted(_cut(x, points) for x in u[2: 2 + 2 * p.msp_spans]), end]
        context = [Piece("context", cuts[2 * k], cuts[2 * k + 1], k) for k in range(p.msp_spans + 1)]
        spans = [Piece("span", cuts[2 * k + 1], cuts[2 * k + 2], k) for k in range(p.msp_spans)]
        items: list[Item] = ["fim_begin", context[0]]
        for k in range(p.msp_spans):
            items += [f"msp_{k}", context[k + 1]]
        items.append("fim_end")
        for k in range(p.msp_spans):
            items += [f"msp_{k}", spans[k]]
        return items
    a, b = sorted(_cut(x, points) for x in u[2:4])
    pre, mid, suf = Piece("prefix", start, a), Piece("middle", a, b), Piece("suffix", b, end)
    if mode == "psm":
        return ["fim_begin", pre, "fim_hole", suf, "fim_end", mid]
    return ["fim_begin", "fim_hole", suf, "fim_end", pre, mid]


def arrange(points: Sequence[int], unit_key: str, p: PackFimSettings) -> tuple[str, list[Item]]:
    """(mode, items) of one unit: `decide`, then `layout`."""
    mode, u = decide(unit_key, p)
    return mode, layout(points, mode, u, p)


def transform(n_chars: int, doc_id: str, p: PackFimSettings) -> tuple[str, list[Item]]:
    """Document unit: (mode, items) for a document of `n_chars` characters, cut at any
    character. Only the length is needed: pieces are character ranges."""
    return arrange(range(n_chars + 1), doc_id, p)


def overhead(mode: str, p: PackFimSettings) -> int:
    """Tokens a transformed unit gains: its sentinels and the EOS that ends the middle."""
    return 0 if mode == "none" else 4 if mode in ("psm", "spm") else 2 * p.msp_spans + 3


def transform_files(n_chars: int, files: Sequence[Mapping[str, Any]], doc_id: str,
                    p: PackFimSettings) -> tuple[list[str], list[Item]]:
    """File unit: (mode of each non-empty file block, items) for a document whose file blocks
    are `files` (REPOS spans, in order). A transformed block keeps its path header in front
    and has its content rearranged in place; its middle ends with "eos" unless the document
    ends right there (the packer's own EOS then ends it). Text outside blocks stays whole."""
    modes: list[str] = []
    items: list[Item] = []
    pos = 0
    for f in files:
        s, e = f["start"], f["end"]
        if s == e:
            continue
        if s > pos:
            items.append(Piece("whole", pos, s))
        body = min(s + f.get("header_chars", 0), e)
        mode, block = arrange(range(body, e + 1), f"{doc_id}\0file\0{f['path']}", p)
        modes.append(mode)
        if mode == "none":
            items.append(Piece("whole", s, e))
        else:
            if body > s:
                items.append(Piece("whole", s, body))
            items += block
            if e < n_chars:
                items.append("eos")
        pos = e
    if pos < n_chars or not items:
        items.append(Piece("whole", pos, n_chars))
    return modes, items


class Sentinel(str):
    """A sentinel name in a rendered layout (a str subclass, so text is never mistaken for one)."""


def render(items: Sequence[Item], text: str) -> list[str]:
    """The layout as the model sees it: each piece's text, each sentinel as a `Sentinel`."""
    return [Sentinel(x) if isinstance(x, str) else text[x.start: x.end] for x in items]


def undo(rendered: Sequence[str]) -> str:
    """The original document from a rendered layout (text entries and `Sentinel`s); raises
    ValueError if the sentinels form none of the layouts above."""
    markers: list[str] = []
    runs: list[list[str]] = [[]]  # runs[i]: the text after the i-th sentinel (runs[0]: before any)
    for x in rendered:
        if isinstance(x, Sentinel):
            markers.append(str(x))
            runs.append([])
        else:
            runs[-1].append(x)
    text = ["".join(r) for r in runs]
    if not markers:
        return text[0]
    if text[0]:
        raise ValueError("text before the first sentinel")
    if markers == ["fim_begin", "fim_hole", "fim_end"]:
        # PSM: prefix, suffix, middle.  SPM: "", suffix, prefix+middle.  Either way:
        return text[1] + text[3] + text[2]
    k = (len(markers) - 2) // 2
    expect = ["fim_begin", *[f"msp_{i}" for i in range(k)], "fim_end", *[f"msp_{i}" for i in range(k)]]
    if k < 1 or markers != expect:
        raise ValueError(f"unknown sentinel layout {markers}")
    context, spans = text[1: k + 2], text[k + 3:]
    if text[k + 2]:
        raise ValueError("text between <fim_end> and the first span sentinel")
    return "".join(c + m for c, m in zip(context, spans)) + context[k]


def complete_examples(tokens: np.ndarray, seq_len: int, special_ids: Mapping[str, int]) -> np.ndarray:
    """For each whole window tokens[i*seq_len:(i+1)*seq_len], whether it holds a complete FIM
    example: <fim_begin>, one or more hole sentinels (<fim_hole>, or MSP span sentinels),
    <fim_end>, and then the EOS that ends the middle, with no BOS, EOS or <fim_begin> between
    them. Reads only the token ids, so it measures the written file, not the packer's intent."""
    n_windows = int(tokens.size) // seq_len
    out = np.zeros(n_windows, dtype=bool)
    begin, end, eos = special_ids["fim_begin"], special_ids["fim_end"], special_ids["eos"]
    holes = [i for k, i in special_ids.items() if k == "fim_hole" or k.startswith("msp_")]
    stops = [special_ids["bos"], eos, begin]
    watched = np.asarray([begin, end, *holes, *stops], dtype=np.int64)
    step = max(1, (1 << 24) // seq_len) * seq_len  # bounded memory on any file size
    for lo in range(0, n_windows * seq_len, step):
        chunk = np.asarray(tokens[lo: min(lo + step, n_windows * seq_len)])
        pos = np.flatnonzero(np.isin(chunk, watched))
        kinds = chunk[pos]
        for j in np.flatnonzero(kinds == begin):
            k = j + 1
            while k < len(pos) and kinds[k] in holes:
                k += 1
            if k == j + 1 or k >= len(pos) or kinds[k] != end:
                continue
            k += 1
            while k < len(pos) and kinds[k] in holes:  # MSP: span sentinels before each span
                k += 1
            if k < len(pos) and kinds[k] == eos and pos[j] // seq_len == pos[k] // seq_len:
                out[(lo + pos[j]) // seq_len] = True
    return out
