// The front desk's day in a real Chromium against a running pms (scripts/web-test.sh starts
// one): sign in, search with a typo, register with an invalid field and fix it, edit in two
// browsers at once and see the conflict, find a free time and book it, see the confirmation
// in the patient's messages, cancel, admin screens, sign out, and a session that ends while a
// form is half filled. axe-core scans every screen; no serious or critical violation may
// remain. Screenshots of the main screens go to $PMS_E2E_SCREENSHOTS when it is set
// (docs/images for the user guide).
//
// Environment: PMS_E2E_URL (the gateway of a pms on a fresh database: the tests expect to be
// the first to register their patients), PMS_E2E_ADMIN_EMAIL / PMS_E2E_ADMIN_PASSWORD,
// PMS_E2E_CHROMIUM (default /usr/bin/chromium).
import assert from "node:assert/strict";
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const BASE = process.env.PMS_E2E_URL ?? "http://127.0.0.1:18580";
const ADMIN = {
  email: process.env.PMS_E2E_ADMIN_EMAIL ?? "admin@pms.local",
  password: process.env.PMS_E2E_ADMIN_PASSWORD ?? "pms-admin-password",
};
const DESK = { email: "desk@clinic.example", password: "front-desk-passphrase" };
const ANALYST = { email: "analyst@clinic.example", password: "analyst-passphrase" };
const CLINICIAN = { email: "clinician@clinic.example", password: "clinician-passphrase" };
const SHOTS = process.env.PMS_E2E_SCREENSHOTS;
// The practitioner works in Europe/Berlin, and the calendar's dates and the today list are
// Berlin's: a date in that zone (YYYY-MM-DD), and the one `days` after Berlin's today. (A UTC
// date is Berlin's today from 23:00 UTC on: a booking meant for tomorrow then showed in the
// today list.)
const berlinDay = (d) => new Intl.DateTimeFormat("en-CA", { timeZone: "Europe/Berlin" }).format(d);
const berlinDaysAhead = (days) => berlinDay(new Date(Date.now() + days * 86_400_000));

let browser;
const scanned = [];

/** The admin's API token, for setting up what the front desk works with (tokens are short-lived
 * in this stack, PMS_AUTH_ACCESS_TTL_SECONDS, so that a session's end can be seen). */
let adminToken = { value: "", at: 0 };
async function admin() {
  if (Date.now() - adminToken.at > 5_000) {
    const pair = await api("POST", "/auth/login", ADMIN, null);
    adminToken = { value: pair.accessToken, at: Date.now() };
  }
  return adminToken.value;
}

async function api(method, path, body, token) {
  if (token === undefined) token = await admin();
  const response = await fetch(`${BASE}${path}`, {
    method,
    headers: {
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** A signed-in page of a new browser context (its own memory: its own session). */
async function signedIn(who, viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport, locale: "en-GB", timezoneId: "Europe/Berlin" });
  const page = await context.newPage();
  const violations = [];
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy|Refused to/.test(m.text())) violations.push(m.text());
  });
  page.cspViolations = violations;
  await page.goto(BASE);
  await page.getByLabel("Email").fill(who.email);
  await page.getByLabel("Password").fill(who.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("button", { name: "Sign out" }).waitFor();
  return page;
}

/** Presses Tab until `target` has the focus (at most 60 times): it is reachable by keyboard. */
async function tabTo(page, target) {
  for (let i = 0; i < 60; i++) {
    if (await target.evaluate((el) => el === document.activeElement).catch(() => false)) return;
    await page.keyboard.press("Tab");
  }
  assert.fail(`not reachable with the Tab key: ${target}`);
}

