// Delete products through the Partner Catalog Gateway: a signed POST, from Node.js 20.
//
//   node delete-products.mjs [-v] [--idempotency-key KEY] ID ... [-e EXTERNAL_ID ...]
//                                        sign and send one deletion request (retried if need be)
//   node delete-products.mjs --vectors FILE   check a signing vector file, send nothing
//
// Only the built-in fetch, node:crypto and node:fs. See README.md beside it.
import { createHash, createHmac, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";

const DELETIONS_PATH = "/api/v1/partner/stores/products/deletions";
const CREDENTIALS = ["PARTNER_CLIENT_ID", "PARTNER_SECRET", "STORE_CLIENT_ID", "STORE_TOKEN"];
const PROG = (process.argv[1] ?? "delete-products.mjs").split(/[\\/]/).pop();

class UsageError extends Error {}

function usage() {
  throw new UsageError(
    `usage: ${PROG} [-v] [--idempotency-key KEY] ID ... [-e EXTERNAL_ID ...]\n` +
      `       ${PROG} --vectors FILE`,
  );
}

// --- signing -----------------------------------------------------------------------------------

/** Lowercase hex SHA-256 of the raw body bytes. */
function bodySha256(bytes) {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The string to sign: eight lines joined by LF, no trailing newline. */
function stringToSign(p) {
  return [
    p.method.toUpperCase(),
    p.path,
    p.query,
    p.partnerClientId,
    p.storeClientId,
    p.storeToken,
    p.timestamp,
    p.bodyHash,
  ].join("\n");
}

/** Lowercase hex HMAC-SHA256 of the message (UTF-8), keyed with the UTF-8 bytes of the secret. */
function sign(secret, message) {
  return createHmac("sha256", Buffer.from(secret, "utf8"))
    .update(Buffer.from(message, "utf8"))
    .digest("hex");
}

/** The store token as the gateway's AUTH_002 shows it: first four characters of a token longer
 * than eight kept, every other character a star. */
function maskToken(token) {
  const keep = token.length > 8 ? 4 : 0;
  return token.slice(0, keep) + "*".repeat(token.length - keep);
}

/** The string to sign with line 6, the store token, masked. */
function masked(message, token) {
  const lines = message.split("\n");
  lines[5] = maskToken(token);
  return lines.join("\n");
}

// --- live mode ---------------------------------------------------------------------------------

// Answers worth sending again, signed anew with the same idempotency-key and body bytes.
const RETRIED_CODES = ["RATE_001", "SYS_001", "IDEM_002"];
const MAX_ATTEMPTS = 4; // the first attempt and at most three retries

function parseArgs(args) {
  const ids = [];
  const externalIds = [];
  let verbose = false;
  let key = null;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "-e") {
      if (i + 1 >= args.length) usage();
      externalIds.push(args[++i]);
    } else if (arg === "-v" || arg === "--verbose") {
      verbose = true;
    } else if (arg === "--idempotency-key") {
      if (i + 1 >= args.length || !args[i + 1]) usage();
      key = args[++i];
    } else if (arg === "--") {
      ids.push(...args.slice(i + 1));
      break;
    } else if (arg.startsWith("-") && arg !== "-") {
      usage();
    } else {
      ids.push(arg);
    }
  }
  if (ids.length + externalIds.length === 0) usage();
  return { ids, externalIds, verbose, key };
}

function answerJson(answer) {
  try {
    const document = JSON.parse(answer.toString("utf8"));
    return document !== null && typeof document === "object" ? document : {};
  } catch {
    return {};
  }
}

async function deleteProducts(args) {
  const { ids, externalIds, verbose, key: given } = parseArgs(args);
  for (const name of CREDENTIALS) {
    if (!process.env[name]) {
      process.stderr.write(`${PROG}: the environment variable ${name} is not set\n`);
      return 2;
    }
  }
  const { PARTNER_CLIENT_ID, PARTNER_SECRET, STORE_CLIENT_ID, STORE_TOKEN } = process.env;
  const gateway = process.env.GATEWAY_URL || "http://127.0.0.1:8000";
  const url = gateway.replace(/\/$/, "") + DELETIONS_PATH;

  // The body, built once as compact JSON bytes; every attempt hashes and sends these bytes.
  const document = {};
  if (ids.length) document.ids = ids;
  if (externalIds.length) document.externalIds = externalIds;
  const body = Buffer.from(JSON.stringify(document), "utf8");
  const key = given ?? randomUUID();
  process.stderr.write(`idempotency-key: ${key}\n`);

  let response;
  let answer;
  let code;
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const timestamp = String(Date.now()); // Unix time in milliseconds, fresh on every attempt
    const message = stringToSign({
      method: "POST",
      path: DELETIONS_PATH,
      query: "",
      partnerClientId: PARTNER_CLIENT_ID,
      storeClientId: STORE_CLIENT_ID,
      storeToken: STORE_TOKEN,
      timestamp,
      bodyHash: bodySha256(body),
    });
    const signature = sign(PARTNER_SECRET, message);
    if (verbose) {
      process.stderr.write(
        "stringToSign (line 6, the store token, masked as AUTH_002 masks it):\n" +
          `${masked(message, STORE_TOKEN)}\n` +
          `bodyLength: ${body.length}\nbodySha256: ${bodySha256(body)}\n` +
          `x-timestamp: ${timestamp}\nx-signature: ${signature}\n`,
      );
    }
    try {
      response = await fetch(url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-partner-client-id": PARTNER_CLIENT_ID,
          "x-store-client-id": STORE_CLIENT_ID,
          "x-store-token": STORE_TOKEN,
          "x-timestamp": timestamp,
          "x-signature": signature,
          "idempotency-key": key,
        },
        body,
        redirect: "manual", // a redirect would re-send (or drop) the signed body: report it
      });
      answer = Buffer.from(await response.arrayBuffer());
    } catch (error) {
      const reason = error.cause?.message ?? error.message;
      process.stderr.write(`${PROG}: the request to ${url} failed: ${reason}\n`);
      return 1;
    }
    process.stderr.write(`HTTP ${response.status}\n`);
    code = answerJson(answer).error?.code;
    if (!RETRIED_CODES.includes(code) || attempt === MAX_ATTEMPTS) break;
    const header = (response.headers.get("retry-after") ?? "").trim();
    const wait = /^[0-9]+$/.test(header) ? Number(header) : 1; // seconds; one when absent
    process.stderr.write(
      `${code}: retry ${attempt} of ${MAX_ATTEMPTS - 1} in ${wait} s,` +
        " signed anew, same idempotency-key and body\n",
    );
    await new Promise((resolve) => setTimeout(resolve, wait * 1000));
  }
  // The verdict on standard error first, then the body as received (it ends with no newline).
  if (RETRIED_CODES.includes(code)) {
    process.stderr.write(`${code}: giving up after ${MAX_ATTEMPTS} attempts\n`);
  }
  let status = response.ok ? 0 : 1;
  // Processed, but was everything deleted? data.summary.failed says.
  const summary = answerJson(answer).data?.summary;
  if (status === 0 && Number.isInteger(summary?.failed) && summary.failed > 0) {
    process.stderr.write(`${summary.failed} of ${summary.total} entries not deleted (see data.errors)\n`);
    status = 3;
  }
  process.stdout.write(answer);
  return status;
}

