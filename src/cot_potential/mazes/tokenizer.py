"""A word-level tokenizer for the maze format, saved in Hugging Face format (vLLM loads it).

One token per word: the keywords, every coordinate ``0 .. max_size - 1`` and every cost
``c0 .. c{max_size^2}`` (a cost is at most the number of cells). ``end`` is the
end-of-sequence token, so generation stops after the plan; ``<pad>`` pads training batches.
No BOS token: every sequence starts with ``query``. Each token is a word with a leading
space (SentencePiece-style ``▁word`` pieces): any run of tokens decodes to `` word word ...``, so
the text of a prefix plus the text of its continuation is exactly the text of the whole, and
a cut never glues two words together (``3`` + ``4`` is `` 3 4``, not ``34``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

KEYWORDS = ("query", "start", "goal", "wall", "reasoning", "create", "close", "solution", "plan", "end")
PAD, UNK, EOS = "<pad>", "<unk>", "end"
SPACE = "\u2581"  # the piece marker of a word that follows a space


def vocabulary(max_size: int) -> list[str]:
    """All tokens, in id order, for grids of up to ``max_size`` x ``max_size`` cells."""
    if max_size < 2:
        raise ValueError(f"max_size must be >= 2, got {max_size}")
    return [PAD, UNK, *KEYWORDS, *map(str, range(max_size)), *(f"c{i}" for i in range(max_size * max_size + 1))]


def build_tokenizer(max_size: int, model_max_length: int) -> Any:
    """A ``PreTrainedTokenizerFast`` over the maze vocabulary."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    def piece(word: str) -> str:
        return word if word in (PAD, UNK) else SPACE + word

    vocab = {piece(word): i for i, word in enumerate(vocabulary(max_size))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPACE, prepend_scheme="always", split=True)
    core.decoder = decoders.Replace(SPACE, " ")
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token=PAD, unk_token=UNK,
                                   eos_token=piece(EOS), model_max_length=model_max_length,
                                   clean_up_tokenization_spaces=False)


def save_tokenizer(max_size: int, model_max_length: int, out_dir: str | Path) -> Path:
    tokenizer = build_tokenizer(max_size, model_max_length)
    tokenizer.save_pretrained(str(out_dir))
    return Path(out_dir)


def tokenizer_job(out_dir: str, *, max_size: int, max_length: int) -> None:
    import logging

    save_tokenizer(max_size, max_length, out_dir)
    logging.getLogger(__name__).info("maze tokenizer for grids up to %dx%d: %d tokens", max_size, max_size,
                                     len(vocabulary(max_size)))
