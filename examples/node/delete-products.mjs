// Delete products through the Partner Catalog Gateway: a signed POST, from Node.js 20.
//
//   node delete-products.mjs ID ... [-e EXTERNAL_ID ...]   sign and send one deletion request
//   node delete-products.mjs --vectors FILE                 check a signing vector file
//
// Only the built-in fetch, node:crypto and node:fs. See ../README.md for the spec.
import { createHash, createHmac } from "node:crypto";
import { readFileSync } from "node:fs";

const DELETIONS_PATH = "/api/v1/partner/stores/products/deletions";
const CREDENTIALS = ["PARTNER_CLIENT_ID", "PARTNER_SECRET", "STORE_CLIENT_ID", "STORE_TOKEN"];
const PROG = (process.argv[1] ?? "delete-products.mjs").split(/[\\/]/).pop();

class UsageError extends Error {}

function usage() {
  throw new UsageError(
    `usage: ${PROG} ID ... [-e EXTERNAL_ID ...]\n       ${PROG} --vectors FILE`,
  );
}

// --- signing -----------------------------------------------------------------------------------

/** Lowercase hex SHA-256 of the raw body bytes. */
function bodySha256(bytes) {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The contract's string to sign: eight lines joined by LF, no trailing newline. */
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

// --- live mode ---------------------------------------------------------------------------------

function parseIds(args) {
  const ids = [];
  const externalIds = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "-e") {
      if (i + 1 >= args.length) usage();
      externalIds.push(args[++i]);
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
  return { ids, externalIds };
}

async function deleteProducts(args) {
  const { ids, externalIds } = parseIds(args);
  for (const name of CREDENTIALS) {
    if (!process.env[name]) {
      process.stderr.write(`${PROG}: the environment variable ${name} is not set\n`);
      return 2;
    }
  }
  const { PARTNER_CLIENT_ID, PARTNER_SECRET, STORE_CLIENT_ID, STORE_TOKEN } = process.env;
  const gateway = process.env.GATEWAY_URL || "http://127.0.0.1:8000";
  const url = gateway.replace(/\/$/, "") + DELETIONS_PATH;

  // The body, built once as compact JSON bytes; these exact bytes are hashed and sent.
  const document = {};
  if (ids.length) document.ids = ids;
  if (externalIds.length) document.externalIds = externalIds;
  const body = Buffer.from(JSON.stringify(document), "utf8");

  const timestamp = String(Date.now()); // Unix time in milliseconds
  const signature = sign(
    PARTNER_SECRET,
    stringToSign({
      method: "POST",
      path: DELETIONS_PATH,
      query: "",
      partnerClientId: PARTNER_CLIENT_ID,
      storeClientId: STORE_CLIENT_ID,
      storeToken: STORE_TOKEN,
      timestamp,
      bodyHash: bodySha256(body),
    }),
  );

  let response;
  let answer;
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
      },
      body,
    });
    answer = Buffer.from(await response.arrayBuffer());
  } catch (error) {
    const reason = error.cause?.message ?? error.message;
    process.stderr.write(`${PROG}: the request to ${url} failed: ${reason}\n`);
    return 1;
  }
  process.stderr.write(`HTTP ${response.status}\n`);
  process.stdout.write(answer);
  return response.ok ? 0 : 1;
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
  if (message !== c.stringToSign) {
    const expected = c.stringToSign.split("\n");
    const built = message.split("\n");
    let line = 1;
    while (line <= Math.min(expected.length, built.length) && expected[line - 1] === built[line - 1]) {
      line++;
    }
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
