// The web app's speed in a real Chromium (a benchmark, not a test: scripts/bench-web.sh runs it
// against the release build on a database of sample patients). Prints Markdown:
//  - first screen: from navigation to the sign-in form being usable, cold (empty cache) and
//    warm (assets cached), median of 10 loads each;
//  - search: for each query, typed as a person types (one key every 120 ms), the time from the
//    last keystroke to the results list showing that query's answer; percentiles over all.
import { chromium } from "playwright-core";

const BASE = process.env.PMS_E2E_URL;
const [email, password] = [process.env.PMS_E2E_ADMIN_EMAIL, process.env.PMS_E2E_ADMIN_PASSWORD];
const QUERIES = (process.env.PMS_BENCH_QUERIES ?? "").split("|").filter(Boolean);
const browser = await chromium.launch({ executablePath: process.env.PMS_E2E_CHROMIUM ?? "/usr/bin/chromium" });

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))];

async function firstScreen(warm) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const times = [];
  if (warm) await page.goto(BASE);
  for (let i = 0; i < 10; i++) {
    if (!warm) await context.clearCookies();
    const cdp = warm ? null : await context.newCDPSession(page);
    if (cdp) await cdp.send("Network.clearBrowserCache");
    const start = Date.now();
    await page.goto(BASE);
    await page.getByRole("button", { name: "Sign in" }).waitFor();
    times.push(Date.now() - start);
  }
  await context.close();
  return median(times);
}

const cold = await firstScreen(false);
const warm = await firstScreen(true);

const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
const page = await context.newPage();
await page.goto(BASE);
await page.getByLabel("Email").fill(email);
await page.getByLabel("Password").fill(password);
await page.getByRole("button", { name: "Sign in" }).click();
const box = page.getByLabel("Name, MRN, phone, email or birth date");
await box.waitFor();
// In the page's own clock: each keydown in the box, and when the results show the answer to
// a text (the list's data-answer attribute names the text it answers).
await page.evaluate(() => {
  window.__keys = [];
  window.__answers = [];
  document.addEventListener("keydown", () => window.__keys.push(performance.now()), true);
  const seen = () => document.querySelector("[data-answer]")?.getAttribute("data-answer") ?? "";
  let last = seen();
  new MutationObserver(() => {
    const now = seen();
    if (now !== last) window.__answers.push([performance.now(), now]);
    last = now;
  }).observe(document.querySelector("main"), { childList: true, subtree: true, attributes: true });
});
const latencies = [];
for (const query of QUERIES) {
  await box.fill("");
  await page.waitForTimeout(300);
  await page.evaluate(() => {
    window.__keys = [];
    window.__answers = [];
  });
  await box.pressSequentially(query, { delay: 120 });
  const answer = `${query}|`;
  await page.waitForFunction((a) => window.__answers.some(([, text]) => text === a), answer, { timeout: 10_000 });
  const [keys, answers] = await page.evaluate(() => [window.__keys, window.__answers]);
  const shown = answers.find(([, text]) => text === answer)[0];
  latencies.push(shown - keys.at(-1));
}
await browser.close();

console.log(`| measurement | figure |`);
console.log(`|---|---|`);
console.log(`| first screen (navigation to a usable sign-in form), cold cache, median of 10 | ${cold} ms |`);
console.log(`| first screen, assets cached, median of 10 | ${warm} ms |`);
console.log(
  `| search: last keystroke to its results shown (${latencies.length} queries typed at 120 ms per key) | p50 ${Math.round(
    pct(latencies, 50),
  )} ms, p95 ${Math.round(pct(latencies, 95))} ms, max ${Math.round(Math.max(...latencies))} ms |`,
);
