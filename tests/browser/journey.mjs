// The console in a real browser (Debian's Chromium driven by playwright-core): the operator's and the
// customer's journeys of DESIGN §13, axe-core on every screen, screenshots at 375 px and 1440 px, and the
// security checks (CSRF, cookie flags, CSP, no key in any URL). Started by tests/tests/it/console.rs, which
// passes the stack in the environment and checks the services' logs afterwards.
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
  check(page.url().endsWith("/console/admin/accounts"), `the operator lands on accounts, not ${page.url()}`);
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

  // A key, shown once.
  await page.locator("#key_name").fill("backend");
  await page.getByRole("button", { name: "Create key" }).click();
  await page.waitForLoadState();
  const key = (await page.getByTestId("new-key").textContent()).trim();
  check(key.startsWith("tb_prod_"), `the key is shown once: ${key.slice(0, 8)}…`);
  await screen(page, "operator-key-created");
  result.key = key;

  // Promotional credit with an expiry, paid credit, caps.
  await page.goto(accountUrl);
  await page.locator("#credit_amount").fill("1.5");
  await page.locator("#category").selectOption("promotional");
  await page.locator("#credit_expires").fill(today(30));
  await page.getByRole("button", { name: "Add credits" }).click();
  await page.waitForLoadState();
  check((await page.getByRole("status").textContent()).includes("Credits added"), "promotional credit added");
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
  await screen(page, "operator-account");

  // The key's policy: a rate limit and an allow-list.
  await page.getByRole("link", { name: "Edit backend" }).click();
  await page.waitForLoadState();
  await screen(page, "operator-key-policy");
  await page.getByLabel("Requests per minute").fill("100");
  await page.getByLabel("Allowed models (comma-separated)").fill("mock-usage-1000-1000, mock");
  await page.getByRole("button", { name: "Save key" }).click();
  await page.waitForLoadState();
  check((await page.getByRole("status").textContent()).includes("Key saved"), "policy saved");
  check(await page.getByText("100 req/min").isVisible(), "the key's policy is shown");

  // Any form without its CSRF token is refused.
  const forged = await page.request.post(`${accountUrl}/credits`, { form: { amount: "100" } });
  check(forged.status() === 403 || forged.status() === 422, `a credit without CSRF token: ${forged.status()}`);
  const wrong = await page.request.post(`${accountUrl}/credits`, { form: { amount: "100", csrf: "0".repeat(64) } });
  check(wrong.status() === 403, `a credit with a wrong CSRF token: ${wrong.status()}`);

  await page.goto(`${GATEWAY}/console/admin/prices`);
  await screen(page, "operator-prices");
  await page.goto(`${GATEWAY}/console/admin/events?account_id=${result.accountId}`);
  check(await page.getByText("credits.added").first().isVisible(), "events list the credits");
  await screen(page, "operator-events");
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
  const account = await api("GET", "/billing/account", result.key);
  const shown = (await page.getByTestId("balance").textContent()).trim();
  check(shown === `${rawNumber(account.text, "creditsBalance")} USD`, `balance ${shown} equals the API's ${account.text}`);
  await screen(page, "customer-overview");

  // A few calls through the API.
  for (let i = 0; i < 3; i += 1) {
    const call = await api("POST", "/v1/chat/completions", result.key,
      { model: "mock-usage-1000-1000", messages: [{ role: "user", content: `hello ${i}` }] });
    check(call.status === 200, `call ${i}: ${call.text}`);
  }

  await page.goto(`${GATEWAY}/console/usage`);
  const chart = page.locator("img.chart");
  check(await chart.isVisible(), "the usage chart is shown");
  check(await chart.evaluate((img) => img.complete && img.naturalWidth > 0), "the chart image loaded");
  const apiUsage = await api("GET", "/billing/usage?limit=1000", result.key);
  const records = apiUsage.json.records;
  const apiTotal = [...apiUsage.text.matchAll(/"charged":(-?[0-9.]+)/g)].reduce((sum, m) => sum + nanos(m[1]), 0n);
  const pageTotal = nanos((await page.getByTestId("usage-total").textContent()).trim());
  check(pageTotal === apiTotal, `the page's total ${pageTotal} equals the API's ${apiTotal}`);
  await screen(page, "customer-usage");

  // Filter by model, then the CSV: its rows and sum equal the API's.
  await page.getByLabel("Model", { exact: true }).fill("mock-usage-1000-1000");
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
    await screen(page, name);
  }
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

// --- A member key cannot open owner pages ------------------------------------------------------------
{
  const member = await api("POST", "/admin/keys", ADMIN_KEY,
    { name: "intern", keyType: "standard", accountId: result.accountId, role: "member" });
  check(member.status === 201, `member key: ${member.text}`);
  const { context, page } = await newPage();
  await signIn(page, member.json.key);
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
// The refusals the journey provoked (a wrong key: 401; a member's pages: 403) are logged by the browser too;
// anything else (a CSP violation, a missing asset, a script error) fails.
const unexpected = consoleErrors.filter((text) => !/status of 40[13] /.test(text));
check(unexpected.length === 0, `browser console errors: ${JSON.stringify(unexpected)}`);
for (const url of visited) {
  check(!url.includes(result.key) && !url.includes(ADMIN_KEY) && !url.includes(result.memberKey), `a key in the URL ${url}`);
}
result.visited = visited;
result.screens = screens;
console.log(`RESULT ${JSON.stringify(result)}`);
