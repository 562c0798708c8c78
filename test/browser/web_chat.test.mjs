// The web page of a chat-node, used the way a person would use it: in headless Chromium
// (Debian's), driven by playwright-core. run.sh starts the cluster (web, moebi, alex) and
// passes its addresses in the environment; run this file through run.sh.
//
// Every wait is on a condition, with a generous deadline (BROWSER_WAIT_MS, default 45 s):
// the machine may be busy with builds and other tests.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { chromium } from "playwright-core";

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run this test through test/browser/run.sh`);
  return v;
}
const WEB_URL = need("WEB_URL");
// The web node wants a token (CHAT_WEB_TOKEN): as a person types it into the browser's login
// prompt (any user name, the token as password), which then sends it with every request of the
// page, its event stream and its form included.
const WEB_TOKEN = need("WEB_TOKEN");
const CREDENTIALS = { username: "chat", password: WEB_TOKEN };
const WEB = need("WEB_NODE");
const MOEBI = need("MOEBI_NODE");
const ALEX = need("ALEX_NODE");
const ALEX_STDOUT = need("ALEX_STDOUT");
const CHROMIUM = need("CHROMIUM");
const ARTIFACTS = need("BROWSER_ARTIFACTS");
const WAIT = Number(process.env.BROWSER_WAIT_MS || 45_000);
const GHOST = "ghost@127.0.0.1"; // registered nowhere
const STEP = { timeout: 4 * WAIT };
const run = Date.now().toString(36); // makes this run's messages unique

// As the machine's notes say: a closed network, so nothing that phones home.
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
];

let browser;
let page; // the desktop page, shared by the steps below
const pageErrors = [];
const pages = [];
let failed = false;

// ---------------------------------------------------------------- helpers

// What the page shows, for failure messages.
function describe(p) {
  return p.evaluate(() => {
    const text = (sel) => document.querySelector(sel)?.textContent ?? "(missing)";
    const nodes = [...document.querySelectorAll("#nodes li")].map((li) => li.textContent).join(" | ");
    const feed = [...document.querySelectorAll("#feed li")].map((li) => `    [${li.className}] ${li.textContent}`);
    return `  nodes: ${nodes}\n  feed state: ${text("#feed-state")}\n  error: ${text("#error")}\n  feed:\n${feed.join("\n")}`;
  });
}

// Waits until fn(arg), evaluated in the page, is truthy; on timeout says what it waited for
// and what the page showed.
async function until(p, what, fn, arg) {
  try {
    return await p.waitForFunction(fn, arg, { timeout: WAIT, polling: 100 });
  } catch (e) {
    const state = await describe(p).catch(() => "  (page state unavailable)");
    throw new Error(`timed out after ${WAIT} ms waiting for ${what}\n${state}`, { cause: e });
  }
}

// How many feed entries of this type have a tag containing `tag` and exactly this text.
function feedCount(p, type, tag, text) {
  return p.evaluate(
    ({ type, tag, text }) =>
      [...document.querySelectorAll(`#feed li.${type}`)].filter(
        (li) => li.querySelector(".tag")?.textContent.includes(tag) && li.querySelector(".text")?.textContent === text,
      ).length,
    { type, tag, text },
  );
}

function untilFeed(p, type, tag, text, atLeast = 1) {
  return until(
    p,
    `${atLeast} feed entr${atLeast === 1 ? "y" : "ies"} "${type}" tagged "${tag}" with text ${JSON.stringify(text)}`,
    ({ type, tag, text, atLeast }) =>
      [...document.querySelectorAll(`#feed li.${type}`)].filter(
        (li) => li.querySelector(".tag")?.textContent.includes(tag) && li.querySelector(".text")?.textContent === text,
      ).length >= atLeast,
    { type, tag, text, atLeast },
  );
}

// Fills the form (the recipient too unless `to` is null) and presses Send, or taps it, as a
// person would; first waits for the button to be enabled (disabled while a send is in flight).
async function send(p, to, text, { tap = false } = {}) {
  await p.locator("#go:enabled").waitFor({ timeout: WAIT });
  if (to !== null) await p.locator("#to").fill(to);
  await p.locator("#text").fill(text);
  if (tap) await p.locator("#go").tap();
  else await p.locator("#go").click();
}

