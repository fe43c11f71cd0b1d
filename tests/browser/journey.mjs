// The console in a real browser (Debian's Chromium driven by playwright-core): the operator's and the
// customer's journeys of CONSOLE.md (with the price book of BILLING.md, "Prices": base and charged prices,
// class prices and a request fee, ending a row, volume tiers, revenue / provider cost / margin), an account's
// calls and ledger rows with a refund from a call's row, the operator's overview, the customer's price list,
// forms sent back as typed after a refusal (the message beside the field), amounts rounded with the exact
// figure in their <data value> and on hover, axe-core on every screen, screenshots at 375 px and 1440 px, and
// the security checks (CSRF, cookie flags, CSP, no key in any URL). Started by tests/tests/it/console.rs,
// which passes the stack in the environment and checks the services' logs afterwards.
//
// Env: GATEWAY (base URL), ADMIN_KEY, SCREENSHOTS (folder), CHROMIUM (default /usr/bin/chromium).
// Prints `RESULT <json>` on success; any failed check throws (exit code 1).

import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const { GATEWAY, ADMIN_KEY, SCREENSHOTS } = process.env;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
mkdirSync(SCREENSHOTS, { recursive: true });

function check(condition, message) {
  if (!condition) {
    throw new Error(`check failed: ${message}`);
  }
}

// Exact decimal USD as integer nano-dollars.
function nanos(text) {
  const trimmed = String(text).trim();
  const negative = trimmed.startsWith("-");
  const [whole, fraction = ""] = trimmed.replace("-", "").split(".");
  const value = BigInt(whole || "0") * 1000000000n + BigInt((fraction + "000000000").slice(0, 9));
  return negative ? -value : value;
}

