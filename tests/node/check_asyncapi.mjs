// Parses an AsyncAPI document with the official parser (@asyncapi/parser: schema validation
// plus its built-in Spectral rules) and prints every diagnostic, one per line.
// Exit 0 only when the document parsed and nothing was reported at error or warning level.
//
//   node check_asyncapi.mjs contracts/schema/asyncapi.json
import { readFileSync } from "node:fs";
import { Parser } from "@asyncapi/parser";

const SEVERITY = ["error", "warning", "info", "hint"];
const file = process.argv[2];
const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(file, "utf8"), { source: file });
for (const d of diagnostics) {
  console.log(`${SEVERITY[d.severity]} ${d.code} at /${d.path.join("/")}: ${d.message}`);
}
const blocking = diagnostics.filter((d) => d.severity <= 1);
if (document === undefined || blocking.length > 0) {
  console.log(`refused: ${blocking.length} errors or warnings`);
  process.exit(1);
}
const ops = document.operations().all().length;
const channels = document.channels().all().length;
const messages = document.components().messages().all().length;
console.log(`ok ${file}: AsyncAPI ${document.version()}, ${channels} channels, ${messages} messages, ${ops} operations`);