async function openPage(context) {
  const p = await context.newPage();
  pages.push(p);
  p.on("pageerror", (e) => pageErrors.push(`${p.url()}: ${e.message}`));
  await p.goto(WEB_URL, { waitUntil: "domcontentloaded", timeout: WAIT });
  await until(p, "the live feed to connect", () => document.querySelector("#feed-state")?.textContent === "live");
  return p;
}

async function untilNodesListed(p) {
  const want = [
    [WEB, "cpp", "C++"],
    [MOEBI, "cpp", "C++"],
    [ALEX, "beam", "BEAM"],
  ];
  await until(
    p,
    `the node list to show ${want.map(([n, k]) => `${n} (${k})`).join(", ")}`,
    (want) =>
      want.every(([name, kind, label]) =>
        [...document.querySelectorAll("#nodes li")].some((li) => {
          const k = li.querySelector(".kind");
          return li.querySelector(".name")?.textContent === name && k?.classList.contains(kind) && k.textContent === label;
        }),
      ),
    want,
  );
}

// Elements and scripts that a message could have smuggled into the document.
function injected(p) {
  return p.evaluate(() => ({
    pwned: window.__pwned ?? null,
    scripts: document.scripts.length,
    images: document.images.length,
    elementsInFeedTexts: document.querySelectorAll("#feed .text *").length,
  }));
}

async function untilAlexPrinted(line) {
  const deadline = Date.now() + WAIT;
  for (;;) {
    const out = await readFile(ALEX_STDOUT, "utf8").catch(() => "");
    if (out.split("\n").includes(line)) return;
    if (Date.now() > deadline) throw new Error(`alex did not print ${JSON.stringify(line)}; its stdout:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// Horizontal overflow and the on-screen boxes of the form and the feed.
function layout(p) {
  return p.evaluate(() => {
    const box = (sel) => {
      const r = document.querySelector(sel).getBoundingClientRect();
      return { left: r.left, right: r.right, width: r.width, height: r.height };
    };
    return {
      viewport: window.innerWidth,
      scrollWidth: Math.max(document.documentElement.scrollWidth, document.body.scrollWidth),
      to: box("#to"),
      text: box("#text"),
      go: box("#go"),
      feed: box("#feed"),
    };
  });
}

function assertFits(l, when) {
  assert.ok(l.scrollWidth <= l.viewport, `${when}: page is ${l.scrollWidth} px wide in a ${l.viewport} px viewport`);
  for (const name of ["to", "text", "go", "feed"]) {
    const b = l[name];
    assert.ok(b.left >= 0 && b.right <= l.viewport, `${when}: #${name} sticks out: ${JSON.stringify(b)}`);
    assert.ok(b.width >= 40 && (name === "feed" || b.height >= 30), `${when}: #${name} too small: ${JSON.stringify(b)}`);
  }
  assert.ok(l.to.width >= 150 && l.text.width >= 150, `${when}: fields too narrow to type in: ${JSON.stringify(l)}`);
}

// ---------------------------------------------------------------- setup

before(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 2 * WAIT });
  console.log(`# browser: ${CHROMIUM} ${browser.version()}; page ${WEB_URL}`);
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 }, httpCredentials: CREDENTIALS });
  context.setDefaultTimeout(WAIT);
  page = await openPage(context);
});

after(async () => {
  if (failed) {
    for (const [i, p] of pages.entries()) {
      const file = path.join(ARTIFACTS, `web-chat-failure-${i + 1}.png`);
      await p.screenshot({ path: file, fullPage: true, timeout: WAIT }).then(
        () => console.log(`# failure screenshot: ${file}`),
        () => {},
      );
    }
  }
  await browser?.close();
});

// Marks the run as failed (for the failure screenshots) when a step throws.
function step(name, fn) {
  test(name, STEP, async (t) => {
    try {
      await fn(t);
    } catch (e) {
      failed = true;
      throw e;
    }
  });
}

// ---------------------------------------------------------------- steps

step("lists web, moebi and alex with their kinds", async () => {
  await until(page, `the page title to be ${WEB}`, (web) => document.querySelector("#self").textContent === web, WEB);
  await untilNodesListed(page);
  const names = await page.locator("#nodes li .name").allTextContents();
  assert.deepEqual([...names].sort(), [ALEX, MOEBI, WEB].sort(), "exactly the three nodes of the cluster");
  const self = await page.locator("#nodes li", { hasText: WEB }).locator(".since").textContent();
  assert.equal(self, "this node");
});