/** axe-core on the page as it is now: no serious or critical violation. */
async function scan(page, screen) {
  await page.evaluate(AXE); // evaluated by the DevTools protocol: the page's CSP still holds
  const result = await page.evaluate(() =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }),
  );
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(
    bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`),
    [],
    `accessibility of ${screen}`,
  );
  scanned.push(screen);
}

async function shot(page, name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: false });
}

let practitionerId;
let patient;

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.PMS_E2E_CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox"],
  });
  for (const [who, name, roles] of [
    [DESK, "Front Desk", ["receptionist"]],
    [ANALYST, "Ana Lyst", ["analyst"]],
  ]) {
    await api("POST", "/api/users", { email: who.email, displayName: name, password: who.password, roles }).catch(
      (err) => {
        if (!String(err).includes("409")) throw err;
      },
    );
  }
  const practitioner = await api("POST", "/api/practitioners", {
    name: "Dr Amélie Fontaine-Bérard",
    specialty: "General practice",
    timeZone: "Europe/Berlin",
    location: "Room 2",
  });
  practitionerId = practitioner.id;
  const hours = [1, 2, 3, 4, 5, 6, 7].map((weekday) => ({ weekday, start: "00:00", end: "24:00" }));
  await api("PUT", `/api/practitioners/${practitionerId}/working-hours`, { hours });
  patient = await api("POST", "/api/patients", {
    givenName: "Jonathan",
    familyName: `Müller-Lüdenscheidt`,
    birthDate: "1984-03-17",
    sex: "male",
    email: "jonathan.muller@example.org",
    phone: "+4930123456",
  });
});

after(async () => {
  await browser?.close();
});

test("sign in shows only what the roles allow, and the page is strict", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const response = await page.goto(BASE);
  assert.match(response.headers()["content-security-policy"], /script-src 'self'/);
  assert.equal(response.headers()["cache-control"], "no-cache");
  await page.getByRole("heading", { name: "Sign in to pms" }).waitFor();
  await scan(page, "sign-in");
  await shot(page, "sign-in");
  await page.getByLabel("Email").fill(DESK.email);
  await page.getByLabel("Password").fill("wrong-password-here");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").filter({ hasText: "wrong" }).waitFor();
  await page.getByLabel("Password").fill(DESK.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  const nav = page.getByRole("navigation", { name: "Main" });
  await nav.waitFor();
  assert.deepEqual(await nav.getByRole("link").allInnerTexts(), ["Patients", "Today", "Calendar"]);
  // Tokens are kept in memory only.
  const stored = await page.evaluate(() => [localStorage.length, sessionStorage.length, document.cookie]);
  assert.deepEqual(stored, [0, 0, ""]);
  await context.close();
});

test("search with a typo and no accents finds the patient, by keyboard alone", async () => {
  const page = await signedIn(DESK);
  const search = page.getByLabel("Name, MRN, phone, email or birth date");
  await search.fill("jonathn muller-ludenscheidt");
  const result = page.getByRole("button", { name: /Müller-Lüdenscheidt, Jonathan/ });
  await result.waitFor();
  await scan(page, "search");
  await shot(page, "search");
  await search.press("ArrowDown");
  assert.equal(await result.evaluate((el) => el === document.activeElement), true);
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: /Müller-Lüdenscheidt, Jonathan/ }).waitFor();
  // Nothing about the patient in the address bar or the title.
  assert.equal(new URL(page.url()).hash, "#/patient");
  assert.equal(await page.title(), "Patient record · pms");
  assert.ok(!page.url().includes(patient.id));
  await scan(page, "patient record");
  await shot(page, "patient");
  // Back and forward move between screens, the patient kept in memory only.
  await page.goBack();
  await page.getByRole("heading", { name: "Find a patient" }).waitFor();
  await page.goForward();
  await page.getByRole("heading", { name: /Müller-Lüdenscheidt, Jonathan/ }).waitFor();
  assert.deepEqual(page.cspViolations, []);
  await page.context().close();
});

test("registering: no match offers it, an invalid field is explained beside it, fixed, saved", async () => {
  const page = await signedIn(DESK);
  await page.getByLabel("Name, MRN, phone, email or birth date").fill("Zoë Ångström");
  await page.getByText("No patient matches.").waitFor();
  await page.getByRole("button", { name: /as a new patient/ }).click();
  await page.getByRole("heading", { name: "Register a patient" }).waitFor();
  assert.equal(await page.getByLabel("Given name").inputValue(), "Zoë");
  assert.equal(await page.getByLabel("Family name").inputValue(), "Ångström");
  await page.getByLabel("Birth date").fill("1990-07-01");
  await page.getByLabel("Sex").selectOption("female");
  await page.getByLabel("Email").fill("zoe-at-example.org");
  await page.getByRole("button", { name: "Register" }).click();
  const email = page.getByLabel("Email");
  await page.locator(".field.invalid").first().waitFor();
  assert.equal(await email.getAttribute("aria-invalid"), "true");
  const described = await email.getAttribute("aria-describedby");
  const message = await page.locator(`#${described.split(" ").pop()}`).innerText();
  assert.match(message, /email/i);
  await scan(page, "registration with an error");
  await shot(page, "register-error");
  await email.fill("zoe@example.org");
  await page.getByRole("button", { name: "Register" }).click();
  await page.getByRole("heading", { name: "Ångström, Zoë" }).waitFor();
  await page.context().close();
});

