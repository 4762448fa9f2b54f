// The web consoles in real Chromium against a real `remesa dev` (started by scripts/browser-test.sh, which sets
// REMESA_URL, REMESA_OPERATOR_TOKEN, REMESA_CHROMIUM and REMESA_SCREENSHOTS). What a counter agent and an operator
// do, by keyboard, on a 360-pixel phone and on a desktop: no horizontal overflow, no serious axe-core finding,
// screenshots of every page for a person to look at.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { AxeBuilder } from "@axe-core/playwright";

const BASE = process.env.REMESA_URL;
const TOKEN = process.env.REMESA_OPERATOR_TOKEN;
const SHOTS = process.env.REMESA_SCREENSHOTS;
const CHROMIUM = process.env.REMESA_CHROMIUM || "/usr/bin/chromium";
assert.ok(BASE && TOKEN && SHOTS, "run through scripts/browser-test.sh");
mkdirSync(SHOTS, { recursive: true });

// the devnet's demo logins (`remesa dev` prints them)
const AGENT = { username: "agent.tienda", password: "dev-agent-password" }; // partner 2, Honduras
const OTHER_AGENT = { username: "agent.banco", password: "dev-agent-password" }; // partner 1
const OPERATOR = { username: "operator", password: "dev-operator-password" };
const SENDER = "+14155550100";
const PHONE = { width: 360, height: 740 };
const DESKTOP = { width: 1280, height: 900 };
const CODE = /([0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4})/;

let browser;
before(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
});
after(async () => {
  await browser?.close();
});

// ------------------------------------------------------------------------------------------- the chat side

const inbox = new Map(); // phone -> every message text received so far (the poll drains the node's queue)

async function api(method, path, body) {
  const r = await fetch(BASE + path, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: body ? JSON.stringify(body) : undefined,
  });
  assert.ok(r.ok, `${method} ${path}: ${r.status} ${await r.clone().text()}`);
  return r.json();
}

async function chat(as, text) {
  return api("POST", "/v1/dev/chat", { as, text });
}

async function messages(as) {
  const got = await api("GET", `/v1/dev/chat/messages?as=${encodeURIComponent(as)}`);
  const texts = [...(got.replies || []), ...(got.notifications || [])].map((m) => m.text);
  inbox.set(as, [...(inbox.get(as) || []), ...texts]);
  return inbox.get(as);
}

