// Checks Swagger UI's Authorize button end to end: log in, authorize in the UI, run
// GET /api/patients from "Try it out", expect 200. Run by scripts/check-swagger.sh against
// a running `pms up` (PMS_URL, default http://127.0.0.1:8080).
const { chromium } = require('playwright-core');
const base = process.env.PMS_URL || 'http://127.0.0.1:8080';
(async () => {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  // Log in through the API, as a user would in another tab.
  const login = await page.request.post(`${base}/auth/login`,
    { data: { email: process.env.PMS_EMAIL || 'admin@pms.local', password: process.env.PMS_PASSWORD || 'pms-admin-password' } });
  const token = (await login.json()).accessToken;
  await page.goto(`${base}/docs/`);
  await page.getByRole('button', { name: /Authorize/ }).first().click();
  await page.locator('.modal-ux input[type=text]').fill(token);
  await page.locator('.modal-ux button.authorize').click();
  await page.locator('.modal-ux button.btn-done').click();
  // Try GET /api/patients from the UI.
  await page.locator('#operations-patients-search_1, #operations-patients-search').first().click();
  await page.getByRole('button', { name: 'Try it out' }).click();
  await page.getByRole('button', { name: 'Execute' }).click();
  const status = await page.locator('.live-responses-table tbody tr.response td.response-col_status').first().innerText();
  await page.screenshot({ path: process.env.SCREENSHOT || 'swagger-authorize.png' });
  await browser.close();
  if (status.trim() !== '200') {
    console.error(`Swagger UI got ${status.trim()}, expected 200`);
    process.exit(1);
  }
  console.log('Swagger UI: authorized request answered 200');
})().catch(e => { console.error(e); process.exit(1); });