test("a possible duplicate (same name and birth date) is shown before saving", async () => {
  const page = await signedIn(DESK);
  await page.getByRole("button", { name: "Register a new patient" }).click();
  await page.getByLabel("Given name").fill("Jonathan");
  await page.getByLabel("Family name").fill("Müller-Lüdenscheidt");
  await page.getByLabel("Birth date").fill("1984-03-17");
  await page.getByLabel("Sex").selectOption("male");
  await page.getByRole("button", { name: "Register" }).click();
  const question = page.getByRole("alertdialog", { name: "Is this one of them?" });
  await question.waitFor();
  // Opening the one already registered registers nothing.
  await question.getByRole("button", { name: /Müller-Lüdenscheidt, Jonathan, born 1984-03-17/ }).click();
  await page.getByRole("heading", { name: /Müller-Lüdenscheidt, Jonathan/ }).waitFor();
  const found = await api("POST", "/api/patients/search", { name: "Jonathan Müller-Lüdenscheidt", limit: 10 });
  assert.equal(found.patients.length, 1);
  await page.context().close();
});

test("deactivating asks for a reason and a confirmation, and the history keeps it", async () => {
  const page = await signedIn(DESK);
  await page.getByLabel("Name, MRN, phone, email or birth date").fill("zoe angstrom");
  await page.getByRole("button", { name: /Ångström, Zoë/ }).click();
  await page.getByRole("button", { name: "Deactivate…" }).click();
  const dialog = page.getByRole("alertdialog", { name: /Deactivate Zoë Ångström/ });
  await dialog.getByRole("button", { name: "Deactivate the record" }).click();
  await dialog.getByText("Say why the record is deactivated.").waitFor();
  await dialog.getByLabel("Reason").fill("Registered twice by mistake");
  await dialog.getByRole("button", { name: "Deactivate the record" }).click();
  await page.getByRole("heading", { name: /Ångström, Zoë\s*deactivated/ }).waitFor();
  await page.getByRole("tab", { name: "History" }).click();
  await page.getByText("Reason: Registered twice by mistake").waitFor();
  await page.getByText("Deactivated.").waitFor();
  await page.context().close();
});

