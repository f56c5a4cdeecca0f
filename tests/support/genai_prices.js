// genai_prices: switchyard's price table against @pydantic/genai-prices, an
// independent public price database (its calcPrice works offline on its
// bundled data). Two modes:
//
//   emit:  node genai_prices.js emit --npm DIR --current config/prices.yaml
//            [--date YYYY-MM-DD] [--add TYPE/MODEL ...]
//          prints a prices.yaml for the entries of --current (plus --add)
//          with the package's figures; an entry whose figures did not change
//          keeps its date. Run by scripts/update-prices.
//   check: node genai_prices.js check --npm DIR --prices FILE --calc BIN
//            --allow tests/data/prices/allow.yaml
//          prices a set of usages for every entry both know with our C
//          (BIN, tests/support/price_calc.c) and with calcPrice, prints a
//          table (entry, cases, tier thresholds in our table | in the
//          package's, max difference in nUSD, verdict) and ends
//          with "N passed, N failed"; exits 1 on any failure. Run by
//          tests/cli/check_prices.sh.
//
// Usage conventions differ: our categories are disjoint; genai-prices'
// input_tokens includes cache reads and writes (cache_write_tokens
// includes the hour-long cache_write_1h_tokens) and output_tokens includes
// output_reasoning_tokens. Both apply a tier to the whole call once the
// prompt (input plus cache) exceeds its threshold.
"use strict";

const fs = require("fs");
const path = require("path");
const { createRequire } = require("module");
const { spawnSync } = require("child_process");

const mode = process.argv[2];
function arg(name, def) {
  const i = process.argv.indexOf("--" + name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}
function args(name) {
  const out = [];
  process.argv.forEach((a, i) => {
    if (a === "--" + name && i + 1 < process.argv.length) out.push(process.argv[i + 1]);
  });
  return out;
}

const npmDir = path.resolve(arg("npm", "build/npm"));
const gp = createRequire(path.join(npmDir, "package.json"))("@pydantic/genai-prices");

// switchyard provider type -> genai-prices provider id
const PROVIDER = { openai: "openai", anthropic: "anthropic", gemini: "google", bedrock: "aws", azure: "azure" };
// published batch discounts (percent off every category); recorded only
const BATCH = { openai: 50, anthropic: 50, gemini: 50, bedrock: 50, azure: 50 };
// genai-prices price key -> our category
const KEYS = {
  input_mtok: "input",
  output_mtok: "output",
  cache_read_mtok: "cache_read",
  cache_write_mtok: "cache_write",
  cache_write_1h_mtok: "cache_write_1h",
  output_reasoning_mtok: "reasoning",
};
const ORDER = ["input", "output", "cache_read", "cache_write", "cache_write_1h", "reasoning"];

function lookup(type, model, when) {
  const providerId = PROVIDER[type];
  if (!providerId) return null;
  let r = null;
  try {
    r = gp.calcPrice({ input_tokens: 1, output_tokens: 1 }, model, { providerId, timestamp: when });
  } catch (e) {
    return null;
  }
  return r;
}

// {base: {cat: usd}, tiers: [{above, price: {cat: usd}}]} from a model_price
function toTable(mp) {
  const base = {};
  const starts = new Set();
  for (const [k, v] of Object.entries(mp)) {
    if (!(k in KEYS) || v === undefined) continue;
    if (typeof v === "number") base[KEYS[k]] = v;
    else {
      base[KEYS[k]] = v.base;
      for (const t of v.tiers) starts.add(t.start);
    }
  }
  const tiers = [...starts].sort((a, b) => a - b).map((s) => {
    const price = {};
    for (const [k, v] of Object.entries(mp)) {
      if (!(k in KEYS) || v === undefined) continue;
      let p = typeof v === "number" ? v : v.base;
      if (typeof v !== "number") for (const t of v.tiers) if (t.start <= s) p = t.price;
      price[KEYS[k]] = p;
    }
    return { above: s, price };
  });
  return { base, tiers };
}

function num(x) {
  let s = x.toFixed(9).replace(/0+$/, "").replace(/\.$/, "");
  return s;
}
function priceMap(p) {
  return "{" + ORDER.filter((c) => c in p).map((c) => `${c}: ${num(p[c])}`).join(", ") + "}";
}

function emitEntry(name, type, model, date, r) {
  const t = toTable(r.model_price);
  const urls = r.provider.pricing_urls || [];
  let s = `  "${name}":\n    provider: ${type}\n    model: "${model}"\n    date: "${date}"\n`;
  s += `    source: "${urls[0] || ""}"\n    price: ${priceMap(t.base)}\n`;
  if (t.tiers.length) {
    s += "    tiers:\n";
    for (const tier of t.tiers) s += `      - {above_input_tokens: ${tier.above}, price: ${priceMap(tier.price)}}\n`;
  }
  s += `    batch_discount_percent: ${BATCH[type]}\n`;
  return s;
}

// the entries of a prices.yaml this script wrote: name -> {type, model, date, block}
function readCurrent(file) {
  const out = new Map();
  if (!file || !fs.existsSync(file)) return out;
  let cur = null;
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    let m;
    if ((m = /^  "([^"]+)":\s*$/.exec(line))) {
      cur = { name: m[1], block: line + "\n" };
      out.set(m[1], cur);
    } else if (cur && /^    /.test(line)) {
      cur.block += line + "\n";
      if ((m = /^    provider: (\S+)/.exec(line))) cur.type = m[1];
      if ((m = /^    model: "([^"]*)"/.exec(line))) cur.model = m[1];
      if ((m = /^    date: "([^"]*)"/.exec(line))) cur.date = m[1];
    } else cur = null;
  }
  return out;
}