async function eventually(what, fn, seconds = 60) {
  const until = Date.now() + seconds * 1000;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Sends `usd` from the demo sender to a Honduran recipient (partner 2 pays there); the recipient's code. */
async function sendCashPickup(name, phone, usd) {
  await chat(SENDER, `send ${usd} to ${name} ${phone}, cash pickup`);
  await chat(SENDER, "yes");
  const e164 = phone.replace(/[^+0-9]/g, "");
  const text = await eventually(`the pickup code for ${name}`, async () =>
    (await messages(e164)).find((t) => CODE.test(t)),
  );
  return text.match(CODE)[1];
}

// ------------------------------------------------------------------------------------------- the browser side

async function context(viewport, locale = "en-US") {
  return browser.newContext({ viewport, locale });
}

/** Presses Tab until `target` has the focus (every action must be reachable by keyboard): a CSS selector, or
 *  `{ button: "label" }` for the button with that text. */
async function tabTo(page, target, most = 60) {
  for (let i = 0; i < most; i++) {
    await page.keyboard.press("Tab");
    const here = await page.evaluate((t) => {
      const a = document.activeElement;
      if (typeof t === "string") return a === document.querySelector(t);
      return a?.tagName === "BUTTON" && a.textContent.trim() === t.button;
    }, target);
    if (here) return;
  }
  assert.fail(`${JSON.stringify(target)} is not reachable with the Tab key on ${page.url()}`);
}

async function signIn(page, console_, who) {
  await page.goto(`${BASE}/${console_}/login`);
  await tabTo(page, "#username");
  await page.keyboard.type(who.username);
  await tabTo(page, "#password");
  await page.keyboard.type(who.password);
  await Promise.all([page.waitForURL(`${BASE}/${console_}/`), page.keyboard.press("Enter")]);
}

/** Tabs through the whole page: every visible link, button, field and disclosure must take the focus. */
async function allReachable(page, name) {
  const total = await page.evaluate(() => {
    const all = [...document.querySelectorAll("a[href], button, input:not([type=hidden]), select, textarea, summary")];
    const shown = all.filter((el) => el.checkVisibility());
    // a radio group is one Tab stop (arrow keys move inside it)
    const key = (el) => (el.type === "radio" ? `radio:${el.name}` : null);
    const groups = new Map();
    let n = 0;
    for (const el of shown) {
      const k = key(el);
      if (k && groups.has(k)) {
        el.dataset.kbd = groups.get(k);
        continue;
      }
      el.dataset.kbd = String(n);
      if (k) groups.set(k, String(n));
      n++;
    }
    return n;
  });
  await page.evaluate(() => document.activeElement?.blur());
  const seen = new Set();
  for (let i = 0; i < total * 2 + 5 && seen.size < total; i++) {
    await page.keyboard.press("Tab");
    const k = await page.evaluate(() => document.activeElement?.dataset?.kbd);
    if (k !== undefined) seen.add(k);
  }
  assert.equal(seen.size, total, `${name}: ${total - seen.size} of ${total} controls cannot be reached with Tab`);
}

/** No horizontal scrolling, every control reachable by keyboard, no serious or critical accessibility finding, and
 *  a screenshot. */
async function check(page, name) {
  await allReachable(page, name);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `${name}: ${overflow} px wider than the ${page.viewportSize().width} px screen`);
  const axe = await new AxeBuilder({ page }).analyze();
  const serious = axe.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(
    serious.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`),
    [],
    `${name}: axe-core findings`,
  );
  await page.screenshot({ path: join(SHOTS, `${name}-${page.viewportSize().width}.png`), fullPage: true });
}

async function lookUp(page, code) {
  await page.goto(`${BASE}/partner/`);
  await tabTo(page, "#code");
  await page.keyboard.type(code);
  const response = page.waitForResponse((r) => r.url() === `${BASE}/partner/lookup` && r.request().method() === "POST");
  const loaded = page.waitForURL(`${BASE}/partner/lookup`, { waitUntil: "load" });
  await page.keyboard.press("Enter");
  const status = (await response).status();
  await loaded;
  return status;
}

// ------------------------------------------------------------------------------------------------- tests

let paidCode;

test("an agent pays out a chat remittance by its pickup code on a phone, and the sender is told in chat", async () => {
  const code = await sendCashPickup("Maria Lopez", "+504 9999 0101", 20);
  paidCode = code;
  const ctx = await context(PHONE);
  const page = await ctx.newPage();
  await page.goto(`${BASE}/partner/login`);
  await check(page, "partner-login");
  await signIn(page, "partner", AGENT);
  await eventually("the payout in the waiting list", async () => {
    await page.goto(`${BASE}/partner/`);
    return (await page.locator(".card", { hasText: "Maria Lopez" }).count()) > 0;
  });
  await check(page, "partner-counter");

  // typed as people type it: lower case, no dashes
  assert.equal(await lookUp(page, code.replaceAll("-", "").toLowerCase()), 200);
  assert.match(await page.locator("#amount").innerText(), /^[0-9,]+\.[0-9]{2} HNL$/);
  assert.equal(await page.locator("#status").innerText(), "Ready for pickup");
  assert.equal(await page.locator("#recipient").innerText(), "Maria Lopez");
  await check(page, "partner-payout");

  await tabTo(page, "input[name=confirm]");
  await page.keyboard.press("Space");
  await tabTo(page, "button.primary");
  await Promise.all([page.waitForURL(/\/partner\/\?done=paid$/), page.keyboard.press("Enter")]);
  assert.match(await page.locator(".notice").innerText(), /Paid/);
  assert.ok((await page.locator("#paid-h + ul .card", { hasText: "Maria Lopez" }).count()) > 0);

  await eventually("the sender's 'recipient has been paid' message", async () =>
    (await messages(SENDER)).some((t) => /has been paid/.test(t)),
  );
  await eventually("the settlement on the settlements page", async () => {
    await page.goto(`${BASE}/partner/settlements`);
    return (await page.locator("td.mono").count()) > 0;
  });
  assert.match(await page.locator("td.mono").first().innerText(), /^0x[0-9a-f]{64}$/);
  await check(page, "partner-settlements");

  // a paid payout cannot be paid again: the look-up says so, and a second "Paid" (a double press) is refused
  assert.equal(await lookUp(page, code), 200);
  assert.match(await page.locator(".alert").innerText(), /already paid/);
  const again = await page.request.post(`${BASE}/partner/payouts/${await page.locator("dl.facts").getAttribute("data-payout")}/paid`, {
    form: { csrf: await page.locator("input[name=csrf]").first().inputValue(), code, confirm: "yes" },
  });
  assert.equal(again.status(), 409);
  await ctx.close();
});

test("another partner's agent cannot see the payout; wrong codes are refused, then rate-limited", async () => {
  const code = await sendCashPickup("Jose Perez", "+504 9999 0202", 15);
  const ctx = await context(DESKTOP);
  const page = await ctx.newPage();
  await signIn(page, "partner", OTHER_AGENT);
  // partner 1's agent: partner 2's payout does not exist here, and the miss counts as a wrong code
  assert.equal(await lookUp(page, code), 404);
  assert.match(await page.locator(".alert").innerText(), /No payout waits with this code/);
  await check(page, "partner-wrong-code");
  for (const wrong of ["AAAA-BBBB-CCCC", "1234-5678-9ABC", "ZZZZ-ZZZZ-ZZZZ", "0000-0000-0000"]) {
    assert.equal(await lookUp(page, wrong), 404, wrong);
  }
  // the sixth within the window is refused without looking, right code or not
  assert.equal(await lookUp(page, code), 429);
  assert.match(await page.locator(".alert").innerText(), /Too many wrong codes/);
  // partner 1 (simulated, paid by webhooks) serves Guatemala: its agent sees the deliveries and sends one again
  await chat(SENDER, "send 10 to Ana Perez +502 5555 0303, cash pickup");
  await chat(SENDER, "yes");
  await page.goto(`${BASE}/partner/`);
  await tabTo(page, 'nav a[href="/partner/webhooks"]');
  await Promise.all([page.waitForURL(`${BASE}/partner/webhooks`), page.keyboard.press("Enter")]);
  await eventually("a delivered webhook", async () => {
    await page.reload();
    return (await page.locator("#deliveries .card", { hasText: "delivered" }).count()) > 0;
  });
  await check(page, "partner-webhooks");
  await tabTo(page, "#deliveries .card form button");
  await Promise.all([page.waitForURL(/done=resent$/), page.keyboard.press("Enter")]);
  assert.match(await page.locator(".notice").innerText(), /sent again/);
  await ctx.close();

  // the limit is this agent's and its partner's: partner 2's agent still finds the payout (on a desktop)
  const ctx2 = await context(DESKTOP);
  const page2 = await ctx2.newPage();
  await signIn(page2, "partner", AGENT);
  assert.equal(await lookUp(page2, code), 200);
  assert.equal(await page2.locator("#recipient").innerText(), "Jose Perez");
  await check(page2, "partner-payout");
  // the recipient brought no ID: report it by keyboard; the payout stays open
  await tabTo(page2, "details summary");
  await page2.keyboard.press("Enter");
  await tabTo(page2, "input[value=id_mismatch]");
  await page2.keyboard.press("ArrowDown");
  assert.ok(await page2.locator("input[value=no_id]").isChecked());
  await tabTo(page2, "#note");
  await page2.keyboard.type("will come back tomorrow");
  await tabTo(page2, { button: "Report a problem" });
  await Promise.all([page2.waitForURL(/done=problem$/), page2.keyboard.press("Enter")]);
  assert.match(await page2.locator(".notice").innerText(), /Problem recorded/);
  const waiting = page2.locator("#waiting-h + ul .card", { hasText: "Jose Perez" });
  assert.match(await waiting.innerText(), /no_id: will come back tomorrow/);
  await check(await page2.goto(`${BASE}/partner/`).then(() => page2), "partner-counter");
  await check(await page2.goto(`${BASE}/partner/settlements`).then(() => page2), "partner-settlements");
  await ctx2.close();
});

test("the operator finds the remittance by phone and sees its whole timeline", async () => {
  assert.ok(paidCode, "the first test paid a remittance");
  for (const viewport of [PHONE, DESKTOP]) {
    const ctx = await context(viewport);
    const page = await ctx.newPage();
    await check(await page.goto(`${BASE}/ops/login`).then(() => page), "ops-login");
    await signIn(page, "ops", OPERATOR);
    await check(page, "ops-dashboard");
    assert.match(await page.locator("#recon").innerText(), /match/);

    await page.goto(`${BASE}/ops/remittances`);
    await tabTo(page, "#q");
    await page.keyboard.type("+504 9999 0101");
    await Promise.all([page.waitForURL(/q=/), page.keyboard.press("Enter")]);
    await check(page, "ops-search");
    await tabTo(page, ".card a");
    await Promise.all([page.waitForURL(/\/ops\/remittances\/0x[0-9a-f]{64}$/), page.keyboard.press("Enter")]);
    const transitions = await page.locator("#transitions").innerText();
    for (const step of ["funds_locked", "payout_assigned", "paid"]) assert.match(transitions, new RegExp(step));
    assert.match(await page.locator("main").innerText(), /agent\.tienda/);
    await check(page, "ops-remittance");
    await ctx.close();
  }
});

test("the operator reviews a held transfer, suspends a partner and sees the webhooks", async () => {
  // a send the demo sanctions list holds
  const held = await chat(SENDER, "send 50 to Joaquin Guzman Loera +52 55 1234 5678, cash pickup");
  assert.ok(held.replies.length > 0);
  await chat(SENDER, "yes");
  const ctx = await context(PHONE);
  const page = await ctx.newPage();
  await signIn(page, "ops", OPERATOR);
  // every console page is in the header's navigation
  await tabTo(page, 'nav a[href="/ops/holds"]');
  await Promise.all([page.waitForURL(`${BASE}/ops/holds`), page.keyboard.press("Enter")]);
  await eventually("the held transfer in the review queue", async () => {
    await page.reload();
    return (await page.locator("#holds .card").count()) > 0;
  });
  await check(page, "ops-holds");
  await tabTo(page, "#holds textarea");
  await page.keyboard.type("name matches a listed person; rejected pending documents");
  await tabTo(page, "#holds button[value=reject]");
  await Promise.all([page.waitForURL(/done=decided$/), page.keyboard.press("Enter")]);
  assert.match(await page.locator(".notice").innerText(), /Decision recorded/);
  assert.equal(await page.locator("#holds .card").count(), 0);

  await page.goto(`${BASE}/ops/partners`);
  await check(page, "ops-partners");
  await page.goto(`${BASE}/ops/partners/2`);
  assert.match(await page.locator("main").innerText(), /HN HNL/);
  await check(page, "ops-partner");
  // post a rate by keyboard: the summary opens the form
  await tabTo(page, "details summary");
  await page.keyboard.press("Enter");
  for (const [field, value] of [["#r-country", "HN"], ["#r-currency", "HNL"], ["#r-rate", "24.61"]]) {
    await tabTo(page, field);
    await page.keyboard.type(value);
  }
  await tabTo(page, { button: "Post a rate" });
  await Promise.all([page.waitForURL(/done=rate$/), page.keyboard.press("Enter")]);
  assert.match(await page.locator(".notice").innerText(), /Rate posted/);
  assert.match(await page.locator("table").innerText(), /24\.61/);
  await page.goto(`${BASE}/ops/webhooks`);
  await check(page, "ops-webhooks");

  // suspending partner 2 shuts its agents out at once; activating lets them back
  const agent = await (await context(DESKTOP)).newPage();
  await signIn(agent, "partner", AGENT);
  await page.goto(`${BASE}/ops/partners`);
  // the form posts, then the browser follows the redirect back to the list: wait for that page to load
  const submitted = () =>
    Promise.all([
      page.waitForResponse((r) => r.url() === `${BASE}/ops/partners/2/status` && r.request().method() === "POST"),
      page.waitForResponse((r) => r.url() === `${BASE}/ops/partners` && r.request().method() === "GET"),
    ]).then(() => page.waitForLoadState("load"));
  await tabTo(page, { button: "Suspend Tienda Express" });
  await Promise.all([submitted(), page.keyboard.press("Enter")]);
  assert.equal((await agent.goto(`${BASE}/partner/`)).status(), 403);
  await tabTo(page, { button: "Activate Tienda Express" });
  await Promise.all([submitted(), page.keyboard.press("Enter")]);
  assert.equal((await agent.goto(`${BASE}/partner/`)).status(), 200);
  await agent.context().close();
  await ctx.close();
});

test("forged requests are refused: CSRF, another origin, the wrong role", async () => {
  const ctx = await context(DESKTOP);
  const page = await ctx.newPage();
  await signIn(page, "partner", AGENT);
  const csrf = await page.locator("input[name=csrf]").first().inputValue();
  // a form post without this session's token
  // (a script could not even send it: the Content-Security-Policy allows no fetch, so it is a plain form)
  const forged = page.waitForResponse((r) => r.url() === `${BASE}/partner/lookup`);
  const shown = page.waitForURL(`${BASE}/partner/lookup`, { waitUntil: "load" });
  await page.evaluate(() => {
    const f = document.createElement("form");
    f.method = "post";
    f.action = "/partner/lookup";
    for (const [k, v] of [["csrf", "forged"], ["code", "AAAA-BBBB-CCCC"]]) {
      const i = document.createElement("input");
      i.name = k;
      i.value = v;
      f.append(i);
    }
    document.body.append(f);
    f.submit();
  });
  assert.equal((await forged).status(), 403);
  await shown;
  assert.match(await page.locator(".alert").innerText(), /form expired/);
  // the right token, sent from another site
  const cross = await page.request.post(`${BASE}/partner/lookup`, {
    form: { csrf, code: "AAAA-BBBB-CCCC" },
    headers: { origin: "http://evil.example" },
  });
  assert.equal(cross.status(), 403);
  // an agent on the operator console
  const ops = await page.goto(`${BASE}/ops/`);
  assert.equal(ops.status(), 403);
  await ctx.close();

  const octx = await context(DESKTOP);
  const opage = await octx.newPage();
  await signIn(opage, "ops", OPERATOR);
  const ocsrf = await opage.locator("input[name=csrf]").first().inputValue();
  const r = await opage.request.post(`${BASE}/partner/lookup`, { form: { csrf: ocsrf, code: "AAAA-BBBB-CCCC" } });
  assert.equal(r.status(), 403);
  // signed out, the session is gone on the server too
  await tabTo(opage, "button.link");
  await Promise.all([opage.waitForURL(`${BASE}/ops/login`), opage.keyboard.press("Enter")]);
  assert.equal((await opage.goto(`${BASE}/ops/`)).url(), `${BASE}/ops/login`);
  await octx.close();
});

test("Spanish: the browser's language, and the switch", async () => {
  const ctx = await context(PHONE, "es-GT");
  const page = await ctx.newPage();
  await page.goto(`${BASE}/partner/login`);
  assert.equal(await page.locator("html").getAttribute("lang"), "es");
  assert.equal(await page.locator("h1").innerText(), "Entrar");
  await signIn(page, "partner", AGENT);
  assert.match(await page.locator("main").innerText(), /Código de retiro/);
  await check(page, "partner-counter-es");
  await tabTo(page, "a[lang=en]");
  // the switch sets a cookie and comes back to this same page: wait for the page after the switch
  await Promise.all([
    page.waitForResponse((r) => r.url().startsWith(`${BASE}/console/lang/en`)),
    page.keyboard.press("Enter"),
  ]);
  await page.waitForURL(`${BASE}/partner/`, { waitUntil: "load" });
  assert.match(await page.locator("main").innerText(), /Pickup code/);
  await ctx.close();
});

test("every page at phone and desktop width: no overflow, every control by keyboard, axe, a screenshot", async () => {
  for (const viewport of [PHONE, DESKTOP]) {
    const ctx = await context(viewport);
    const page = await ctx.newPage();
    await page.goto(`${BASE}/partner/login`);
    await check(page, "partner-login");
    await signIn(page, "partner", AGENT);
    for (const [path, name] of [
      ["/partner/", "partner-counter"],
      ["/partner/settlements", "partner-settlements"],
      ["/partner/webhooks", "partner-webhooks"],
    ]) {
      await page.goto(BASE + path);
      await check(page, name);
    }
    // the payout page: a payout still waiting (reported, not paid, in the tests above)
    const waiting = await page.goto(`${BASE}/partner/`).then(() => page.locator("#waiting-h + ul .card").count());
    assert.ok(waiting > 0, "a payout waits at the counter");
    await ctx.close();

    const octx = await context(viewport);
    const ops = await octx.newPage();
    await ops.goto(`${BASE}/ops/login`);
    await check(ops, "ops-login");
    await signIn(ops, "ops", OPERATOR);
    for (const [path, name] of [
      ["/ops/", "ops-dashboard"],
      ["/ops/remittances?q=%2B504+9999+0101", "ops-search"],
      ["/ops/partners", "ops-partners"],
      ["/ops/partners/2", "ops-partner"],
      ["/ops/holds", "ops-holds"],
      ["/ops/webhooks", "ops-webhooks"],
    ]) {
      await ops.goto(BASE + path);
      await check(ops, name);
    }
    await ops.goto(`${BASE}/ops/remittances?q=%2B504+9999+0101`);
    await ops.locator(".card a").first().click();
    await ops.waitForURL(/\/ops\/remittances\/0x[0-9a-f]{64}$/);
    await check(ops, "ops-remittance");
    await octx.close();
  }
});