test("two people edit the same record: the second sees the conflict and both versions", async () => {
  const [a, b] = [await signedIn(DESK), await signedIn(DESK)];
  for (const page of [a, b]) {
    await page.getByLabel("Name, MRN, phone, email or birth date").fill(patient.mrn);
    await page.getByRole("button", { name: /Müller-Lüdenscheidt, Jonathan/ }).click();
    await page.getByRole("button", { name: "Edit" }).click();
  }
  await a.getByLabel("Phone").fill("+4930999888");
  await a.getByRole("button", { name: "Save changes" }).click();
  await a.getByText("Saved.").waitFor();
  await b.getByLabel("City").fill("Hamburg");
  await b.getByRole("button", { name: "Save changes" }).click();
  const conflict = b.getByRole("alert").filter({ hasText: "Someone else changed this record" });
  await conflict.waitFor();
  // Their change (the phone) and mine (the city) are both shown, neither lost.
  assert.match(await conflict.getByRole("row", { name: /Phone/ }).innerText(), /\+4930999888[\s\S]*unchanged/);
  assert.match(await conflict.getByRole("row", { name: /City/ }).innerText(), /Hamburg/);
  await scan(b, "edit conflict");
  await shot(b, "conflict");
  await b.getByRole("button", { name: "Apply my changes to their version" }).click();
  assert.equal(await b.getByLabel("Phone").inputValue(), "+4930999888");
  assert.equal(await b.getByLabel("City").inputValue(), "Hamburg");
  await b.getByRole("button", { name: "Save changes" }).click();
  await b.getByText("Saved.").waitFor();
  await b.getByText("+4930999888").waitFor();
  await b.getByRole("tab", { name: "History" }).click();
  await b.getByText(/City: .*Hamburg/).waitFor();
  await b.getByText(/Phone: .*\+4930999888/).waitFor();
  await b.getByText(/by you/).first().waitFor();
  await a.context().close();
  await b.context().close();
});

test("find a free time, book it, see the confirmation, cancel it", async () => {
  const page = await signedIn(DESK);
  await page.getByRole("link", { name: "Calendar" }).click();
  await page.getByLabel("Practitioner").selectOption(practitionerId);
  await page.getByText("Europe/Berlin").first().waitFor();
  // Tomorrow: today's free times may be over.
  const tomorrow = berlinDaysAhead(1);
  await page.getByLabel("Date").fill(tomorrow);
  const slot = page.getByRole("button", { name: /^Free at 10:00/ });
  await slot.waitFor();
  await scan(page, "calendar");
  await shot(page, "calendar");
  await slot.click();
  await page.getByLabel("Patient (name, MRN, phone…)").fill("jonathan muller");
  await page.getByRole("button", { name: /Müller-Lüdenscheidt, Jonathan · born 1984-03-17/ }).click();
  await page.getByLabel("Reason (optional)").fill("Check-up");
  await scan(page, "booking");
  await shot(page, "booking");
  await page.getByRole("button", { name: "Book", exact: true }).click();
  await page.getByText(/^Booked .* at 10:00\./).waitFor();
  const booked = page.locator(".appointment").filter({ hasText: "Müller-Lüdenscheidt, Jonathan" });
  await booked.waitFor();
  // The week view shows it too.
  await page.getByRole("button", { name: "Week" }).click();
  await page.locator(".calendar.week .appointment").first().waitFor();
  await page.getByRole("button", { name: "Day" }).click();

  // The confirmation in the patient's messages (sent through the event pipeline).
  await booked.getByRole("button", { name: /Müller-Lüdenscheidt, Jonathan/ }).click();
  await page.getByRole("tab", { name: "Messages" }).click();
  const confirmation = page.getByRole("row", { name: /Booking confirmation Email/ });
  for (let i = 0; i < 40 && !(await confirmation.count()); i++) {
    await page.waitForTimeout(500);
    await page.getByRole("tab", { name: "History" }).click();
    await page.getByRole("tab", { name: "Messages" }).click();
  }
  await confirmation.first().waitFor();
  await scan(page, "messages");
  await shot(page, "messages");

  // Reschedule it to 11:00, then cancel it, with a reason.
  await page.getByRole("link", { name: "Calendar" }).click();
  await page.getByLabel("Practitioner").selectOption(practitionerId);
  await page.getByLabel("Date").fill(tomorrow);
  const again = page.locator(".appointment").filter({ hasText: "Müller-Lüdenscheidt, Jonathan" });
  await again.getByRole("button", { name: "Reschedule" }).click();
  await page.getByText("Choose the new time for this appointment.").waitFor();
  await page.getByRole("button", { name: /^Free at 11:00/ }).click();
  await page.getByText(/^Moved to .* 11:00\./).waitFor();
  await again.getByText(/^11:00–11:30/).waitFor();
  await again.getByRole("button", { name: "Cancel…" }).click();
  await again.getByLabel("Reason for cancelling").fill("Patient called");
  await again.getByRole("button", { name: "Cancel the appointment" }).click();
  await page.getByText("Cancelled.").waitFor();
  await page.locator(".appointment.cancelled").filter({ hasText: "Müller-Lüdenscheidt" }).waitFor();
  await page.context().close();
});