function emit() {
  const today = arg("date", new Date().toISOString().slice(0, 10));
  const when = new Date(today + "T00:00:00Z");
  const current = readCurrent(arg("current"));
  const want = [...current.values()].map((e) => [e.name, e.type, e.model]);
  for (const a of args("add")) {
    const i = a.indexOf("/");
    if (i > 0 && !current.has(a)) want.push([a, a.slice(0, i), a.slice(i + 1)]);
  }
  let out =
    "# switchyard price table: USD per million tokens by category, as the\n" +
    "# providers publish them, for a policy's `price: {entry: NAME}`.\n" +
    "# Written by scripts/update-prices from @pydantic/genai-prices (text\n" +
    "# tokens only: audio, image and tool-call prices are not carried); checked\n" +
    "# against it by tests/cli/check_prices.sh. Reference: README.md, \"Prices\".\n" +
    "# Unlisted categories cost what the provider bills them as: cache reads\n" +
    "# and writes as input, reasoning as output, cache_write_1h as cache_write.\n" +
    "# A tier bills the whole call at its rates once the prompt (input plus\n" +
    "# cache reads and writes) exceeds above_input_tokens.\n" +
    "# batch_discount_percent is recorded only: switchyard calls no batch API.\n" +
    "entries:\n";
  let missing = 0;
  for (const [name, type, model] of want) {
    const r = lookup(type, model, when);
    if (!r) {
      process.stderr.write(`update-prices: genai-prices does not know ${type} model ${model}; entry "${name}" left out\n`);
      missing++;
      continue;
    }
    let block = emitEntry(name, type, model, today, r);
    const old = current.get(name);
    const strip = (b) => b.replace(/^    date: .*\n/m, "");
    if (old && old.date && strip(old.block) === strip(block)) block = old.block;
    out += block;
  }
  process.stdout.write(out);
  process.exit(missing ? 1 : 0);
}

// our usage -> genai-prices' nested convention
function toGenai(u) {
  const g = (k) => u[k] || 0;
  return {
    input_tokens: g("input") + g("cache_read") + g("cache_write") + g("cache_write_1h"),
    cache_read_tokens: g("cache_read"),
    cache_write_tokens: g("cache_write") + g("cache_write_1h"),
    cache_write_1h_tokens: g("cache_write_1h"),
    output_tokens: g("output") + g("reasoning"),
    output_reasoning_tokens: g("reasoning"),
  };
}

// the usages an entry is priced on: every category alone, mixed, and both
// sides of every tier threshold given (ours and the package's), reached by
// input alone and by cache
function usages(thresholds) {
  const out = [];
  for (const c of ORDER) for (const n of [1, 999, 123457]) out.push({ [c]: n });
  out.push({ input: 1000, output: 500, cache_read: 2000, cache_write: 300, cache_write_1h: 200, reasoning: 700 });
  out.push({ input: 3, output: 7, cache_read: 11, cache_write: 13, cache_write_1h: 17, reasoning: 19 });
  out.push({ input: 150000, output: 30000, cache_read: 40000, cache_write: 5000, cache_write_1h: 4000, reasoning: 9000 });
  for (const s of thresholds) {
    for (const p of [s - 1, s, s + 1, s + 12345]) {
      if (p < 1) continue;
      out.push({ input: p, output: 1000 });
      const q = Math.floor(p / 4);
      out.push({ input: p - 3 * q, cache_read: q, cache_write: q, cache_write_1h: q, output: 777, reasoning: 333 });
    }
  }
  return out;
}

