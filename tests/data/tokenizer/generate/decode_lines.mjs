import fs from "node:fs";
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const { Tokenizer } = require("tokenizers");
const t = Tokenizer.fromString(fs.readFileSync(process.argv[2], "utf8"));
for (const l of fs.readFileSync(0, "utf8").split("\n").filter((x) => x)) {
  const ids = JSON.parse(l);
  console.log(JSON.stringify([await t.decode(ids, false), await t.decode(ids, true)]));
}
