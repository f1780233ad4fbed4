import json
cases = ["", "hello world", "Hello [MASK] there", "x   [MASK]y", "[MASK][MASK]", "a <tag>   b", "<tag>\n\nz",
 "word words sword word_ word.", "ab abc cab ab. _ab", "\ufb01x fix \ufb01 fi x", "hello", "x [BOTH]  y", "  [BOTH]  ",
 "caf\u00e9 cafe\u0301", "<|endoftext|> tail", "a<|padding|>", "  leading", "trailing  ", "\u00c5 \u212b A\u030a",
 "abc abcd cde dede ab ba", "zzz abz", "ééé 日本", "[UNK]x<x>y", "abc\n\tab", "the quick brown fox",
 "encyclopedia encyclopedias", " Hello world", "Ｆｕｌｌｗｉｄｔｈ ①②", "x" * 30 + " y", "ab  cd"]
for c in cases: print(json.dumps(c, ensure_ascii=True))