test("a booking with the keyboard alone: Tab, Enter and typing", async () => {
  const page = await signedIn(DESK);
  await tabTo(page, page.getByRole("link", { name: "Calendar" }));
  await page.keyboard.press("Enter");
  await tabTo(page, page.getByLabel("Practitioner"));
  await page.getByLabel("Practitioner").selectOption(practitionerId); // a select's own keys vary by platform
  const inTwoDays = berlinDaysAhead(2);
  await tabTo(page, page.getByLabel("Date"));
  await page.getByLabel("Date").fill(inTwoDays);
  const slot = page.getByRole("button", { name: /^Free at 09:00/ });
  await tabTo(page, slot);
  await page.keyboard.press("Enter");
  const who = page.getByLabel("Patient (name, MRN, phone…)");
  await tabTo(page, who);
  await page.keyboard.type("jonathan muller");
  const found = page.getByRole("button", { name: /Müller-Lüdenscheidt, Jonathan · born 1984-03-17/ });
  await found.waitFor();
  await tabTo(page, found);
  await page.keyboard.press("Enter");
  await tabTo(page, page.getByRole("button", { name: "Book", exact: true }));
  await page.keyboard.press("Enter");
  await page.getByText(/^Booked .* at 09:00\./).waitFor();
  await page.context().close();
});

test("registering, editing and adding a user with the keyboard alone", async () => {
  const page = await signedIn(DESK);
  const type = async (target, text) => {
    await tabTo(page, target);
    await page.keyboard.type(text);
  };
  const press = async (target) => {
    await tabTo(page, target);
    await page.keyboard.press("Enter");
  };
  await type(page.getByLabel("Name, MRN, phone, email or birth date"), "Keyboard Kowalczyk");
  await press(page.getByRole("button", { name: /as a new patient/ }));
  await page.getByRole("heading", { name: "Register a patient" }).waitFor();
  // Headless Chromium's date input reads month, day, year, whatever the language (seen with
  // --lang=en-GB and en-US); the value is ISO either way.
  await type(page.getByLabel("Birth date"), "03171984");
  assert.equal(await page.getByLabel("Birth date").inputValue(), "1984-03-17");
  await tabTo(page, page.getByLabel("Sex"));
  await page.getByLabel("Sex").selectOption("female"); // a select's own keys vary by platform
  await type(page.getByLabel("Email"), "k.kowalczyk@example.org");
  await press(page.getByRole("button", { name: "Register" }));
  await page.getByRole("heading", { name: "Kowalczyk, Keyboard" }).waitFor();

  await press(page.getByRole("button", { name: "Edit" }));
  await type(page.getByLabel("City"), "Kraków");
  await press(page.getByRole("button", { name: "Save changes" }));
  await page.getByText("Saved.").waitFor();
  await page.getByText("Kraków").first().waitFor();
  await page.context().close();

  const admin = await signedIn(ADMIN);
  const pressOn = async (target) => {
    await tabTo(admin, target);
    await admin.keyboard.press("Enter");
  };
  await pressOn(admin.getByRole("link", { name: "Users" }));
  await pressOn(admin.getByRole("button", { name: "Add a user" }));
  const form = admin.getByRole("form", { name: "Add a user" });
  for (const [label, text] of [
    ["Email", "keys@clinic.example"],
    ["Name", "Kay Board"],
    ["First password", "keyboard-only-passphrase"],
  ]) {
    await tabTo(admin, form.getByLabel(label));
    await admin.keyboard.type(text);
  }
  await tabTo(admin, form.getByRole("checkbox", { name: "receptionist" }));
  assert.ok(await form.getByRole("checkbox", { name: "receptionist" }).isChecked());
  await tabTo(admin, form.getByRole("checkbox", { name: "analyst" }));
  await admin.keyboard.press("Space");
  assert.ok(await form.getByRole("checkbox", { name: "analyst" }).isChecked());
  await pressOn(form.getByRole("button", { name: "Add the user" }));
  await admin.getByText("keys@clinic.example can now sign in.").waitFor();
  const row = admin.getByRole("row", { name: /keys@clinic\.example/ });
  await row.getByRole("cell", { name: /^(receptionist, analyst|analyst, receptionist)$/ }).waitFor();
  await admin.context().close();
});

