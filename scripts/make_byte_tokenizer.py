#!/usr/bin/env python3
"""Write a byte-level tokenizer.json: one token per byte (ids 0-255), no merges.

The format is Hugging Face tokenizers' JSON: a BPE model over the GPT-2 byte-to-character
table with a ByteLevel pre-tokenizer and decoder, so any tool that reads tokenizer.json
maps text to its UTF-8 bytes and back. Usage: make_byte_tokenizer.py OUT/tokenizer.json
"""
import json
import sys


def byte_to_char():
    """Return the GPT-2 table: printable bytes map to themselves, the rest to code points 256+."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    table = {}
    extra = 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_byte_tokenizer.py OUT/tokenizer.json")
    table = byte_to_char()
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                  "use_regex": False}
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": None,
        "pre_tokenizer": byte_level,
        "post_processor": None,
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False,
                  "vocab": {table[b]: b for b in range(256)}, "merges": []},
    }
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        json.dump(tokenizer, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