// --- vectors mode ------------------------------------------------------------------------------

const FIELDS = [
  "expect",
  "method",
  "path",
  "query",
  "partnerClientId",
  "storeClientId",
  "storeToken",
  "timestamp",
  "body",
  "bodySha256",
  "stringToSign",
  "signature",
];

/** The first line (1-based) where two strings to sign differ, or null. Line 6 is no difference
 * when the expected one is the store token masked, as an AUTH_002 answer shows it. */
function firstDifference(expected, built, token) {
  const want = expected.split("\n");
  const got = built.split("\n");
  for (let line = 1; line <= Math.max(want.length, got.length); line++) {
    if (line > want.length || line > got.length) return line;
    const a = want[line - 1];
    if (a !== got[line - 1] && !(line === 6 && a === maskToken(token))) return line;
  }
  return null;
}

/** What is wrong with one vector case (nothing when it passes). */
function checkCase(c) {
  const problems = FIELDS.filter((f) => typeof c[f] !== "string").map((f) => `missing "${f}"`);
  const secrets = c.secrets;
  if (!Array.isArray(secrets) || !secrets.length || !secrets.every((s) => typeof s === "string")) {
    problems.push('"secrets" is not a list of strings');
  }
  if (problems.length) return problems;

  const bodyHash = bodySha256(Buffer.from(c.body, "utf8"));
  if (bodyHash !== c.bodySha256) {
    problems.push(`bodySha256 is ${c.bodySha256}, the body hashes to ${bodyHash}`);
  }

  const message = stringToSign({ ...c, bodyHash });
  const line = firstDifference(c.stringToSign, message, c.storeToken);
  if (line !== null) {
    problems.push(`stringToSign differs from the one built from the inputs at line ${line}`);
  }

  const signature = c.signature.toLowerCase();
  const matched = secrets.findIndex((secret) => sign(secret, message) === signature);
  if (c.expect === "valid") {
    if (matched < 0) problems.push(`signature matches none of the ${secrets.length} secrets`);
  } else if (c.expect === "invalid") {
    if (matched >= 0) {
      problems.push(`signature matches secrets[${matched}] but the case expects invalid`);
    }
  } else {
    problems.push(`expect is "${c.expect}", not valid or invalid`);
  }
  return problems;
}

function checkVectors(file) {
  let cases;
  try {
    cases = JSON.parse(readFileSync(file, "utf8")).cases;
    if (!Array.isArray(cases)) throw new Error('no "cases" array');
  } catch (error) {
    process.stderr.write(`${PROG}: cannot read ${file}: ${error.message}\n`);
    return 2;
  }
  let passed = 0;
  let failed = 0;
  const out = [];
  cases.forEach((c, index) => {
    const kase = c !== null && typeof c === "object" ? c : {};
    const name = kase.name ?? `case ${index + 1}`;
    const problems = checkCase(kase);
    if (problems.length) {
      failed++;
      out.push(`FAIL ${name}: ${problems.join("; ")}`);
    } else {
      passed++;
      out.push(`ok ${name}`);
    }
  });
  out.push(`${passed} passed, ${failed} failed`);
  process.stdout.write(out.join("\n") + "\n");
  return failed ? 1 : 0;
}

async function main(argv) {
  if (argv.length === 0 || argv[0] === "-h" || argv[0] === "--help") usage();
  if (argv[0] === "--vectors") {
    if (argv.length !== 2) usage();
    return checkVectors(argv[1]);
  }
  return deleteProducts(argv);
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  if (!(error instanceof UsageError)) throw error;
  process.stderr.write(`${error.message}\n`);
  process.exitCode = 2;
}
