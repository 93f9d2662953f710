#!/usr/bin/env node
// Publish a task to the Orchestra bus and follow its deployment status to the end, using only
// the published contracts (contracts/schema/) and the official `nats` package.
//
//   NATS_URL=nats://127.0.0.1:4222 node submit.mjs --project examples/fastapi-service \
//     --text "Containerize the Python FastAPI application" [--output out/api] [--resend]
//
// Exit status: 0 ready/deployed, 1 failed/rolled_back, 2 bad input, 3 NATS unreachable,
// 4 no terminal status within --timeout seconds.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { parseArgs } from "node:util";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { connect } from "nats";

const STREAM = "ORCHESTRA_EVENTS";
const TERMINAL = { ready: 0, deployed: 0, failed: 1, rolled_back: 1 };
const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

const { values: args } = parseArgs({
  options: {
    project: { type: "string" },
    text: { type: "string", default: "Containerize the Python FastAPI application" },
    output: { type: "string" },
    timeout: { type: "string", default: "300" },
    resend: { type: "boolean", default: false },
    "schema-dir": { type: "string", default: new URL("../../../contracts/schema/", import.meta.url).pathname },
  },
});

function fail(message, code) {
  console.error(`error: ${message}`);
  process.exit(code);
}

/** A ULID: 48-bit millisecond time + 80 random bits in Crockford base32 (sorts by time). */
function ulid() {
  let value = (BigInt(Date.now()) << 80n) | BigInt(`0x${randomBytes(10).toString("hex")}`);
  let out = "";
  for (let i = 0; i < 26; i++) {
    out = CROCKFORD[Number(value & 31n)] + out;
    value >>= 5n;
  }
  return out;
}

/** Validate like every strict JSON Schema 2020-12 validator would, before anything is sent. */
function validator(name) {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats(ajv);
  return ajv.compile(JSON.parse(readFileSync(`${args["schema-dir"]}/${name}`, "utf8")));
}

if (args.project === undefined) fail("--project is required (a path inside the orchestra's workspace)", 2);

const taskId = ulid();
const event = {
  id: ulid(),
  type: "task.requested",
  schema_version: 1,
  task_id: taskId,
  source: { agent: "node-client", instance: `${hostname()}-${process.pid}`.slice(0, 128) },
  occurred_at: new Date().toISOString(), // RFC 3339 with milliseconds and Z
  payload: {
    text: args.text,
    project: args.project,
    // Without output_dir the files are written into the project folder itself.
    ...(args.output ? { output_dir: args.output } : {}),
  },
};
const validTask = validator("task.requested.schema.json");
if (!validTask(event)) {
  const first = validTask.errors[0];
  fail(`invalid task.requested at ${first.instancePath || "/"}: ${first.message}`, 2);
}

let nc;
try {
  nc = await connect({
    servers: process.env.NATS_URL ?? "nats://127.0.0.1:4222",
    // On a secured deployment: NATS_USER=client and NATS_PASSWORD (see README.md).
    user: process.env.NATS_USER,
    pass: process.env.NATS_PASSWORD,
    name: "orchestra-node-client",
    inboxPrefix: "_INBOX_client", // the reply subjects the `client` user may subscribe to
  });
} catch (err) {
  fail(`NATS unreachable: ${err.message}`, 3);
}
const js = nc.jetstream();

// JetStream publish: resolves with the PubAck once the stream stored the event. The same
// Nats-Msg-Id within the stream's duplicate window is stored once (duplicate: true).
const data = JSON.stringify(event);
const subject = `orchestra.evt.task.requested.${taskId}`;
for (let attempt = 0; attempt < (args.resend ? 2 : 1); attempt++) {
  const ack = await js.publish(subject, data, { msgID: event.id, expect: { streamName: STREAM } });
  console.log(`published ${event.id} task ${taskId}: stream ${ack.stream} seq ${ack.seq} duplicate ${ack.duplicate}`);
}

// An ordered consumer: ephemeral, in order, no acks, recreated by the library on a gap;
// it starts at the beginning of the stream, so no status published before it exists is missed.
const consumer = await js.consumers.get(STREAM, {
  filterSubjects: `orchestra.evt.status.changed.${taskId}`,
  name_prefix: "watch-",
});
const messages = await consumer.consume();
const timer = setTimeout(() => {
  console.log(`timeout: no terminal status within ${args.timeout}s`);
  messages.stop();
}, Number(args.timeout) * 1000);

let exitCode = 4;
for await (const msg of messages) {
  const status = msg.json().payload;
  console.log(`status ${status.state} by ${status.agent}${status.reason ? `: ${status.reason}` : ""}`);
  if (status.state in TERMINAL) {
    console.log(`terminal ${status.state}${status.output_dir ? ` files in ${status.output_dir}` : ""}`);
    exitCode = TERMINAL[status.state];
    break;
  }
}
clearTimeout(timer);
await nc.close();
process.exit(exitCode);
