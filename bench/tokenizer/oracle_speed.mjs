// Encode throughput of Hugging Face tokenizers (the Rust library through its npm binding)
// on one file, one call for the whole file and one call per line, measured the same way as
// tokenizer_speed.cpp. Usage: node oracle_speed.mjs ORACLE_DIR TOKENIZER_JSON TEXT_FILE [REPEATS]
// ORACLE_DIR is a folder where `npm install tokenizers@0.23.2` has been run.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const [oracleDir, tokenizerPath, textPath, repeatsArg] = process.argv.slice(2);
if (!textPath) {
  console.error("usage: node oracle_speed.mjs ORACLE_DIR TOKENIZER_JSON TEXT_FILE [REPEATS]");
  process.exit(2);
}
const repeats = Math.max(1, Number(repeatsArg ?? 5));
const require = createRequire(path.join(path.resolve(oracleDir), "package.json"));
const { Tokenizer } = require("tokenizers");
const json = fs.readFileSync(tokenizerPath, "utf8");
const bytes = fs.readFileSync(textPath);
const text = bytes.toString("utf8");
const lines = text.match(/[^\n]*\n|[^\n]+$/g) ?? [];

function fnv1a(ids) {
  let hash = 0xcbf29ce484222325n;
  for (const id of ids) {
    for (let shift = 0; shift < 32; shift += 8) {
      hash ^= BigInt((id >>> shift) & 0xff);
      hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn;
    }
  }
  return hash.toString(16).padStart(16, "0");
}

async function measure(mode, encode) {
  const seconds = [];
  let ids = [];
  for (let run = 0; run < repeats; run++) {
    const start = process.hrtime.bigint();
    ids = await encode();
    seconds.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  const first = seconds[0];
  seconds.sort((a, b) => a - b);
  const median = seconds[Math.floor(seconds.length / 2)];
  console.log(JSON.stringify({ impl: "hf-tokenizers", mode, bytes: bytes.length, ids: ids.length, fnv1a: fnv1a(ids),
    first_mb_s: +(bytes.length / first / 1e6).toFixed(2), median_mb_s: +(bytes.length / median / 1e6).toFixed(2) }));
}

{
  const tokenizer = Tokenizer.fromString(json);
  await measure("whole", async () => Array.from((await tokenizer.encode(text, null, { addSpecialTokens: false })).getIds()));
}
{
  const tokenizer = Tokenizer.fromString(json);
  await measure("lines", async () => {
    const all = [];
    for (const line of lines) {
      const encoding = await tokenizer.encode(line, null, { addSpecialTokens: false });
      for (const id of encoding.getIds()) all.push(id);
    }
    return all;
  });
}
