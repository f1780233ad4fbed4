// Usage: node oracle2.mjs TOKENIZER_JSON < inputs.jsonl
// Prints one JSON object per input with ids (add_special_tokens false and true), tokens and
// decode with skip_special_tokens false and true, from HF Rust tokenizers.
import fs from "node:fs";
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const { Tokenizer } = require("tokenizers");
const t = Tokenizer.fromString(fs.readFileSync(process.argv[2], "utf8"));
const lines = fs.readFileSync(0, "utf8").split("\n").filter((l) => l.length);
for (const l of lines) {
  const text = JSON.parse(l);
  const e = await t.encode(text, null, { addSpecialTokens: false });
  const e2 = await t.encode(text, null, { addSpecialTokens: true });
  const ids = Array.from(e.getIds());
  console.log(JSON.stringify({ text, ids, tokens: e.getTokens(), ids_with_special: Array.from(e2.getIds()),
    decoded: await t.decode(ids, false), decoded_skip_special: await t.decode(ids, true) }));
}
