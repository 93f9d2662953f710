// Compiles every contracts/schema/*.schema.json with Ajv's JSON Schema 2020-12 validator in
// strict mode (unknown keywords, ignored keywords and loose types are errors) plus ajv-formats.
//
//   node check_schemas.mjs SCHEMA_DIR              -> prints "ok <file>" per schema, exit 1 on any error
//   node check_schemas.mjs SCHEMA_DIR < docs.jsonl -> also validates each line against
//                                                    event.schema.json, printing true/false per line
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const dir = process.argv[2];
const withCorpus = process.argv.includes("--corpus");
const ajv = new Ajv2020({ strict: true, allErrors: false });
addFormats(ajv);

let failed = false;
const validators = {};
for (const file of readdirSync(dir).filter((f) => f.endsWith(".schema.json")).sort()) {
  try {
    const schema = JSON.parse(readFileSync(join(dir, file), "utf8"));
    validators[file] = ajv.compile(schema);
    console.log(`ok ${file}`);
  } catch (err) {
    failed = true;
    console.log(`error ${file}: ${err.message}`);
  }
}

if (withCorpus && !failed) {
  const validate = validators["event.schema.json"];
  const lines = readFileSync(0, "utf8").split("\n").filter((line) => line.length > 0);
  for (const line of lines) {
    console.log(validate(JSON.parse(line)) ? "true" : "false");
  }
}
process.exit(failed ? 1 : 0);
