"""Fill-in-the-Middle at the document level, before packing (Sec. 3.1).

With probability `rate` a document is split at character positions and rearranged; the
choice and the cut points are a pure function of (seed, document id), so a document gets the
same transform whatever shard or process encodes it. Layouts (`text` = prefix+middle+suffix):

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
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal, Sequence, Union

from dscoder.config import Settings, check
from dscoder.tokenizer import N_MSP_SENTINELS

Mode = Literal["psm", "spm", "msp"]
#: Roles a piece of a document can play; "whole" is an untransformed document.
ROLES = ("whole", "prefix", "middle", "suffix", "context", "span")


@dataclass(frozen=True, kw_only=True)
class FimParams(Settings):
    rate: float = 0.5
    """Probability that a document is transformed (Sec. 3.1, Fig. 3: 0.5 in PSM mode)."""
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


def _cuts(us: Sequence[float], n_chars: int) -> list[int]:
    return sorted(min(int(u * (n_chars + 1)), n_chars) for u in us)


def transform(n_chars: int, doc_id: str, p: FimParams) -> tuple[str, list[Item]]:
    """(mode, items) for a document of `n_chars` characters; mode is "none", "psm", "spm" or
    "msp". Only the length is needed: pieces are character ranges."""
    u = _uniforms(p.seed, doc_id, 2 + 2 * max(p.msp_spans, 1))
    if u[0] >= p.rate:
        return "none", [Piece("whole", 0, n_chars)]
    mode = "spm" if p.mode == "spm" or (p.mode == "psm" and u[1] < p.spm_share) else p.mode
    if mode == "msp":
        cuts = [0, *_cuts(u[2: 2 + 2 * p.msp_spans], n_chars), n_chars]
        context = [Piece("context", cuts[2 * k], cuts[2 * k + 1], k) for k in range(p.msp_spans + 1)]
        spans = [Piece("span", cuts[2 * k + 1], cuts[2 * k + 2], k) for k in range(p.msp_spans)]
        items: list[Item] = ["fim_begin", context[0]]
        for k in range(p.msp_spans):
            items += [f"msp_{k}", context[k + 1]]
        items.append("fim_end")
        for k in range(p.msp_spans):
            items += [f"msp_{k}", spans[k]]
        return mode, items
    a, b = _cuts(u[2:4], n_chars)
    pre, mid, suf = Piece("prefix", 0, a), Piece("middle", a, b), Piece("suffix", b, n_chars)
    if mode == "psm":
        return mode, ["fim_begin", pre, "fim_hole", suf, "fim_end", mid]
    return mode, ["fim_begin", "fim_hole", suf, "fim_end", pre, mid]


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