async function api(method, path, bearer, body) {
  const response = await fetch(`${GATEWAY}${path}`, {
    method,
    headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, text, json: text ? JSON.parse(text) : null };
}

// A JSON number of the raw text, exactly as written (JSON.parse would round it through a double).
function rawNumber(text, field) {
  const match = new RegExp(`"${field}":(-?[0-9.]+)`).exec(text);
  check(match, `${field} in ${text}`);
  return match[1];
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
const visited = [];
const consoleErrors = [];
const screens = [];

async function newPage(width = 1440) {
  const context = await browser.newContext({ viewport: { width, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  page.on("framenavigated", (frame) => { if (frame === page.mainFrame()) { visited.push(frame.url()); } });
  page.on("console", (message) => { if (message.type() === "error") { consoleErrors.push(message.text()); } });
  page.on("pageerror", (error) => consoleErrors.push(String(error)));
  return { context, page };
}

// axe-core in the page (evaluated through the DevTools protocol, so the page's CSP stays as it is), then a
// screenshot at both widths.
async function screen(page, name) {
  await page.evaluate(axeSource);
  const results = await page.evaluate(async () => await window.axe.run(document, { resultTypes: ["violations"] }));
  const serious = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  check(serious.length === 0, `${name}: accessibility violations ${JSON.stringify(serious.map((v) => ({ id: v.id, nodes: v.nodes.map((n) => n.target) })))}`);
  for (const width of [375, 1440]) {
    await page.setViewportSize({ width, height: 900 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    const culprits = overflow <= 1 ? [] : await page.evaluate(() => [...document.querySelectorAll("body *")]
      .filter((node) => node.getBoundingClientRect().right > document.documentElement.clientWidth + 1
                        && !(node.parentElement && node.parentElement.closest(".scroll")))
      .slice(0, 5).map((node) => `${node.tagName.toLowerCase()}#${node.id}.${node.className}`));
    check(overflow <= 1, `${name} at ${width}px: the page scrolls sideways by ${overflow}px (${culprits.join(", ")})`);
    await page.screenshot({ path: `${SCREENSHOTS}/${name}-${width}.png`, fullPage: true });
  }
  await page.setViewportSize({ width: 1440, height: 900 });
  screens.push(name);
}

async function signIn(page, key) {
  await page.goto(`${GATEWAY}/console/`);
  check(page.url().endsWith("/console/sign-in"), `signed out visitors land on the sign-in page, not ${page.url()}`);
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForLoadState();
}

function today(offsetDays = 0) {
  return new Date(Date.now() + offsetDays * 86400000).toISOString().slice(0, 10);
}

const result = {};
// A model the mock reports 1,000 prompt tokens (400 of them read from the cache) and 1,000 completion
// tokens for; the operator prices it for the journey's account alone, with a cached-input price and a fee.
const CACHED_MODEL = "mock-usage-1000-1000-cached-400";

// The figure of each cell of a table row, by its data-col: an amount's exact figure (the value of its
// <data>, shown rounded), else the cell's text.
async function cells(row) {
  return row.evaluate((tr) => Object.fromEntries([...tr.querySelectorAll("[data-col]")]
    .map((cell) => [cell.getAttribute("data-col"),
                    cell.querySelector("data") ? cell.querySelector("data").getAttribute("value") : cell.textContent.trim()])));
}

// An amount shown rounded (two decimals from 1 USD up, four significant digits below) inside
// <data value="exact" title="exact USD">: its exact figure, checked against the text shown.
async function amount(locator, what) {
  const data = locator.locator("data");
  const [exact, title, shown] = [await data.getAttribute("value"), await data.getAttribute("title"), (await data.textContent()).trim()];
  check(title === `${exact} USD`, `${what}: the exact figure on hover: ${title}`);
  const error = nanos(shown) - nanos(exact);
  const big = nanos(exact) >= 1000000000n || nanos(exact) <= -1000000000n;
  const abs = (value) => (value < 0n ? -value : value);
  check(big ? /^-?[0-9]+\.[0-9]{2}$/.test(shown) && abs(error) <= 5000000n
            : shown.replace(/^-?0\.0*/, "").length <= 4 && abs(error) * 1000n <= abs(nanos(exact)),
        `${what}: ${shown} is ${exact} rounded`);
  return exact;
}

// A form sent back after a refusal of what was typed: answered `status`, the message right under the field
// (the field marked invalid, described by the message, focused), the values kept.
async function refusedBeside(page, response, field, words, kept, what) {
  check(response.status() === 400, `${what}: answered ${response.status()}`);
  const input = page.locator(`#${field}`);
  check((await page.locator(`#${field}-error`).textContent()).includes(words), `${what}: the message beside ${field}`);
  check((await input.getAttribute("aria-invalid")) === "true" && (await input.getAttribute("aria-describedby")).split(" ").includes(`${field}-error`),
        `${what}: ${field} is marked invalid and described by its message`);
  check(await input.evaluate((node) => node === document.activeElement), `${what}: ${field} is focused`);
  for (const [id, value] of Object.entries(kept)) {
    check((await page.locator(`#${id}`).inputValue()) === value, `${what}: ${id} kept as typed (${value})`);
  }
  check(await page.getByRole("button", { name: "Sign out" }).isVisible(), `${what}: still signed in`);
}

// --- The operator -------------------------------------------------------------------------------
{
  const { context, page } = await newPage();
  await page.goto(`${GATEWAY}/console/sign-in`);
  await screen(page, "sign-in");
  // A wrong key is refused in words.
  await page.getByLabel("API key").fill("tb_prod_not_a_key");
  await page.getByRole("button", { name: "Sign in" }).click();
  check((await page.getByRole("alert").textContent()).includes("not valid"), "a wrong key is refused");

  await signIn(page, ADMIN_KEY);
  check(page.url().endsWith("/console/admin/overview"), `the operator lands on the overview, not ${page.url()}`);
  check((await page.getByRole("link", { name: "Overview" }).getAttribute("aria-current")) === "page", "Overview is the operator's first page");
  check(await page.getByText("No calls in this range.").isVisible(), "an empty overview says so");
  await screen(page, "operator-overview-empty");
  await page.getByRole("link", { name: "Accounts" }).click();
  await page.waitForLoadState();
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === "console_session");
  check(session && session.httpOnly && session.sameSite === "Strict" && session.path === "/console", `cookie flags ${JSON.stringify(session)}`);
  check(!session.value.includes(ADMIN_KEY), "the cookie is a session token, not the key");
  const csp = (await page.request.get(`${GATEWAY}/console/admin/accounts`)).headers()["content-security-policy"];
  check(csp && csp.includes("default-src 'self'") && csp.includes("script-src 'self'") && !csp.includes("unsafe-inline"), `CSP ${csp}`);
  result.csp = csp;
  await screen(page, "operator-accounts-empty");

  await page.getByLabel("Name", { exact: true }).fill("Acme Robotics");
  await page.getByRole("button", { name: "Create account" }).click();
  await page.waitForLoadState();
  check((await page.getByRole("heading", { level: 1 }).textContent()).includes("Acme Robotics"), "the new account's page");
  const accountUrl = page.url().split("?")[0];
  result.accountId = accountUrl.split("/").pop();

  // A key with a rate limit that is not a number: the page again, the message beside it, the name kept.
  await page.locator("#key_name").fill("backend");
  await page.locator("#key_rpm").fill("lots");
  await page.getByRole("button", { name: "Create key" }).click();
  await page.waitForLoadState();
  check((await page.locator("#key_rpm-error").textContent()).includes("whole number"), "the message is beside the rate limit");
  check((await page.locator("#key_rpm").inputValue()) === "lots" && (await page.locator("#key_name").inputValue()) === "backend", "the key form keeps what was typed");
  await page.locator("#key_rpm").fill("");

  // A key, shown once.
  await page.locator("#key_name").fill("backend");
  await page.getByRole("button", { name: "Create key" }).click();
  await page.waitForLoadState();
  const key = (await page.getByTestId("new-key").textContent()).trim();
  check(key.startsWith("tb_prod_"), `the key is shown once: ${key.slice(0, 8)}…`);
  await screen(page, "operator-key-created");
  result.key = key;
  // Post/redirect/get: the key's page was reached by a redirect holding no secret; reloading it makes no
  // second key and does not show the key again.
  check(!page.url().includes(key) && /\/console\/admin\/new-key\/[0-9a-f]+$/.test(page.url()), `the key's page: ${page.url()}`);
  await page.reload();
  await page.waitForLoadState();
  check(await page.getByTestId("key-gone").isVisible(), "a reload says the key was shown once");
  check(!(await page.content()).includes(key), "a reload does not show the key again");
  await page.goto(accountUrl);
  check(await page.locator("tr[data-key]").count() === 1, "the reload created no second key");

  // A bad amount: the page comes back with the message beside the amount, everything typed kept.
  await page.goto(accountUrl);
  await page.locator("#credit_amount").fill("12abc");
  await page.locator("#category").selectOption("promotional");
  await page.locator("#credit_expires").fill(today(30));
  await page.locator("#credit_description").fill("kept as typed");
  const [refusedCredit] = await Promise.all([
    page.waitForResponse((response) => response.url().endsWith("/credits")),
    page.getByRole("button", { name: "Add credits" }).click(),
  ]);
  await page.waitForLoadState();
  check(refusedCredit.status() === 400, `a bad amount is answered 400: ${refusedCredit.status()}`);
  check((await page.locator("#credit_amount-error").textContent()).includes("amount"), "the message is beside the amount");
  check((await page.locator("#credit_amount").getAttribute("aria-describedby")) === "credit_amount-error", "the amount is described by its message");
  check((await page.locator("#credit_amount").inputValue()) === "12abc", "the amount typed is kept");
  check((await page.locator("#category").inputValue()) === "promotional", "the category is kept");
  check((await page.locator("#credit_expires").inputValue()) === today(30), "the expiry is kept");
  check((await page.locator("#credit_description").inputValue()) === "kept as typed", "the description is kept");
  check(await page.getByRole("button", { name: "Sign out" }).isVisible(), "still signed in on the refusal");
  await screen(page, "operator-credits-refused");

  // Promotional credit with an expiry, paid credit, caps.
  await page.goto(accountUrl);
  await page.locator("#credit_amount").fill("1.5");
  await page.locator("#category").selectOption("promotional");
  await page.locator("#credit_expires").fill(today(30));
  await page.getByRole("button", { name: "Add credits" }).click();
  await page.waitForLoadState();
  check((await page.getByRole("status").textContent()).includes("Credits added"), "promotional credit added");
  // An expiry set as a UTC day is shown as that UTC date, labelled UTC, whatever the viewer's time zone.
  check(await page.getByText(`${today(30)} (UTC)`, { exact: true }).first().isVisible(), "the grant's expiry is its UTC day");
  await page.locator("#credit_amount").fill("8.25");
  await page.locator("#category").selectOption("paid");
  await page.getByRole("button", { name: "Add credits" }).click();
  await page.waitForLoadState();
  await page.locator("#daily_limit").fill("5");
  await page.locator("#monthly_limit").fill("50");
  await page.getByRole("button", { name: "Save caps" }).click();
  await page.waitForLoadState();
  check((await page.getByRole("status").textContent()).includes("Caps saved"), "caps saved");
  check((await page.getByTestId("balance").textContent()).trim() === "9.75 USD", "the operator sees 9.75 USD");

  // A volume tier: 10 % off from 100 USD of spend in the month; the page reads it back from billing-svc.
  check(await page.getByTestId("no-tiers").isVisible(), "no tiers at first");
  await page.getByLabel("Tier 1: from monthly spend (USD)").fill("100");
  await page.getByLabel("Tier 1: percent off").fill("10");
  await page.getByRole("button", { name: "Save tiers" }).click();
  await page.waitForLoadState();
  check((await page.getByRole("status").textContent()).includes("Volume tiers saved"), "tiers saved");
  const tierCells = await page.getByTestId("tiers").locator("tbody td").allTextContents();
  check(JSON.stringify(tierCells) === JSON.stringify(["100", "10 %"]), `the tier is shown: ${tierCells}`);
  check((await page.getByLabel("Tier 1: from monthly spend (USD)").inputValue()) === "100", "the form holds the tier");
  const tiersApi = await api("GET", `/admin/accounts/${result.accountId}`, ADMIN_KEY);
  check(/"discountTiers":\[\{"fromMonthlySpend":"?100"?,"percentOff":"?10"?\}\]/.test(tiersApi.text), `the API has the tier: ${tiersApi.text}`);
  check((await amount(page.getByTestId("balance"), "the account's balance")) === "9.75", "the balance's exact figure");
  await screen(page, "operator-account");
  // A second tier whose percent is not a number: the page again, the message beside that row's percent,
  // every row as typed, and the tiers unchanged.
  await page.getByLabel("Tier 2: from monthly spend (USD)").fill("1000");
  await page.getByLabel("Tier 2: percent off").fill("ten");
  const [refusedTier] = await Promise.all([
    page.waitForResponse((response) => response.url().endsWith("/tiers")),
    page.getByRole("button", { name: "Save tiers" }).click(),
  ]);
  await page.waitForLoadState();
  await refusedBeside(page, refusedTier, "tier_percent_2", "percent off",
                      { tier_from_1: "100", tier_percent_1: "10", tier_from_2: "1000", tier_percent_2: "ten" }, "a refused tier");
  const tiersAfter = await api("GET", `/admin/accounts/${result.accountId}`, ADMIN_KEY);
  check(/"discountTiers":\[\{"fromMonthlySpend":"?100"?,"percentOff":"?10"?\}\]/.test(tiersAfter.text), `a refused tier changes nothing: ${tiersAfter.text}`);
  await screen(page, "operator-tiers-refused");
  await page.goto(accountUrl);

  // The key's policy: a rate limit and an allow-list.
  await page.getByRole("link", { name: "Edit backend" }).click();
  await page.waitForLoadState();
  await screen(page, "operator-key-policy");
  // A daily cap that is not an amount (billing-svc refuses it): the page again, the message beside the cap,
  // the rest as typed.
  await page.getByLabel("Requests per minute").fill("100");
  await page.getByLabel("Daily cap (USD)").fill("lots");
  const [refusedPolicy] = await Promise.all([
    page.waitForResponse((response) => /\/console\/admin\/keys\/[^/]+$/.test(response.url()) && response.request().method() === "POST"),
    page.getByRole("button", { name: "Save key" }).click(),
  ]);
  await page.waitForLoadState();
  await refusedBeside(page, refusedPolicy, "daily_limit", "daily_limit",
                      { daily_limit: "lots", requests_per_minute: "100", name: "backend" }, "a refused key policy");
  await screen(page, "operator-key-policy-refused");
  await page.getByLabel("Daily cap (USD)").fill("");
  await page.getByLabel("Allowed models (comma-separated)").fill(`mock-usage-1000-1000, ${CACHED_MODEL}, mock`);
  await page.getByRole("button", { name: "Save key" }).click();
  await page.waitForLoadState();
  check((await page.getByRole("status").textContent()).includes("Key saved"), "policy saved");
  check(await page.getByText("100 req/min").isVisible(), "the key's policy is shown");

  // A key revoked in one tab, then rotated from another tab's stale page: billing-svc refuses (409,
  // key_revoked), the page says so in words, the operator stays signed in, and the key is listed as revoked
  // with nothing left to do to it.
  await page.locator("#key_name").fill("scratch");
  await page.getByRole("button", { name: "Create key" }).click();
  await page.waitForLoadState();
  check((await page.getByTestId("new-key").textContent()).trim().startsWith("tb_prod_"), "a second key");
  await page.goto(accountUrl);
  const other = await context.newPage();
  other.on("framenavigated", (frame) => { if (frame === other.mainFrame()) { visited.push(frame.url()); } });
  await other.goto(accountUrl);
  // Without JavaScript's question, a revoke post only asks, on a page of its own, and revokes nothing.
  const revokeForm = other.locator("form", { has: other.getByRole("button", { name: "Revoke scratch" }) });
  const unconfirmed = await other.request.post(`${GATEWAY}${await revokeForm.getAttribute("action")}`, {
    form: { csrf: await revokeForm.locator('input[name="csrf"]').inputValue(), account_id: result.accountId },
  });
  check(unconfirmed.status() === 200 && (await unconfirmed.text()).includes("Revoke the key"), `an unconfirmed revoke asks: ${unconfirmed.status()}`);
  await other.reload();
  check(await other.locator('tr[data-state="revoked"]').count() === 0, "an unconfirmed revoke revokes nothing");
  let revokeQuestion = "";
  other.once("dialog", (dialog) => { revokeQuestion = dialog.message(); dialog.accept(); });
  await other.getByRole("button", { name: "Revoke scratch" }).click();
  await other.waitForLoadState();
  check((await other.getByRole("status").textContent()).includes("Key revoked"), "key revoked");
  check(revokeQuestion.startsWith("Revoke this key?"), `revoke asks first: ${revokeQuestion}`);
  const revokedRow = other.locator('tr[data-state="revoked"]');
  check(await revokedRow.count() === 1, "the revoked key is listed as revoked");
  check(/revoked\s+\S/.test((await revokedRow.locator('[data-col="state"]').textContent()).trim()), "revoked with its date");
  check(await revokedRow.locator("button, a").count() === 0, "no actions on a revoked key");
  await other.close();
  page.once("dialog", (dialog) => dialog.accept());
  const [rotated] = await Promise.all([
    page.waitForResponse((response) => response.url().endsWith("/rotate")),
    page.getByRole("button", { name: "Rotate scratch" }).click(),
  ]);
  await page.waitForLoadState();
  check(rotated.status() === 409, `rotating a revoked key: ${rotated.status()}`);
  check((await page.getByTestId("refusal").textContent()).includes("revoked"), "the refusal in words");
  check(await page.getByRole("button", { name: "Sign out" }).isVisible(), "still signed in on the refusal");
  await screen(page, "operator-key-revoked-refusal");
  await page.goto(accountUrl);
  check(page.url().startsWith(accountUrl), `the operator is still signed in: ${page.url()}`);
  check(await page.locator('tr[data-state="revoked"] button').count() === 0, "still no actions on the revoked key");
  check(await page.locator('tr[data-state="live"]').count() === 1, "the other key is live");
  const editRevoked = await page.request.get(`${GATEWAY}/console/admin/keys/${await page.locator('tr[data-state="revoked"]').getAttribute("data-key")}?account_id=${result.accountId}`);
  check(editRevoked.status() === 409, `editing a revoked key: ${editRevoked.status()}`);

  // Any form without its CSRF token is refused.
  const forged = await page.request.post(`${accountUrl}/credits`, { form: { amount: "100" } });
  check(forged.status() === 403 || forged.status() === 422, `a credit without CSRF token: ${forged.status()}`);
  const wrong = await page.request.post(`${accountUrl}/credits`, { form: { amount: "100", csrf: "0".repeat(64) } });
  check(wrong.status() === 403, `a credit with a wrong CSRF token: ${wrong.status()}`);

  // The price book: the seed's `*` row, and the warning about it.
  await page.goto(`${GATEWAY}/console/admin/prices`);
  check((await page.locator("#default-warning").textContent()).includes("every model without a row of its own"), "the * row's warning");
  check(await page.locator('tr[data-model="*"][data-status="in effect"]').count() === 1, "the seed's * row is in effect");
  // Typing `*` as the model warns that the row would price every unlisted model.
  const modelField = page.getByLabel("Model", { exact: true });
  await modelField.fill("*");
  check(await page.locator("#star-warning").isVisible(), "the form warns about *");
  // An account's own price with a cached-input price and a request fee: the charged prices (base × markup)
  // appear beside the base prices as they are typed.
  await modelField.fill(CACHED_MODEL);
  check(!(await page.locator("#star-warning").isVisible()), "no * warning for a named model");
  await page.getByLabel("Account id (optional)").fill(result.accountId);
  await page.getByLabel("Base input per 1k").fill("0.002");
  await page.getByLabel("Base output per 1k").fill("0.004");
  check((await page.locator("#charged_input").textContent()) === "0.003", "charged input at the default markup 1.5");
  await page.getByLabel("Markup (default 1.5)").fill("2");
  check((await page.locator("#charged_input").textContent()) === "0.004", "charged input = 0.002 × 2");
  check((await page.locator("#charged_output").textContent()) === "0.008", "charged output = 0.004 × 2");
  await page.getByLabel("Cached input (cache reads)").fill("0.0005");
  await page.getByLabel("Request fee (USD per call, no markup)").fill("0.0001");
  await screen(page, "operator-price-form");
  await page.getByRole("button", { name: "Save price" }).click();
  await page.waitForLoadState();
  // (The charged prices are <output> elements, which are status regions too: the notice is found by class.)
  check((await page.locator("p.notice").textContent()).includes("Price saved"), "price saved");
  check((await page.getByTestId("saved-charged-input").textContent()) === "0.004", "the notice says the charged input price");
  const own = await cells(page.locator(`tr[data-model="${CACHED_MODEL}"][data-account="${result.accountId}"]`));
  const expected = { "base-input": "0.002", "base-output": "0.004", "base-cached-input": "0.0005", "base-cache-write": "0.002",
                     "base-cache-write-1h": "0.002", "base-audio-input": "0.002", "base-audio-output": "0.004",
                     "request-fee": "0.0001", markup: "2", "charged-input": "0.004", "charged-output": "0.008", status: "in effect" };
  check(JSON.stringify(own) === JSON.stringify(expected), `base and charged prices side by side: ${JSON.stringify(own)}`);

  // A base price that is not a number: the page again, the message beside it, the rest as typed.
  await page.getByLabel("Model", { exact: true }).fill("journey-retired");
  await page.getByLabel("Base input per 1k").fill("one");
  await page.getByLabel("Base output per 1k").fill("2");
  await page.getByRole("button", { name: "Save price" }).click();
  await page.waitForLoadState();
  check((await page.locator("#input-error").textContent()).includes("base_input_price_per_1k"), "the message is beside the base input");
  check((await page.getByLabel("Model", { exact: true }).inputValue()) === "journey-retired"
        && (await page.getByLabel("Base input per 1k").inputValue()) === "one"
        && (await page.getByLabel("Base output per 1k").inputValue()) === "2", "the price form keeps what was typed");
  await screen(page, "operator-price-refused");

  // A global price set without a markup (1.5, the seed's), then ended: its row is marked ended.
  await page.getByLabel("Model", { exact: true }).fill("journey-retired");
  await page.getByLabel("Base input per 1k").fill("1");
  await page.getByLabel("Base output per 1k").fill("2");
  await page.getByRole("button", { name: "Save price" }).click();
  await page.waitForLoadState();
  const retired = await cells(page.locator('tr[data-model="journey-retired"][data-status="in effect"]'));
  check(retired.markup === "1.5" && retired["charged-input"] === "1.5" && retired["charged-output"] === "3", `default markup: ${JSON.stringify(retired)}`);
  page.once("dialog", (dialog) => dialog.accept());
  await page.getByRole("button", { name: "End price of journey-retired for all accounts" }).click();
  await page.waitForLoadState();
  check((await page.locator("p.notice").textContent()).includes("Price ended"), "price ended");
  check((await page.locator('tr[data-model="journey-retired"][data-status="ended"]').textContent()).includes("ended"), "the ended row is marked ended");
  check(await page.locator('tr[data-model="journey-retired"][data-status="in effect"]').count() === 0, "no journey-retired price in effect");
  check(await page.getByRole("button", { name: "End price of journey-retired" }).count() === 0, "nothing left to end");
  await screen(page, "operator-prices");
  // The operator's own webhook endpoint (to an address where nothing listens): its secret shown once.
  const DEAD_ENDPOINT = "http://127.0.0.1:9/journey-hook";
  await page.getByRole("link", { name: "Webhooks" }).click();
  await page.waitForLoadState();
  await screen(page, "operator-webhooks-empty");
  await page.getByLabel("URL").fill(DEAD_ENDPOINT);
  await page.getByLabel("Event types (comma-separated; empty for all)").fill("credits.added");
  await page.getByRole("button", { name: "Add endpoint" }).click();
  await page.waitForLoadState();
  const secret = (await page.locator("#new-secret").textContent()).trim();
  check(secret.startsWith("whsec_"), "the signing secret is shown once");
  check(!page.url().includes(secret) && /\/console\/admin\/webhooks\?shown=/.test(page.url()), `post/redirect/get: ${page.url()}`);
  check((await page.locator("tbody tr").textContent()).includes(DEAD_ENDPOINT), "the endpoint is listed");
  await screen(page, "operator-webhooks");
  await page.reload();
  check(!(await page.content()).includes(secret), "a reload does not show the secret again");
  const operatorHooks = await api("GET", "/admin/webhooks", ADMIN_KEY);
  check(operatorHooks.text.includes(DEAD_ENDPOINT), `the API lists the endpoint: ${operatorHooks.text}`);

  // Credit added now is delivered to it and fails; the events page shows the endpoint and offers Redeliver.
  await page.goto(accountUrl);
  await page.locator("#credit_amount").fill("0.01");
  await page.getByRole("button", { name: "Add credits" }).click();
  await page.waitForLoadState();
  const eventsUrl = `${GATEWAY}/console/admin/events?account_id=${result.accountId}&type=credits.added`;
  const failedEvent = page.locator("li.event").first();
  for (let waited = 0; ; waited += 250) {
    await page.goto(eventsUrl);
    if (await failedEvent.locator('li.delivery[data-succeeded="false"]').count() > 0) { break; }
    check(waited < 20000, "the credit's delivery failed within 20 s");
    await page.waitForTimeout(250);
  }
  check(await page.getByText("credits.added").first().isVisible(), "events list the credits");
  await screen(page, "operator-events");
  await page.setViewportSize({ width: 375, height: 900 });
  check(await failedEvent.locator(".endpoint").first().isVisible(), "the delivery's endpoint is shown at 375 px");
  check((await failedEvent.locator(".endpoint").first().textContent()).includes(DEAD_ENDPOINT), "the delivery names its endpoint's URL");
  check(await page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1), "no sideways scroll at 375 px");
  const dataBox = await failedEvent.locator("code.data").boundingBox();
  check(dataBox && dataBox.width > 200, `the event's data gets the width: ${JSON.stringify(dataBox)}`);
  await page.setViewportSize({ width: 1440, height: 900 });
  const attemptsBefore = await failedEvent.locator("li.delivery").count();
  await failedEvent.getByRole("button", { name: /^Redeliver/ }).click();
  await page.waitForLoadState();
  check((await page.getByRole("status").textContent()).includes("queued again"), "redelivered");
  const attemptsAfter = await failedEvent.locator("li.delivery").count();
  check(attemptsAfter > attemptsBefore, `a new attempt is listed: ${attemptsBefore} then ${attemptsAfter}`);
  // The account's page lists its latest events with how their deliveries went, and links to them all.
  const failedId = await failedEvent.getAttribute("data-event-id");
  result.failedEventId = failedId;
  await page.goto(accountUrl);
  const eventRow = page.locator(`[data-testid="account-events"] tr[data-event-id="${failedId}"]`);
  check((await eventRow.count()) === 1, "the account's page lists the event");
  check((await eventRow.locator('[data-col="deliveries"]').textContent()).includes("failed"), "with its failed delivery");
  check(await page.getByRole("link", { name: /All of this account's events/ }).isVisible(), "and links to all its events");

  // The endpoint removed, after a question.
  await page.getByRole("link", { name: "Webhooks" }).click();
  await page.waitForLoadState();
  let removeQuestion = "";
  page.once("dialog", (dialog) => { removeQuestion = dialog.message(); dialog.accept(); });
  await page.getByRole("button", { name: `Remove ${DEAD_ENDPOINT}` }).click();
  await page.waitForLoadState();
  check(removeQuestion.includes(DEAD_ENDPOINT), `removing asks first: ${removeQuestion}`);
  check(await page.getByText("No endpoints.").isVisible(), "the endpoint is gone");
  check(!(await api("GET", "/admin/webhooks", ADMIN_KEY)).text.includes(DEAD_ENDPOINT), "the API lists it no more");
  await page.goto(`${GATEWAY}/console/admin/accounts`);
  await screen(page, "operator-accounts");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForLoadState();
  check(page.url().endsWith("/console/sign-in"), "signed out");
  await context.close();
}

// --- The customer --------------------------------------------------------------------------------
{
  const { context, page } = await newPage();
  await signIn(page, result.key);
  check(page.url().endsWith("/console/"), `the customer lands on the overview, not ${page.url()}`);
  // The balance, rounded, with the API's exact figure (GET /billing/account) in its <data value> and on hover.
  const account = await api("GET", "/billing/account", result.key);
  const shownBalance = await amount(page.getByTestId("balance"), "the customer's balance");
  check(shownBalance === rawNumber(account.text, "creditsBalance"), `balance ${shownBalance} equals the API's ${account.text}`);
  await screen(page, "customer-overview");

  // A few calls through the API, two of them for the customer's end user "alice".
  for (let i = 0; i < 3; i += 1) {
    const call = await api("POST", "/v1/chat/completions", result.key,
      { model: "mock-usage-1000-1000", messages: [{ role: "user", content: `hello ${i}` }], ...(i < 2 ? { user: "alice" } : {}) });
    check(call.status === 200, `call ${i}: ${call.text}`);
  }

  await page.goto(`${GATEWAY}/console/usage`);
  const chart = page.locator("img.chart");
  check(await chart.isVisible(), "the usage chart is shown");
  check(await chart.evaluate((img) => img.complete && img.naturalWidth > 0), "the chart image loaded");
  const apiUsage = await api("GET", "/billing/usage?limit=1000", result.key);
  const records = apiUsage.json.records;
  const apiTotal = [...apiUsage.text.matchAll(/"charged":(-?[0-9.]+)/g)].reduce((sum, m) => sum + nanos(m[1]), 0n);
  const pageTotal = nanos(await amount(page.getByTestId("usage-total"), "the usage total"));
  check(pageTotal === apiTotal, `the page's total ${pageTotal} equals the API's ${apiTotal}`);
  await screen(page, "customer-usage");
  // Spend by end user: alice's two calls and the one that named none, each equal to the API's, and the
  // calls name their end user and key; the end user filter lists alice and keeps to her calls.
  const aliceApi = await api("GET", "/billing/usage?endUserId=alice", result.key);
  const aliceTotal = [...aliceApi.text.matchAll(/"totalCost":(-?[0-9.]+)/g)].reduce((sum, m) => sum + nanos(m[1]), 0n);
  check(aliceApi.json.records.length === 2, `alice made two calls: ${aliceApi.text}`);
  const aliceRow = page.locator('tr[data-end-user="alice"]');
  check((await aliceRow.count()) === 1, "alice has a row under spend by end user");
  check(nanos(await amount(aliceRow.locator('[data-col="cost"]'), "alice's cost")) === aliceTotal, "alice's cost equals the API's");
  check((await page.locator('tr[data-end-user=""]').count()) === 1, "the calls that named no end user have a row");
  check((await page.locator('td[data-col="end_user"]', { hasText: "alice" }).count()) === 2, "the calls name alice");
  await page.getByLabel("End user", { exact: true }).selectOption("u:alice");
  await page.getByRole("button", { name: "Apply" }).click();
  await page.waitForLoadState();
  check((await page.locator("tr[data-record]").count()) === 2, "the end user filter keeps alice's calls");
  await page.goto(`${GATEWAY}/console/usage`);
  // The chart's text is legible (>= 12 px, shown at 1:1) and its legend lies under the plot, not over it:
  // each model's name is drawn below every axis label.
  const svg = await (await page.request.get(await chart.evaluate((img) => img.src))).text();
  const sizes = [...svg.matchAll(/font-size="([0-9.]+)/g)].map((m) => Number(m[1]));
  check(sizes.length > 0 && sizes.every((size) => size >= 12), `the chart's text is at least 12 px: ${sizes}`);
  check(await chart.evaluate((img) => img.getBoundingClientRect().width === img.naturalWidth), "the chart is not scaled down");
  const texts = [...svg.matchAll(/<text[^>]*\by="([0-9.]+)"[^>]*>([^<]*)<\/text>/g)].map((m) => ({ y: Number(m[1]), text: m[2].trim() }));
  const legendY = texts.filter((t) => t.text === "mock-usage-1000-1000").map((t) => t.y);
  const axisY = texts.filter((t) => t.text !== "mock-usage-1000-1000").map((t) => t.y);
  check(legendY.length === 1 && legendY[0] > Math.max(...axisY), `the legend lies under the plot: ${legendY} vs ${Math.max(...axisY)}`);
  // The model filter offers the account's models; a preset link sets the range.
  check((await page.locator("#model option").allTextContents()).includes("mock-usage-1000-1000"), "the model dropdown lists the model used");
  await page.getByRole("link", { name: "Last 7 days", exact: true }).click();
  await page.waitForLoadState();
  const today = new Date().toISOString().slice(0, 10);
  const weekAgo = new Date(Date.now() - 6 * 86400000).toISOString().slice(0, 10);
  check(page.url().includes(`from=${weekAgo}`) && page.url().includes(`to=${today}`), `the preset sets the range: ${page.url()}`);
  check((await page.locator("#from").inputValue()) === weekAgo, "the preset's range is in the form");
  check(nanos(await amount(page.getByTestId("usage-total"), "the usage total")) === apiTotal, "today's calls are in the last 7 days");

  // Filter by model, then the CSV: its rows and sum equal the API's.
  await page.getByLabel("Model", { exact: true }).selectOption("mock-usage-1000-1000");
  await page.getByRole("button", { name: "Apply" }).click();
  await page.waitForLoadState();
  check(page.url().includes("model=mock-usage-1000-1000"), "the filter is in the URL");
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "Download CSV" }).click()]);
  const csv = readFileSync(await download.path(), "utf8").trim().split("\r\n");
  const header = csv[0].split(",");
  const rows = csv.slice(1).map((line) => line.split(","));
  // Every call was of this model, so the filtered CSV holds them all.
  check(records.every((r) => r.model === "mock-usage-1000-1000"), "one model called");
  check(rows.length === records.length && rows.length === 3, `CSV rows ${rows.length} = API records ${records.length}`);
  const csvSum = rows.reduce((sum, row) => sum + nanos(row[header.indexOf("charged")]), 0n);
  check(csvSum === apiTotal, `CSV sum ${csvSum} = API sum ${apiTotal}`);
  check(csvSum > 0n, "the calls were charged");
  result.csvRows = rows.length;
  result.csvSumNanos = csvSum.toString();
  // The first export's columns keep their places; the token classes and the request fee come after them;
  // provider cost and margin are the operator's and never appear.
  check(header.slice(0, 14).join(",") === "id,timestamp,model,endpoint,provider,attempts,status,api_key_id,workspace_id,input_tokens,output_tokens,total_cost,charged,refunded_amount",
        `the CSV's first columns: ${header.slice(0, 14)}`);
  check(header.slice(14).join(",") === "cached_input_tokens,cache_write_tokens,cache_write_1h_tokens,reasoning_tokens,audio_input_tokens,audio_output_tokens,request_fee,end_user_id",
        `the CSV's new columns at the end: ${header.slice(14)}`);
  check(!header.some((name) => /provider_cost|margin/.test(name)), `no operator figures in the CSV: ${header}`);

  // A call of the model priced for this account: 400 cached prompt tokens and the request fee show in the
  // class columns, and nothing on the page speaks of provider cost or margin.
  const cachedCall = await api("POST", "/v1/chat/completions", result.key,
    { model: CACHED_MODEL, messages: [{ role: "user", content: "hello cache" }] });
  check(cachedCall.status === 200, `cached call: ${cachedCall.text}`);
  const cachedUsage = await api("GET", "/billing/usage?limit=1000", result.key);
  const cachedRecord = cachedUsage.json.records.find((record) => record.model === CACHED_MODEL);
  check(cachedRecord, `the cached call's record: ${cachedUsage.text}`);
  await page.goto(`${GATEWAY}/console/usage`);
  for (const name of ["Cached input", "Cache write", "Cache write 1 h", "Reasoning", "Audio in", "Audio out", "Request fee (USD)"]) {
    check(await page.getByRole("columnheader", { name, exact: true }).isVisible(), `the usage table has the column ${name}`);
  }
  const cachedRow = await cells(page.locator(`tr[data-record="${cachedRecord.id}"]`));
  check(cachedRow.cached_input_tokens === "400" && cachedRow.request_fee === "0.0001" && cachedRow.reasoning_tokens === "0",
        `the cached call's classes: ${JSON.stringify(cachedRow)}`);
  check(nanos(cachedRow.charged) === nanos(String(cachedRecord.charged)) && nanos(cachedRow.charged) > 0n,
        `the cached call's charge ${cachedRow.charged} = the API's ${cachedRecord.charged}`);
  const usageText = await page.locator("main").innerText();
  check(!/provider cost|margin/i.test(usageText), "the customer's usage page shows no provider cost or margin");
  await screen(page, "customer-usage-classes");

  // The price list: what the account pays per model, as the API lists it; nothing about base prices or markup.
  await page.getByRole("link", { name: "Prices" }).click();
  await page.waitForLoadState();
  const apiPrices = await api("GET", "/billing/prices", result.key);
  const ownPrice = apiPrices.json.prices.find((price) => price.model === CACHED_MODEL);
  check(ownPrice, `the API lists the account's own price: ${apiPrices.text}`);
  const priceRow = await cells(page.locator(`tr[data-model="${CACHED_MODEL}"]`));
  for (const [column, field, expected] of [["input", "inputPricePer1k", "0.004"], ["output", "outputPricePer1k", "0.008"],
                                           ["cached-input", "cachedInputPricePer1k", "0.001"], ["request-fee", "requestFee", "0.0001"]]) {
    check(nanos(priceRow[column]) === nanos(String(ownPrice[field])) && nanos(priceRow[column]) === nanos(expected),
          `the charged ${column} price ${priceRow[column]} = the API's ${ownPrice[field]} = ${expected}`);
  }
  check(await page.locator("tbody tr").count() === apiPrices.json.prices.length, "one row per price the API lists");
  check(await page.locator('tr[data-model="journey-retired"]').count() === 0, "an ended price is not listed");
  check(!/markup|base price/i.test(await page.locator("main").innerText()), "no base price or markup on the customer's price list");
  await screen(page, "customer-prices");

  await page.goto(`${GATEWAY}/console/transactions`);
  await page.getByLabel("Type").selectOption("usage_deduction");
  await page.getByRole("button", { name: "Apply" }).click();
  await page.waitForLoadState();
  const [txDownload] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "Download CSV" }).click()]);
  const txRows = readFileSync(await txDownload.path(), "utf8").trim().split("\r\n").slice(1);
  const apiTx = await api("GET", "/billing/transactions?type=usage_deduction&limit=1000", result.key);
  check(txRows.length === apiTx.json.transactions.length, `transaction CSV rows ${txRows.length} = API ${apiTx.json.transactions.length}`);
  await screen(page, "customer-transactions");

  for (const [path, name] of [["grants", "customer-grants"], ["workspaces", "customer-workspaces"], ["keys", "customer-keys"],
                              ["webhooks", "customer-webhooks"], ["settings", "customer-settings"]]) {
    await page.goto(`${GATEWAY}/console/${path}`);
    check((await page.title()).length > 0, `${path} renders`);
    check(await page.locator("td.num data").count() === await page.locator("td.num data[title$=' USD']").count(), `${path}: amounts keep the exact figure on hover`);
    await screen(page, name);
  }
  // Statements: the months the API lists, the current one's closing balance as the API says, and its PDF.
  await page.getByRole("link", { name: "Statements" }).click();
  await page.waitForLoadState();
  const apiStatements = (await api("GET", "/billing/statements", result.key)).json.statements;
  check(await page.locator("tbody tr").count() === apiStatements.length, `one row per statement: ${apiStatements.length}`);
  const current = apiStatements[0];
  const shownClosing = await page.getByTestId(`closing-${current.month}`).locator("data").getAttribute("value");
  check(nanos(shownClosing) === nanos(String(current.closingBalance)), `closing ${shownClosing} = the API's ${current.closingBalance}`);
  const [pdfDownload] = await Promise.all([page.waitForEvent("download"),
    page.getByRole("link", { name: `Download statement ${current.month}` }).click()]);
  check(readFileSync(await pdfDownload.path()).subarray(0, 5).toString() === "%PDF-", "the statement downloads as a PDF");
  await screen(page, "customer-statements");
  // The month-end forecast on the overview is the API's: it shrinks as the month's rest does, so the page's
  // lies between the API's read just before it and just after it.
  const forecastBefore = (await api("GET", "/billing/stats", result.key)).json.forecast;
  await page.goto(`${GATEWAY}/console/`);
  const forecastAfter = (await api("GET", "/billing/stats", result.key)).json.forecast;
  const shownForecast = nanos(await page.getByTestId("forecast").locator("data").first().getAttribute("value"));
  check(shownForecast <= nanos(String(forecastBefore.monthEnd)) && shownForecast >= nanos(String(forecastAfter.monthEnd)),
        `forecast ${shownForecast} between the API's ${forecastBefore.monthEnd} and ${forecastAfter.monthEnd}`);

  // An endpoint whose URL is not http(s): the page again (400), the message beside the URL, both fields as
  // typed, and no endpoint added.
  await page.goto(`${GATEWAY}/console/webhooks`);
  await page.getByLabel("URL").fill("ftp://example.com/hook");
  await page.getByLabel("Event types (comma-separated; empty for all)").fill("credits.added");
  const [refusedHook] = await Promise.all([
    page.waitForResponse((response) => response.url().endsWith("/console/webhooks") && response.request().method() === "POST"),
    page.getByRole("button", { name: "Add endpoint" }).click(),
  ]);
  await page.waitForLoadState();
  await refusedBeside(page, refusedHook, "url", "http", { url: "ftp://example.com/hook", event_types: "credits.added" }, "a refused webhook");
  check(await page.getByText("No endpoints.").isVisible(), "a refused endpoint is not added");
  await screen(page, "customer-webhook-refused");
  await page.goto(`${GATEWAY}/console/settings`);
  // A threshold that is not a number: the page again (400), the message beside the thresholds, as typed.
  await page.getByLabel("Thresholds in USD (comma-separated; empty for none)").fill("5, lots");
  const [refusedAlerts] = await Promise.all([
    page.waitForResponse((response) => response.url().endsWith("/console/alerts")),
    page.getByRole("button", { name: "Save alerts" }).click(),
  ]);
  await page.waitForLoadState();
  await refusedBeside(page, refusedAlerts, "low_balance", "low_balance", { low_balance: "5, lots" }, "a refused alert threshold");
  await screen(page, "customer-alerts-refused");
  // An alert threshold saved through its form.
  await page.getByLabel("Thresholds in USD (comma-separated; empty for none)").fill("5, 1");
  await page.getByRole("button", { name: "Save alerts" }).click();
  await page.waitForLoadState();
  check((await page.getByRole("status").textContent()).includes("Alerts saved"), "alerts saved");
  // A form post without the CSRF token is refused, and changes nothing.
  const forged = await page.request.post(`${GATEWAY}/console/alerts`, { form: { low_balance: "99" } });
  check(forged.status() === 403 || forged.status() === 422, `alerts without CSRF token: ${forged.status()}`);
  await page.goto(`${GATEWAY}/console/settings`);
  check((await page.locator("#low_balance").inputValue()) === "5, 1", "the forged post changed nothing");

  // Sign out; a new sign-in, then the key is revoked: the next page load is refused.
  await page.goto(`${GATEWAY}/console/`);
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForLoadState();
  check(page.url().endsWith("/console/sign-in"), "signed out");
  await page.goto(`${GATEWAY}/console/usage`);
  check(page.url().endsWith("/console/sign-in"), "after sign-out the session is gone");
  await signIn(page, result.key);
  check(page.url().endsWith("/console/"), "signed in again");
  const keyId = (await api("GET", "/billing/account", result.key)).json.apiKeyId;
  const revoked = await api("DELETE", `/admin/keys/${keyId}`, ADMIN_KEY);
  check(revoked.status === 200 || revoked.status === 204, `revoked: ${revoked.text}`);
  await page.goto(`${GATEWAY}/console/usage`);
  check(page.url().endsWith("/console/sign-in"), `the revoked key's session is refused, at ${page.url()}`);
  await context.close();
}

// --- The operator sees revenue, provider cost and margin ------------------------------------------------
{
  const { context, page } = await newPage();
  await signIn(page, ADMIN_KEY);
  await page.goto(`${GATEWAY}/console/admin/accounts/${result.accountId}`);
  // The account's statements, as the API lists them for the operator, each with its PDF.
  const adminStatements = (await api("GET", `/billing/statements?accountId=${result.accountId}`, ADMIN_KEY)).json.statements;
  check(await page.getByTestId("account-statements").locator("tbody tr").count() === adminStatements.length,
        `the operator sees one row per statement: ${adminStatements.length}`);
  const adminClosing = await page.getByTestId(`admin-closing-${adminStatements[0].month}`).locator("data").getAttribute("value");
  check(nanos(adminClosing) === nanos(String(adminStatements[0].closingBalance)), `operator closing ${adminClosing} = ${adminStatements[0].closingBalance}`);
  const [adminPdf] = await Promise.all([page.waitForEvent("download"),
    page.getByRole("link", { name: `Statement ${adminStatements[0].month} (PDF)` }).click()]);
  check(readFileSync(await adminPdf.path()).subarray(0, 5).toString() === "%PDF-", "the operator downloads the statement as a PDF");
  await page.goto(`${GATEWAY}/console/admin/accounts/${result.accountId}`);
  const stats = (await api("GET", `/billing/admin/${result.accountId}/stats`, ADMIN_KEY)).json;
  const usd = async (testId) => amount(page.getByTestId(testId), testId);
  check(nanos(await usd("revenue")) === nanos(String(stats.totals.totalCost)), `revenue ${await usd("revenue")} = ${stats.totals.totalCost}`);
  check(nanos(await usd("provider-cost")) === nanos(String(stats.totals.providerCost)), `provider cost ${await usd("provider-cost")} = ${stats.totals.providerCost}`);
  check(nanos(await usd("margin")) === nanos(String(stats.totals.margin)), `margin ${await usd("margin")} = ${stats.totals.margin}`);
  check(nanos(await usd("margin")) > 0n, "the markup leaves a margin");
  for (const model of stats.byModel) {
    const row = await cells(page.getByTestId("margin-by-model").locator(`tr[data-model="${model.model}"]`));
    check(nanos(row.revenue) === nanos(String(model.totals.totalCost)) && nanos(row["provider-cost"]) === nanos(String(model.totals.providerCost))
          && nanos(row.margin) === nanos(String(model.totals.margin)), `${model.model}: ${JSON.stringify(row)} = ${JSON.stringify(model.totals)}`);
  }
  check(stats.byModel.length === 2, `two models were called: ${stats.byModel.map((model) => model.model)}`);
  const days = await Promise.all((await page.getByTestId("margin-by-day").locator("tbody tr").all()).map(cells));
  const daySum = (column) => days.reduce((sum, day) => sum + nanos(day[column]), 0n);
  check(days.length >= 1 && daySum("revenue") === nanos(String(stats.totals.totalCost)) && daySum("margin") === nanos(String(stats.totals.margin)),
        `the days add up to the totals: ${JSON.stringify(days)}`);
  await screen(page, "operator-account-margins");

  // The account's calls, newest first, as the API lists them: each with its provider cost (the operator's
  // figure), amounts rounded with the exact figure on hover.
  const apiCalls = (await api("GET", `/admin/accounts/${result.accountId}/usage?limit=1000`, ADMIN_KEY)).json.records;
  const callTable = page.getByTestId("account-calls");
  const shownIds = await callTable.locator("tbody tr").evaluateAll((rows) => rows.map((row) => row.getAttribute("data-record")));
  check(apiCalls.length === 4 && JSON.stringify(shownIds) === JSON.stringify(apiCalls.map((record) => record.id)),
        `the account's calls ${shownIds} = the API's ${apiCalls.map((record) => record.id)}`);
  for (const record of apiCalls) {
    const row = callTable.locator(`tr[data-record="${record.id}"]`);
    const total = row.locator('[data-col="total-cost"] data');
    const providerCost = await row.locator('[data-col="provider-cost"] data').getAttribute("value");
    check(nanos(await total.getAttribute("value")) === nanos(String(record.totalCost)) && (await total.getAttribute("title")).endsWith(" USD"),
          `call ${record.id}: total cost ${await total.getAttribute("value")} = ${record.totalCost}, exact on hover`);
    check(nanos(providerCost) === nanos(String(record.providerCost)) && nanos(providerCost) > 0n,
          `call ${record.id}: provider cost ${providerCost} = ${record.providerCost}`);
  }
  const cachedCall = apiCalls.find((record) => record.model === CACHED_MODEL);
  check((await callTable.locator(`tr[data-record="${cachedCall.id}"] [data-col="input"]`).textContent()).includes("400 cached"),
        "the cached input is shown inside the input tokens");

  // Filtered by status: only the calls that ended that way (the API's), and none that were cancelled.
  await page.locator("#calls_status").selectOption("cancelled");
  await page.getByRole("button", { name: "Show calls" }).click();
  await page.waitForLoadState();
  check(await page.getByTestId("no-calls").isVisible(), "no cancelled calls");
  await page.locator("#calls_status").selectOption("completed");
  await page.getByRole("button", { name: "Show calls" }).click();
  await page.waitForLoadState();
  check(page.url().includes("status=completed"), `the status filter is in the URL: ${page.url()}`);
  const completed = (await api("GET", `/admin/accounts/${result.accountId}/usage?limit=1000&status=completed`, ADMIN_KEY)).json.records;
  const statuses = await page.getByTestId("account-calls").locator("tbody tr").evaluateAll((rows) => rows.map((row) => row.getAttribute("data-status")));
  check(statuses.length === completed.length && statuses.length > 0 && statuses.every((status) => status === "completed"),
        `completed calls: ${statuses} (API ${completed.length})`);
  await screen(page, "operator-account-calls");

  // A call refunded from its row: Refund fills the refund form with its usage id, and the refund appears
  // among the ledger rows, for the whole charge.
  await page.getByRole("link", { name: `Refund call ${cachedCall.id}` }).click();
  await page.waitForLoadState();
  check(page.url().endsWith("#refund") && page.url().includes("status=completed"), `the refund form, the filter kept: ${page.url()}`);
  check((await page.locator("#refund_record").inputValue()) === cachedCall.id, "the form holds the call's usage id");
  await page.locator("#refund_reason").fill("journey: refunded from the call's row");
  await page.getByRole("button", { name: "Refund", exact: true }).click();
  await page.waitForLoadState();
  check((await page.getByRole("status").textContent()).includes("Refund made"), "refund made");
  check(await page.getByRole("link", { name: `Refund call ${cachedCall.id}` }).count() === 0, "nothing left to refund on that call");
  await page.locator("#ledger_type").selectOption("refund");
  await page.getByRole("button", { name: "Show rows" }).click();
  await page.waitForLoadState();
  const refundRows = page.getByTestId("account-ledger").locator("tbody tr");
  check(await refundRows.count() === 1 && (await refundRows.first().getAttribute("data-type")) === "refund", "one refund among the ledger rows");
  const refundAmount = await refundRows.first().locator('[data-col="amount"] data').getAttribute("value");
  check(nanos(refundAmount) === nanos(String(cachedCall.charged)), `the refund ${refundAmount} = the call's charge ${cachedCall.charged}`);
  await screen(page, "operator-account-ledger");

  // The overview: the same revenue, provider cost and margin as `GET /admin/stats` over the same UTC days.
  await page.getByRole("link", { name: "Overview" }).click();
  await page.waitForLoadState();
  const overviewTotals = page.getByTestId("overview-totals");
  const [from, to] = [await overviewTotals.getAttribute("data-from"), await overviewTotals.getAttribute("data-to")];
  const end = new Date(Date.parse(`${to}T00:00:00Z`) + 86400000).toISOString();
  const platform = (await api("GET", `/admin/stats?from=${encodeURIComponent(`${from}T00:00:00Z`)}&to=${encodeURIComponent(end)}`, ADMIN_KEY)).json;
  const exact = async (testId) => page.getByTestId(testId).locator("data").getAttribute("value");
  check(nanos(await exact("overview-revenue")) === nanos(String(platform.totals.totalCost)) && nanos(platform.totals.totalCost) > 0n,
        `overview revenue ${await exact("overview-revenue")} = ${platform.totals.totalCost}`);
  check(nanos(await exact("overview-provider-cost")) === nanos(String(platform.totals.providerCost)), "overview provider cost = the API's");
  check(nanos(await exact("overview-margin")) === nanos(String(platform.totals.margin)), "overview margin = the API's");
  for (const model of platform.byModel) {
    const shownRevenue = await page.getByTestId("overview-models").locator(`tr[data-model="${model.model}"] [data-col="revenue"] data`).getAttribute("value");
    check(nanos(shownRevenue) === nanos(String(model.totals.totalCost)), `${model.model}: ${shownRevenue} = ${model.totals.totalCost}`);
  }
  check(await page.getByTestId("overview-days").locator("tbody tr").count() === platform.byDay.length, "one row per day");
  check(await page.getByTestId("overview-failed").locator(`tr[data-event-id="${result.failedEventId}"]`).count() === 1,
        "the overview lists the event whose delivery failed");
  await screen(page, "operator-overview");
  await page.getByRole("link", { name: "Last 7 days" }).click();
  await page.waitForLoadState();
  check((await page.getByRole("link", { name: "Last 7 days" }).getAttribute("aria-current")) === "true", "the preset is marked");
  check(nanos(await exact("overview-revenue")) === nanos(String(platform.totals.totalCost)), "this week's revenue is this month's (every call was today)");
  await page.getByTestId("overview-accounts").getByRole("link", { name: "Acme Robotics" }).click();
  await page.waitForLoadState();
  check(page.url().endsWith(`/console/admin/accounts/${result.accountId}`), `a top account links to its page: ${page.url()}`);
  const accountUrl = page.url();
  // Rotation with a chosen grace (after the figures above, which count the customer's calls only): "stops
  // now" refuses the old secret at once, the new one works; a key's last use shows once it made a call,
  // "never" before.
  await page.locator("#key_name").fill("rotor");
  await page.getByRole("button", { name: "Create key" }).click();
  await page.waitForLoadState();
  const rotorOld = (await page.getByTestId("new-key").textContent()).trim();
  await page.goto(accountUrl);
  const rotorRow = page.locator("tr", { has: page.getByRole("button", { name: "Rotate rotor" }) });
  check((await rotorRow.locator('[data-col="last-used"]').textContent()).trim() === "never", "an unused key was never used");
  const rotorCall = await api("POST", "/v1/chat/completions", rotorOld, { model: "mock", messages: [{ role: "user", content: "hi" }] });
  check(rotorCall.status === 200, `the rotor key calls: ${rotorCall.text}`);
  await page.reload();
  check((await rotorRow.locator('[data-col="last-used"] time').count()) === 1, "the key's last use is shown once it made a call");
  const graces = await rotorRow.locator('select[name="grace_secs"] option').allTextContents();
  check(graces.includes("Old secret stops now") && graces.includes("Old secret works 24 hours"), `the grace choices: ${graces}`);
  await rotorRow.locator('select[name="grace_secs"]').selectOption("0");
  page.once("dialog", (dialog) => dialog.accept());
  await rotorRow.getByRole("button", { name: "Rotate rotor" }).click();
  await page.waitForLoadState();
  const rotorNew = (await page.getByTestId("new-key").textContent()).trim();
  check(rotorNew !== rotorOld && rotorNew.startsWith("tb_prod_"), "the rotated key's new secret is shown");
  const oldRefused = await api("GET", "/billing/account", rotorOld);
  check(oldRefused.status === 401, `the old secret stops at once with no grace: ${oldRefused.status}`);
  check((await api("GET", "/billing/account", rotorNew)).status === 200, "the new secret works");
  await context.close();
}

// --- A member key cannot open owner pages ------------------------------------------------------------
{
  const member = await api("POST", "/admin/keys", ADMIN_KEY,
    { name: "intern", keyType: "standard", accountId: result.accountId, role: "member",
      policy: { dailyLimit: "1.25", monthlyLimit: "7" } });
  check(member.status === 201, `member key: ${member.text}`);
  const { context, page } = await newPage();
  await signIn(page, member.json.key);
  // A member's overview: its own spend against its own caps, the account's caps apart.
  const spentToday = (await page.getByTestId("spent-today").textContent()).trim();
  const spentMonth = (await page.getByTestId("spent-month").textContent()).trim();
  check(/^[0-9.]+ USD of this key's 1\.25 USD daily cap$/.test(spentToday), `the member's own daily cap: ${spentToday}`);
  check(/^[0-9.]+ USD of this key's 7\.00 USD monthly cap$/.test(spentMonth), `the member's own monthly cap: ${spentMonth}`);
  check((await page.getByTestId("spent-month").locator("data").nth(1).getAttribute("value")) === "7", "the cap's exact figure on hover");
  check((await page.getByTestId("account-daily-cap").textContent()).includes("5.00 USD"), "the account's daily cap apart");
  await screen(page, "member-overview");
  check(!(await page.getByRole("link", { name: "Keys" }).count()), "no Keys link for a member");
  for (const path of ["keys", "webhooks", "settings"]) {
    const response = await page.goto(`${GATEWAY}/console/${path}`);
    check(response.status() === 403, `a member opening ${path}: ${response.status()}`);
  }
  await screen(page, "member-refused");
  result.memberKey = member.json.key;
  await context.close();
}

await browser.close();
// The refusals the journey provoked (a bad amount: 400; a wrong key: 401; a member's pages: 403; rotating a
// revoked key: 409) are logged by the browser too;
// anything else (a CSP violation, a missing asset, a script error) fails.
const unexpected = consoleErrors.filter((text) => !/status of 40[0139] /.test(text));
check(unexpected.length === 0, `browser console errors: ${JSON.stringify(unexpected)}`);
for (const url of visited) {
  check(!url.includes(result.key) && !url.includes(ADMIN_KEY) && !url.includes(result.memberKey), `a key in the URL ${url}`);
}
result.visited = visited;
result.screens = screens;
console.log(`RESULT ${JSON.stringify(result)}`);