test("the today list: check a patient in; and a tablet-sized screen", async (t) => {
  // A booking later today (on the 15-minute grid, at least 20 minutes ahead), in Berlin.
  const start = new Date(Math.ceil((Date.now() + 20 * 60_000) / 900_000) * 900_000);
  if (berlinDay(start) !== berlinDay(new Date())) {
    t.skip("less than 35 minutes of the day left in Europe/Berlin: no time to book today");
    return;
  }
  await api("POST", "/api/appointments", {
    patientId: patient.id,
    practitionerId,
    start: start.toISOString(),
    type: "consultation",
  });
  const page = await signedIn(DESK, { width: 768, height: 1024 });
  await page.getByRole("link", { name: "Today" }).click();
  await page.getByRole("heading", { name: "Today" }).waitFor();
  const item = page.locator(".appointment").filter({ hasText: "Müller-Lüdenscheidt, Jonathan" });
  await item.getByText("Dr Amélie Fontaine-Bérard").waitFor();
  await scan(page, "today");
  await shot(page, "today");
  await item.getByRole("button", { name: "Check in" }).click();
  const checkedIn = page.locator(".appointment.checked_in").filter({ hasText: "Müller-Lüdenscheidt" });
  await checkedIn.getByRole("button", { name: "Complete" }).click();
  await page.locator(".appointment.completed").filter({ hasText: "Müller-Lüdenscheidt" }).waitFor();
  await page.getByRole("link", { name: "Patients" }).click();
  await page.getByLabel("Name, MRN, phone, email or birth date").fill("müller-lüdenscheidt");
  const name = page.getByRole("button", { name: /Müller-Lüdenscheidt, Jonathan/ });
  await name.waitFor();
  // Long names with accents are shown whole: the page never scrolls sideways.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px`);
  await page.context().close();
});