function readAllow(file) {
  const out = new Map();
  if (!file || !fs.existsSync(file)) return out;
  let cur = null;
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    let m;
    if ((m = /^  "([^"]+)":\s*$/.exec(line))) out.set(m[1], (cur = {}));
    else if (cur && (m = /^    (published|why): (.*)$/.exec(line))) cur[m[1]] = m[2].replace(/^"|"$/g, "");
  }
  return out;
}

function check() {
  const prices = arg("prices", "config/prices.yaml");
  const calc = arg("calc", "build/price_calc");
  const allow = readAllow(arg("allow"));
  const listed = spawnSync(calc, [prices, "--list"], { encoding: "utf8" });
  if (listed.status !== 0) {
    console.log(`FAIL ${calc} ${prices} --list: ${listed.stderr}`);
    console.log("0 passed, 1 failed");
    process.exit(1);
  }
  const entries = listed.stdout.trim().split("\n").map((l) => JSON.parse(l));
  const jobs = [];
  const plan = [];
  for (const e of entries) {
    // both sides of our thresholds and of the package's own: a tier the
    // package has and our table lacks is then a priced difference, not a
    // usage nobody tried
    const r = lookup(e.provider, e.model, new Date(e.date + "T00:00:00Z"));
    const theirs = r ? toTable(r.model_price).tiers.map((t) => t.above) : [];
    const cases = usages([...new Set([...e.thresholds, ...theirs])].sort((a, b) => a - b));
    const tiers = `${e.thresholds.join(",") || "-"}|${theirs.join(",") || "-"}`;
    plan.push({ e, cases, first: jobs.length, tiers });
    for (const u of cases) jobs.push(JSON.stringify({ entry: e.name, usage: u }));
  }
  const ran = spawnSync(calc, [prices], { input: jobs.join("\n") + "\n", encoding: "utf8", maxBuffer: 1 << 26 });
  const ours = ran.stdout.trim().split("\n").map((l) => JSON.parse(l));
  let passed = 0, failed = 0;
  const rows = [["entry", "cases", "tiers ours|theirs", "max diff nUSD", "verdict"]];
  for (const { e, cases, first, tiers } of plan) {
    const when = new Date(e.date + "T00:00:00Z");
    let maxDiff = 0, worst = null, known = true, err = null;
    cases.forEach((u, i) => {
      const o = ours[first + i];
      let r = null;
      try {
        r = gp.calcPrice(toGenai(u), e.model, { providerId: PROVIDER[e.provider], timestamp: when });
      } catch (x) {
        err = String(x.message || x);
      }
      if (!r) { known = false; return; }
      if (o.error) { err = o.error; return; }
      const theirs = Math.round(r.total_price * 1e9);
      const d = Math.abs(theirs - o.cost_nusd);
      if (d > maxDiff) { maxDiff = d; worst = { u, ours: o.cost_nusd, theirs }; }
    });
    let verdict;
    if (err) { verdict = "FAIL: " + err; failed++; }
    else if (!known) { verdict = "not in genai-prices (not compared)"; }
    else if (maxDiff <= 1) { verdict = allow.has(e.name) ? "ok (allow-listed but agrees: drop it)" : "ok"; passed++; }
    else if (allow.has(e.name) && allow.get(e.name).published && allow.get(e.name).why) {
      verdict = `allowed: published ${allow.get(e.name).published}; ${allow.get(e.name).why}`;
      passed++;
    } else {
      verdict = `FAIL: ours ${worst.ours} theirs ${worst.theirs} on ${JSON.stringify(worst.u)}`;
      failed++;
    }
    rows.push([e.name, String(cases.length), tiers, String(maxDiff), verdict]);
  }
  const w = [0, 1, 2, 3].map((c) => Math.max(...rows.map((r) => r[c].length)));
  for (const r of rows)
    console.log(`${r[0].padEnd(w[0])}  ${r[1].padStart(w[1])}  ${r[2].padStart(w[2])}  ${r[3].padStart(w[3])}  ${r[4]}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

if (mode === "emit") emit();
else if (mode === "check") check();
else {
  process.stderr.write("usage: genai_prices.js emit|check ...\n");
  process.exit(2);
}
