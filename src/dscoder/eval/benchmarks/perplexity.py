"""Perplexity of the model on pack's validation blocks (`evaluate.perplexity_sequences` of
them): no prompt, no generation; exp of the mean next-token loss."""

from __future__ import annotations

import math

from dscoder.eval.benchmarks import Benchmark, Context, skipped


class Perplexity(Benchmark):
    name = "perplexity"

    def run(self, ctx: Context) -> dict:
        import numpy as np
        import torch

        from dscoder.train.data import TokenBlocks, read_meta
        from dscoder.train.loop import n_targets, token_loss_sum

        s = ctx.settings
        if s.perplexity_sequences == 0:
            return skipped("evaluate.perplexity_sequences is 0")
        if not (ctx.tokens_dir / "meta.json").is_file():
            return skipped(f"no validation tokens in {ctx.tokens_dir}")
        meta = read_meta(str(ctx.tokens_dir))
        if int(meta["vocab_size"]) != len(ctx.tokenizer):
            return skipped(f"validation tokens use a {meta['vocab_size']}-id vocabulary, the model's "
                           f"tokenizer has {len(ctx.tokenizer)}: not the pipeline's tokenizer")
        blocks = TokenBlocks(str(ctx.tokens_dir), "val", int(meta["seq_len"]))
        n = min(s.perplexity_sequences, len(blocks))
        if n == 0:
            return skipped("no whole validation block")
        device = next(ctx.model.parameters()).device
        total, count = 0.0, 0
        with torch.no_grad():
            for start in range(0, n, s.batch_size):
                batch = blocks.get(np.arange(start, min(n, start + s.batch_size)))
                total += float(token_loss_sum(ctx.model, batch, device))
                count += n_targets([batch])
        loss = total / max(count, 1)
        return {"status": "ok", "val_loss": loss, "perplexity": math.exp(min(loss, 700.0)), "sequences": n,
                "seq_len": blocks.seq_len, "tokens": count}
