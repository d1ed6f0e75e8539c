"""Sampling from an RNN: temperature, top-k, a stop id, a banned id; and the hybrid's spelling
of the `<unk>` words it samples, so its samples contain new words rather than `<unk>` markers.
Text generation per LM type is `LanguageModel.generate` (lm.py)."""

from __future__ import annotations

import torch

from pipeline.rnn.model import RNNLM
from pipeline.tokenizers.hybrid import HybridTokenizer


@torch.no_grad()
def sample_ids(model: RNNLM, context: list[int], n: int, temperature: float, top_k: int | None,
               gens: list[torch.Generator], stop_id: int | None = None, ban_id: int | None = None) -> list[list[int]]:
    """One sample per generator, as a batch (one forward step for all): up to `n` ids following
    `context` (which starts with the bos unit); a sample ends after stop_id; ban_id is never
    drawn. Each sample draws from its own generator only, so it does not depend on the others."""
    if not gens:  # no samples asked for (train.samples: 0): no batch of zero rows to run
        return []
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    logits, hidden = model(torch.tensor([context] * len(gens), device=device))
    out: list[list[int]] = [[] for _ in gens]
    for _ in range(n):
        last = logits[:, -1].float().cpu() / temperature  # (B, V)
        if ban_id is not None:
            last[:, ban_id] = float("-inf")
        if top_k is not None and top_k < last.shape[1]:
            kth = torch.topk(last, top_k, dim=1).values[:, -1:]
            last = last.masked_fill(last < kth, float("-inf"))
        cdf = torch.softmax(last, dim=-1).cumsum(dim=-1)  # (B, V)
        # Inverse-CDF draws: one uniform per sample from its own generator, looked up in the
        # batch's cumulative distributions at once (multinomial per row: 0.17 ms each at 5k ids).
        # An ended sample draws no more (its row runs on), so a generator's draws are its own.
        live = [b for b, ids in enumerate(out) if not ids or ids[-1] != stop_id]
        u = torch.stack([torch.rand((), generator=gens[b]) for b in live]) * cdf[live, -1]
        drawn = torch.searchsorted(cdf[live], u[:, None], right=True)[:, 0]  # the first id whose cdf > u
        for b, i in zip(live, drawn.tolist()):
            # u < cdf[-1], so i < V but for float rounding; an id of probability 0 (banned, cut by
            # top-k) has no width and is never the first above u
            out[b].append(i if i < cdf.shape[1] else int(cdf[b].argmax()))
        if all(ids[-1] == stop_id for ids in out):
            break
        logits, hidden = model(torch.tensor([[ids[-1]] for ids in out], device=device), hidden)
    model.train(was_training)
    return out


def spell_unknowns(ids: list[int], tok: HybridTokenizer, speller: RNNLM, temperature: float, max_len: int,
                   gen: torch.Generator) -> list[int]:
    """Insert a sampled spelling (`n_words`-offset speller ids, <eow> last, at most `max_len`
    characters) after every <unk>. The spellings are drawn as one batch, each from a generator
    of its own seeded from `gen`."""
    n_unk = ids.count(tok.unk_id)
    seeds = torch.randint(2**62, (n_unk,), generator=gen).tolist()
    spellings = iter(sample_ids(speller, [tok.eow_id], max_len, temperature, None,
                                [torch.Generator().manual_seed(s) for s in seeds], stop_id=tok.eow_id))
    out: list[int] = []
    for i in ids:
        out.append(i)
        if i == tok.unk_id:
            chars = next(spellings)
            if chars[-1] != tok.eow_id:
                chars.append(tok.eow_id)
            out.extend(tok.n_words + c for c in chars)
    return out
