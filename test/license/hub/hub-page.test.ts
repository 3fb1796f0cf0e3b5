// The hub's self-service page in a real browser (src/license/hub/page/; Wibu 000 P002 §2.1 "single click", "CM-Box
// Backup" §2.5 progress per licensor, §2.11 the licensor approves an alert): Debian's Chromium driven by playwright-core
// against a real hub and real restoring services. With VSC_SCREENSHOTS=1 it saves docs/screenshots/hub-restore.png and
// hub-licensor.png. A missing Chromium fails the test naming the package to install; it never skips.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSignedBody } from '../../../src/license/index.js';
import { API_KEY, cardBackup, NEW_SERIAL, startFakeLicensor, startHub, targetInfo, type FakeLicensor, type HubHarness } from './hub-fixture.js';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = fileURLToPath(new URL('../../../docs/screenshots/', import.meta.url));
const saveScreenshots = process.env['VSC_SCREENSHOTS'] === '1';

let hub: HubHarness;
let browser: Browser;
let dir: string;
const licensors: FakeLicensor[] = [];
let fast: FakeLicensor;
let slow: FakeLicensor;
let refusing: FakeLicensor;
let absent: FakeLicensor;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install the Debian package chromium (apt-get install -y chromium)`);
  hub = await startHub();
  fast = await startFakeLicensor('Fast Software', 101, 'restore');
  slow = await startFakeLicensor('Slow Software', 102, 'slow');
  refusing = await startFakeLicensor('Refusing Software', 103, 'refuse');
  absent = await startFakeLicensor('Absent Software', 104, 'restore');
  licensors.push(fast, slow, refusing, absent);
  for (const who of [fast, slow, refusing]) expect(await hub.register(who)).toBe(200);
  dir = mkdtempSync(join(tmpdir(), 'vsc-hub-page-'));
  writeFileSync(join(dir, 'backup.json'), cardBackup([fast, slow, refusing, absent]).text);
  writeFileSync(join(dir, 'target.json'), JSON.stringify(targetInfo({ [slow.keyHex]: 3 })));
  // As root (CI) Chromium's sandbox cannot start; the page is our own, served from 127.0.0.1.
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], headless: true });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await Promise.all(licensors.map((who) => who.close()));
  await hub?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

/** A page of the hub that records every console error (a Content-Security-Policy violation shows there). */
async function openPage(): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1100, height: 820 }, acceptDownloads: true });
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(hub.url);
  await page.waitForSelector('body[data-ready="true"]');
  return { page, errors };
}

const status = (page: Page, who: FakeLicensor) => page.locator(`tr[data-licensor="${who.keyHex}"] td.status`);

async function screenshot(page: Page, name: string): Promise<void> {
  if (!saveScreenshots) return;
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, name), fullPage: true });
}

describe('the self-service page', () => {
  it('restores a backup: files in, licensors ticked, progress while they answer, then the answer file', async () => {
    const { page, errors } = await openPage();
    // The style sheet the script adopts applies under default-src 'self' (no inline style needed).
    expect(await page.evaluate('getComputedStyle(document.querySelector("header")).backgroundColor')).toBe('rgb(35, 57, 93)');
    await page.setInputFiles('#backup-file', join(dir, 'backup.json'));
    await page.setInputFiles('#target-file', join(dir, 'target.json'));
    await expect.poll(() => page.locator('#items tbody tr').count()).toBe(4);
    expect(await status(page, absent).textContent()).toBe('no restore offered');
    expect(await page.locator('#files-status').textContent()).toBe(`Backup of card OLD-CARD-1: 4 licensors. Target: card ${NEW_SERIAL}.`);

    await page.click('#restore');
    // The slow licensor still works while the others answered: the page shows it.
    await expect.poll(() => status(page, fast).textContent()).toBe('restored');
    await expect.poll(() => status(page, refusing).textContent()).toBe('refused');
    expect(await status(page, slow).textContent()).toBe('pending');
    expect(await status(page, absent).textContent()).toBe('not-restorable');
    expect(await page.locator('#job-state').textContent()).toBe('Waiting for the licensors: 3 of 4 answered…');
    expect(await page.locator('#answer-link').isHidden()).toBe(true);
    await screenshot(page, 'hub-restore-progress.png');

    slow.release();
    await expect.poll(() => status(page, slow).textContent()).toBe('restored');
    await page.waitForSelector('#answer-link:not([hidden])');
    expect(await page.locator('#job-state').textContent()).toBe('Done: 2 of 4 restored.');
    expect(await page.locator(`tr[data-licensor="${refusing.keyHex}"] td`).nth(4).textContent()).toBe('Refusing Software: this backup was restored before');
    await screenshot(page, 'hub-restore.png');

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#answer-link')]);
    expect(download.suggestedFilename()).toBe(`restore-answer-${NEW_SERIAL}.json`);
    const file = JSON.parse(readFileSync((await download.path())!, 'utf8')) as { format: string; updates: string[] };
    expect(file.format).toBe('vsc-license-restore-answer/1');
    expect(file.updates.map((update) => parseSignedBody(update).body.serial)).toEqual([NEW_SERIAL, NEW_SERIAL]);
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  it('lets a licensor see its alerts and approve one with its API key', async () => {
    const { page, errors } = await openPage();
    await page.click('#tab-licensor');
    expect(await page.locator('#customer').isHidden()).toBe(true);
    await page.selectOption('#licensor-key', fast.keyHex);
    await page.fill('#api-key', API_KEY);
    await page.click('#alerts-load');
    const row = page.locator('#alerts tr[data-alert="7"]');
    await expect.poll(() => row.locator('td').nth(4).textContent()).toBe('pending');
    expect(await page.locator('#alerts-status').textContent()).toBe('1 alerts of Fast Software.');
    await row.locator('button', { hasText: 'Approve' }).click();
    await expect.poll(() => row.locator('td').nth(4).textContent()).toBe('approved');
    expect(fast.alerts[0]!.state).toBe('approved');
    expect(fast.received.filter((entry) => entry.path === '/v1/alerts/7/approve').map((entry) => entry.authorization)).toEqual([`Bearer ${API_KEY}`]);
    await screenshot(page, 'hub-licensor.png');
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);
});
