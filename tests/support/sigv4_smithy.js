// sigv4_smithy: compares switchyard's SigV4 signer (worker/sigv4.c, run as
// build/sigv4_sign) with AWS's own, @smithy/signature-v4 (the JavaScript
// SDK v3's signer, with its defaults: uriEscapePath, and applyChecksum on
// or off as each request says), on seeded generated requests: model ids
// and ARNs with ':' and '/', query strings with reserved and non-ASCII
// characters, session tokens present and absent, empty and non-ASCII
// bodies, regions and dates. Run by tests/cli/check_sigv4.sh.
//
// usage: node sigv4_smithy.js --npm DIR --signer BIN [--seed N] [--count N]
// Prints one line per mismatch (with both canonical requests) and ends with
// "N passed, N failed"; exits 1 on any failure.
"use strict";

const path = require("path");
const { createRequire } = require("module");
const { spawnSync } = require("child_process");

function arg(name, def) {
  const i = process.argv.indexOf("--" + name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

const npmDir = path.resolve(arg("npm", "build/npm"));
const signerBin = arg("signer", "build/sigv4_sign");
const seed = Number(arg("seed", "20240620")) >>> 0;
const count = Number(arg("count", "200"));

const npmRequire = createRequire(path.join(npmDir, "package.json"));
const { SignatureV4 } = npmRequire("@smithy/signature-v4");
const { Sha256 } = npmRequire("@aws-crypto/sha256-js");

// mulberry32: a small seeded generator, so a failure can be replayed
let state = seed;
function rand() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (n) => Math.floor(rand() * n);
const pick = (a) => a[int(a.length)];
const chance = (p) => rand() < p;

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const B64 = ALNUM + "+/";
function word(n, alphabet) {
  let s = "";
  for (let i = 0; i < n; i++) s += alphabet[int(alphabet.length)];
  return s;
}

// characters that exercise every encoding rule: unreserved, reserved,
// the ones encodeURIComponent keeps but SigV4 encodes, '%', '+', blanks,
// and UTF-8 of 2, 3 and 4 bytes
const TRICKY = [..."aZ09-_.~:/?#[]@!$&'()*+,;=% \"<>\\^`{|}"].concat([
  "é", "ü", "ß", "世", "界", "ა", "🎉", "😀", "\u00a0", "€",
]);
function trickyString(max) {
  const n = int(max + 1);
  let s = "";
  for (let i = 0; i < n; i++) s += chance(0.5) ? ALNUM[int(ALNUM.length)] : pick(TRICKY);
  return s;
}

const MODELS = [
  "anthropic.claude-3-5-sonnet-20240620-v1:0",
  "anthropic.claude-3-haiku-20240307-v1:0",
  "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
  "amazon.nova-pro-v1:0",
  "meta.llama3-1-70b-instruct-v1:0",
  "mistral.mistral-large-2407-v1:0",
  "cohere.command-r-plus-v1:0",
  "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-7-sonnet-20250219-v1:0",
  "arn:aws:bedrock:us-west-2::foundation-model/amazon.nova-lite-v1:0",
  "arn:aws:bedrock:eu-central-1:123456789012:provisioned-model/a1b2c3d4e5f6",
  "arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon.titan-text-express-v1:0:8k/abcdef123456",
  "arn:aws:sagemaker:us-east-1:123456789012:endpoint/my-endpoint",
];
const REGIONS = ["us-east-1", "us-west-2", "eu-west-3", "eu-central-1", "ap-northeast-1",
  "ap-southeast-2", "ca-central-1", "us-gov-west-1", "sa-east-1"];
const OPS = ["converse", "converse-stream", "invoke", "invoke-with-response-stream"];

// the AWS SDK's path label encoding: encodeURIComponent plus !'()*
const strictEncode = (s) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
// a looser client: leaves characters a query may hold raw (the signer
// decodes and encodes again, so the wire form must not matter)
const laxEncode = (s) =>
  encodeURIComponent(s).replace(/%(3A|2F|40|2C|24|21|27|28|29|2A|3B)/g, (m, h) =>
    String.fromCharCode(parseInt(h, 16)));

function generate(i) {
  const region = pick(REGIONS);
  const host = pick([
    `bedrock-runtime.${region}.amazonaws.com`,
    `bedrock-runtime-fips.${region}.amazonaws.com`,
    "127.0.0.1:8443",
    "[::1]:9000",
    `vpce-0123456789abcdef-abcdefgh.bedrock-runtime.${region}.vpce.amazonaws.com`,
  ]);
  const model = chance(0.8) ? pick(MODELS) : trickyString(24) || "m";
  let wirePath = "/model/" + (chance(0.8) ? strictEncode(model) : encodeURIComponent(model)) +
    "/" + pick(OPS);
  if (chance(0.15)) wirePath = "/proxy/bedrock" + wirePath; // a gateway prefix
  if (chance(0.08)) wirePath = wirePath.replace("/model/", "/model//./"); // normalized away
  if (chance(0.05)) wirePath = "/x/../" + wirePath.slice(1);
  if (chance(0.05)) wirePath += "/";

  // query: pairs of decoded strings; a repeated key becomes an array
  const pairs = [];
  if (chance(0.45)) {
    const n = 1 + int(4);
    for (let k = 0; k < n; k++) {
      const key = chance(0.3) && pairs.length ? pick(pairs)[0]
        : pick(["a", "b", "Param", "X-Amz-Foo", "x-id", "max-results", "nextToken", "ü", "k y", "a+b", "=&?"]);
      pairs.push([key, chance(0.15) ? "" : trickyString(16)]);
    }
  }
  const query = {};
  for (const [k, v] of pairs) {
    if (k in query) query[k] = [].concat(query[k], v);
    else query[k] = v;
  }
  const enc = chance(0.5) ? strictEncode : laxEncode;
  const queryString = pairs.map(([k, v]) => enc(k) + "=" + enc(v)).join("&");

  const headers = [[pick(["content-type", "Content-Type", "CONTENT-TYPE"]), "application/json"]];
  if (chance(0.3)) headers.push([pick(["accept", "Accept"]), "application/json"]);
  if (chance(0.2)) headers.push(["X-Amzn-Bedrock-Trace", pick(["ENABLED", "DISABLED"])]);
  if (chance(0.2)) headers.push(["x-amzn-bedrock-guardrailidentifier", word(12, ALNUM)]);
  if (chance(0.2)) headers.push(["X-Custom-Header", pick(["  two  spaces ", "tab\there", " a \t b ", "x"])]);

  let body;
  switch (int(5)) {
    case 0: body = ""; break;
    case 1: body = JSON.stringify({ messages: [{ role: "user", content: [{ text: "Hello" }] }] }); break;
    case 2: body = JSON.stringify({ messages: [{ role: "user", content: [{ text: trickyString(60) }] }] }); break;
    case 3: body = "héllo wörld 世界 🎉 " + trickyString(30); break;
    default: body = JSON.stringify({ inferenceConfig: { maxTokens: 1 + int(4096) }, system: [{ text: "Sé breve." }] });
  }

  const withToken = chance(0.5);
  return {
    id: i,
    method: chance(0.9) ? "POST" : "GET",
    host,
    path: wirePath,
    query,
    url: "https://" + host + wirePath + (queryString ? "?" + queryString : ""),
    headers,
    body,
    region,
    service: chance(0.85) ? "bedrock" : pick(["execute-api", "sts", "lambda"]),
    access_key_id: (withToken ? "ASIA" : "AKIA") + word(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
    secret_access_key: word(40, B64),
    session_token: withToken ? word(200 + int(400), B64) + "==" : null,
    // 2015..2035: both sides read the same seconds
    now_s: 1420070400 + int(630720000),
    content_sha256: chance(0.5),
  };
}

async function smithySign(r) {
  const signer = new SignatureV4({
    service: r.service,
    region: r.region,
    sha256: Sha256,
    credentials: {
      accessKeyId: r.access_key_id,
      secretAccessKey: r.secret_access_key,
      ...(r.session_token ? { sessionToken: r.session_token } : {}),
    },
    applyChecksum: r.content_sha256,
  });
  let canonical = null;
  const create = signer.createCanonicalRequest.bind(signer);
  signer.createCanonicalRequest = (...a) => (canonical = create(...a));
  const headers = { host: r.host };
  for (const [k, v] of r.headers) headers[k] = v;
  const signed = await signer.sign(
    { method: r.method, protocol: "https:", hostname: r.host.replace(/:\d+$/, ""), path: r.path,
      query: r.query, headers, body: r.body },
    { signingDate: new Date(r.now_s * 1000) },
  );
  const lower = {};
  for (const [k, v] of Object.entries(signed.headers)) lower[k.toLowerCase()] = v;
  return { lower, canonical };
}

async function main() {
  const reqs = [];
  for (let i = 0; i < count; i++) reqs.push(generate(i));
  const input = reqs.map((r) => JSON.stringify({
    method: r.method, url: r.url, headers: r.headers, body: r.body, region: r.region,
    service: r.service, access_key_id: r.access_key_id, secret_access_key: r.secret_access_key,
    session_token: r.session_token, now_s: r.now_s, content_sha256: r.content_sha256,
  })).join("\n") + "\n";
  const run = spawnSync(signerBin, [], { input, encoding: "utf8", maxBuffer: 64 << 20 });
  const lines = (run.stdout || "").split("\n").filter((l) => l);
  let passed = 0, failed = 0, shown = false;
  if (run.status !== 0 || lines.length !== reqs.length) {
    console.log(`FAIL ${signerBin} exited ${run.status} with ${lines.length} of ${reqs.length} lines: ${run.stderr || run.error || ""}`);
    failed++;
  }
  // every feature must have been generated, or the comparison proves less
  // than it claims
  const seen = { colon: 0, slash: 0, query: 0, token: 0, noToken: 0, emptyBody: 0, nonAscii: 0 };
  for (let i = 0; i < reqs.length && i < lines.length; i++) {
    const r = reqs[i];
    const c = JSON.parse(lines[i]);
    const s = await smithySign(r);
    if (r.path.includes("%3A")) seen.colon++;
    if (r.path.includes("%2F")) seen.slash++;
    if (r.url.includes("?")) seen.query++;
    if (r.session_token) seen.token++; else seen.noToken++;
    if (r.body === "") seen.emptyBody++;
    if (/[^\x00-\x7f]/.test(r.body)) seen.nonAscii++;
    const sent = {};
    for (const h of c.headers || []) {
      const at = h.indexOf(": ");
      sent[h.slice(0, at)] = h.slice(at + 2);
    }
    const same = !c.error &&
      c.authorization === s.lower.authorization &&
      sent["authorization"] === s.lower.authorization &&
      sent["x-amz-date"] === s.lower["x-amz-date"] &&
      sent["host"] === r.host &&
      sent["x-amz-security-token"] === s.lower["x-amz-security-token"] &&
      sent["x-amz-content-sha256"] === s.lower["x-amz-content-sha256"];
    if (same) {
      passed++;
      continue;
    }
    failed++;
    console.log(`FAIL request ${i} (seed ${seed}): ${r.method} ${r.url}`);
    console.log(`  ours:   ${c.error || c.authorization}`);
    console.log(`  smithy: ${s.lower.authorization}`);
    if (!shown) {
      shown = true;
      console.log("  our canonical request:\n" + (c.canonical_request || "(none)").replace(/^/gm, "    | "));
      console.log("  smithy's canonical request:\n" + (s.canonical || "(none)").replace(/^/gm, "    | "));
    }
  }
  for (const [what, n] of Object.entries(seen)) {
    if (n > 0) {
      passed++;
    } else {
      failed++;
      console.log(`FAIL no generated request had: ${what}`);
    }
  }
  console.log(`generated ${reqs.length} requests (seed ${seed}): ${JSON.stringify(seen)}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}

main().catch((err) => {
  console.log(`FAIL ${err && err.stack ? err.stack : err}`);
  console.log("0 passed, 1 failed");
  process.exitCode = 1;
});