step("messages to moebi (C++) and alex (BEAM) show up live in the feed", async () => {
  const navigations = [];
  const onNav = (f) => f === page.mainFrame() && navigations.push(f.url());
  page.on("framenavigated", onNav);
  await page.evaluate((token) => (window.__sameDocument = token), run);
  const chickens = await feedCount(page, "in", "received", "chicken?");

  const toMoebi = `hello moebi from the browser (${run})`;
  let results = await feedCount(page, "result", `returned from ${MOEBI}`, "nil");
  await send(page, MOEBI, toMoebi);
  await untilFeed(page, "out", `sent to ${MOEBI}`, toMoebi);
  await untilFeed(page, "result", `returned from ${MOEBI}`, "nil", results + 1);
  await untilFeed(page, "in", "received", "chicken?", chickens + 1);

  const toAlex = `hello alex from the browser (${run})`;
  results = await feedCount(page, "result", `returned from ${ALEX}`, "nil");
  await send(page, ALEX, toAlex);
  await untilFeed(page, "out", `sent to ${ALEX}`, toAlex);
  await untilFeed(page, "result", `returned from ${ALEX}`, "nil", results + 1);
  await untilAlexPrinted(toAlex);

  // The feed can show the result before the HTTP answer reaches the form.
  await until(page, "the form to be ready again, its message field cleared", () =>
    !document.querySelector("#go").disabled && document.querySelector("#text").value === "");
  assert.equal(await page.locator("#error").textContent(), "", "no error shown");
  assert.equal(await page.evaluate(() => window.__sameDocument), run, "same document: the page was not reloaded");
  assert.deepEqual(navigations, [], "no navigation");
  page.off("framenavigated", onNav);
});

step("send to everyone reaches every chat node; a page opened later shows the conversation", async () => {
  const text = `to everyone (${run})`;
  await until(page, "the form to be ready", () => !document.querySelector("#all").disabled);
  await page.locator("#text").fill(text);
  await page.locator("#all").click();
  await untilFeed(page, "out", "sent to everyone", text);
  await untilFeed(page, "in", "received", text); // the web node's own inbox is a member too
  await untilAlexPrinted(text); // and alex's, through pg

  // A page that opens now shows what was said before, once.
  const context = await browser.newContext({ httpCredentials: CREDENTIALS });
  context.setDefaultTimeout(WAIT);
  const late = await openPage(context);
  await untilFeed(late, "out", "sent to everyone", text);
  assert.equal(await feedCount(late, "out", "sent to everyone", text), 1, "shown once");
  await context.close();
  pages.splice(pages.indexOf(late), 1);
});

step("markup in a message is shown as text, never run", async () => {
  const before = await injected(page);
  const payloads = [
    "<script>window.__pwned = 1</script>",
    `<img src=x onerror="window.__pwned = 2"> (${run})`,
  ];
  for (const payload of payloads) {
    const results = await feedCount(page, "result", `returned from ${ALEX}`, "nil");
    await send(page, ALEX, payload);
    await untilFeed(page, "out", `sent to ${ALEX}`, payload);
    await untilFeed(page, "result", `returned from ${ALEX}`, "nil", results + 1);
    await untilAlexPrinted(payload);
  }
  // Sent to the web node itself, the message also comes back as a printed ("in") line.
  const results = await feedCount(page, "result", `returned from ${WEB}`, "nil");
  await send(page, WEB, payloads[0]);
  await untilFeed(page, "in", "received", payloads[0]);
  await untilFeed(page, "result", `returned from ${WEB}`, "nil", results + 1);

  const shown = await page.locator("#feed li.out .text").allTextContents();
  for (const payload of payloads) assert.ok(shown.includes(payload), `shown verbatim: ${payload}`);
  const now = await injected(page);
  assert.equal(now.pwned, null, "no script from a message ran");
  assert.deepEqual(now, before, "no element was added by a message");
  assert.equal(now.elementsInFeedTexts, 0);
});