test("admins see users and the audit trail; the front desk's 403 is explained", async () => {
  const page = await signedIn(ADMIN);
  await page.getByRole("link", { name: "Users" }).click();
  await page.getByRole("cell", { name: DESK.email, exact: true }).waitFor();
  // A clinician joins: added with a first password and the clinician role.
  await page.getByRole("button", { name: "Add a user" }).click();
  const form = page.getByRole("form", { name: "Add a user" });
  await form.getByLabel("Email").fill(CLINICIAN.email);
  await form.getByLabel("Name").fill("Dr Clinician");
  await form.getByLabel("First password").fill(CLINICIAN.password);
  await form.getByRole("checkbox", { name: "receptionist" }).uncheck();
  await form.getByRole("checkbox", { name: "clinician" }).check();
  await form.getByRole("button", { name: "Add the user" }).click();
  await page.getByText(`${CLINICIAN.email} can now sign in.`).waitFor();
  const row = page.getByRole("row", { name: new RegExp(CLINICIAN.email) });
  await row.getByRole("cell", { name: "clinician", exact: true }).waitFor();
  await scan(page, "users");
  await shot(page, "users");
  await page.getByRole("link", { name: "Audit trail" }).click();
  await page.getByLabel("Patient id").fill(patient.id);
  await page.getByRole("button", { name: "Show", exact: true }).click();
  await page.getByRole("cell", { name: "read" }).first().waitFor();
  // Who did it is named, beside the id an admin filters by.
  await page.getByRole("cell", { name: /^Front Desk [0-9a-f-]{36}/ }).first().waitFor();
  await scan(page, "audit trail");
  await shot(page, "audit");
  await page.context().close();

  // The clinician sees patients and appointments, but registering and editing are the front
  // desk's: those buttons are not offered.
  const clinician = await signedIn(CLINICIAN);
  const nav = clinician.getByRole("navigation", { name: "Main" });
  assert.deepEqual(await nav.getByRole("link").allInnerTexts(), ["Patients", "Today", "Calendar"]);
  await clinician.getByLabel("Name, MRN, phone, email or birth date").fill(patient.mrn);
  await clinician.getByRole("button", { name: /Müller-Lüdenscheidt, Jonathan/ }).click();
  await clinician.getByRole("button", { name: "Book an appointment" }).waitFor();
  assert.equal(await clinician.getByRole("button", { name: "Edit" }).count(), 0);
  assert.equal(await clinician.getByRole("button", { name: "Deactivate…" }).count(), 0);
  // The record's history names the colleagues who wrote it, not their user ids.
  await clinician.getByRole("tab", { name: "History" }).click();
  await clinician.getByText(/, by Front Desk$/).first().waitFor();
  assert.doesNotMatch(await clinician.locator(".history").innerText(), /by [0-9a-f]{8}-/);
  await clinician.context().close();

  // A user whose roles open no screen is told so, and where their work is: not a blank page.
  const analyst = await signedIn(ANALYST);
  await analyst.getByRole("heading", { name: "Nothing here for your roles" }).waitFor();
  assert.match(await analyst.locator("main").innerText(), /roles analyst/);
  await scan(analyst, "no screens for the roles");
  await analyst.context().close();
});

test("a session that ends keeps the half-filled form; sign out returns to sign-in", async () => {
  const page = await signedIn(DESK);
  await page.getByLabel("Name, MRN, phone, email or birth date").fill("Half Filled");
  await page.getByRole("button", { name: /as a new patient/ }).click();
  await page.getByLabel("Birth date").fill("1970-01-01");
  await page.getByLabel("Sex").selectOption("other");
  // An admin disables the desk's account (its sessions end) and enables it again: the app's
  // next token refresh is refused, and it asks to sign in again over the form.
  const desk = (await api("GET", "/api/users?limit=100")).users.find((u) => u.email === DESK.email);
  await api("PATCH", `/api/users/${desk.id}`, { enabled: false });
  await api("PATCH", `/api/users/${desk.id}`, { enabled: true });
  const dialog = page.getByRole("dialog", { name: "Your session has ended" });
  await dialog.waitFor({ timeout: 30_000 });
  await scan(page, "session ended");
  await dialog.getByLabel("Password").fill(DESK.password);
  await dialog.getByRole("button", { name: "Sign in" }).click();
  await dialog.waitFor({ state: "detached" });
  // What was typed is still there, and saves.
  assert.equal(await page.getByLabel("Family name").inputValue(), "Filled");
  assert.equal(await page.getByLabel("Birth date").inputValue(), "1970-01-01");
  await page.getByRole("button", { name: "Register" }).click();
  await page.getByRole("heading", { name: "Filled, Half" }).waitFor();
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in to pms" }).waitFor();
  await page.context().close();
});

test("every screen was scanned for accessibility", (t) => {
  if (!scanned.includes("today")) t.diagnostic("the today screen was not scanned: its test was skipped");
  const screens = [
    "sign-in",
    "search",
    "patient record",
    "registration with an error",
    "edit conflict",
    "calendar",
    "booking",
    "messages",
    "today",
    "users",
    "audit trail",
    "no screens for the roles",
    "session ended",
  ];
  const expected = scanned.includes("today") ? screens : screens.filter((s) => s !== "today");
  assert.deepEqual([...scanned].sort(), [...expected].sort());
});