step("a node outside the cluster is refused with a clear error", async () => {
  // The public web dyno reaches only nodes of its cluster (connected or discovered), never
  // a name@host of the poster's choosing.
  const text = `anyone there? (${run})`;
  await send(page, GHOST, text);
  await until(
    page,
    `an error about ${GHOST} in #error`,
    (ghost) => document.querySelector("#error").textContent.includes(`could not deliver to ${ghost}: `),
    GHOST,
  );
  const error = await page.locator("#error").textContent();
  console.log(`# error shown: ${error}`);
  const cause = error.split(": ").slice(1).join(": ").trim();
  assert.ok(cause.includes("not a node of this cluster"), `the error says why: ${error}`);
  assert.equal(await page.locator("#go").isEnabled(), true, "the form can be used again");
  assert.equal(await page.locator("#text").inputValue(), text, "the undelivered text is kept for another try");

  const file = path.join(ARTIFACTS, "web-chat.png");
  await page.screenshot({ path: file, fullPage: true });
  console.log(`# screenshot (desktop, 1100x760): ${file}`);
});

step("on a phone-sized screen the form and the feed stay usable", async () => {
  const context = await browser.newContext({
    httpCredentials: CREDENTIALS,
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
  });
  context.setDefaultTimeout(WAIT);
  const phone = await openPage(context);
  // (The kinds are checked once, in the first step.)
  await until(phone, `${MOEBI} in the node list`, (m) =>
    [...document.querySelectorAll("#nodes li.peer .name")].some((n) => n.textContent === m), MOEBI);
  assertFits(await layout(phone), "before sending");

  // A long word that cannot be broken at a space must wrap, not widen the page.
  const text = `from a phone (${run}) ${"x".repeat(180)}`;
  const chickens = await feedCount(phone, "in", "received", "chicken?");
  const results = await feedCount(phone, "result", `returned from ${MOEBI}`, "nil");
  // Tapping a node in the list makes it the recipient.
  await phone.locator("#nodes li.peer", { hasText: MOEBI }).tap();
  await until(phone, `${MOEBI} as the recipient`, (m) => document.querySelector("#to").value === m, MOEBI);
  await phone.locator("#text").scrollIntoViewIfNeeded();
  await send(phone, null, text, { tap: true });
  await untilFeed(phone, "out", `sent to ${MOEBI}`, text);
  await untilFeed(phone, "result", `returned from ${MOEBI}`, "nil", results + 1);
  await untilFeed(phone, "in", "received", "chicken?", chickens + 1);
  const l = await layout(phone);
  assertFits(l, "after a long message");
  assert.ok(l.feed.height > 0, "the feed is shown");

  const last = phone.locator("#feed li").last();
  await last.scrollIntoViewIfNeeded();
  assert.ok(await last.isVisible(), "the newest feed entry can be scrolled into view");
  const file = path.join(ARTIFACTS, "web-chat-phone.png");
  await phone.screenshot({ path: file, fullPage: true });
  console.log(`# screenshot (phone, 390x844): ${file}`);
  await context.close();
  pages.splice(pages.indexOf(phone), 1);
});

step("without the token the page, the API and the event stream are refused; /health is open", async () => {
  // A browser context that knows no token (its own requests, so that Chromium's login prompt,
  // which a headless browser cancels, does not get in the way).
  const context = await browser.newContext();
  const api = context.request;
  const page401 = await api.get(WEB_URL, { timeout: WAIT });
  assert.equal(page401.status(), 401, "the page asks for the token");
  assert.match(page401.headers()["www-authenticate"] ?? "", /^Basic realm="chat-node"/);
  const status = async (path, init = {}) => (await api.fetch(new URL(path, WEB_URL).href, { timeout: WAIT, ...init })).status();
  assert.deepEqual(
    {
      health: await status("/health"),
      nodes: await status("/nodes"),
      events: await status("/events"),
      post: await status("/messages", { method: "POST", headers: { "Content-Type": "application/json" }, data: "{}" }),
      broadcast: await status("/broadcast", { method: "POST", headers: { "Content-Type": "application/json" }, data: '{"text":"x"}' }),
      metrics: await status("/metrics"),
      wrong: await status("/nodes", { headers: { Authorization: "Bearer not-the-token" } }),
    },
    { health: 200, nodes: 401, events: 401, post: 401, broadcast: 401, metrics: 401, wrong: 401 },
  );
  const ok = await api.get(new URL("/nodes", WEB_URL).href, { headers: { Authorization: `Bearer ${WEB_TOKEN}` } });
  assert.equal(ok.status(), 200, "a script with the token as a Bearer token is served");
  await context.close();
});

step("the page raised no script error", () => {
  assert.deepEqual(pageErrors, []);
});
