/**
 * The Cockpit page (src/cockpit/), in a real browser: Debian's cockpit-ws inside the private systemd
 * (as root, --local-session: no login), the page as the package installs it, its socket set by a
 * manifest override to the test runner's Unix socket, and Debian's chromium driven by playwright-core.
 * Assertions on the page's content. TESSIA_SCREENSHOTS=DIR keeps screenshots of the list and of a
 * followed log there (docs/ has the README's).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import {
  BROWSER_OPTIONS,
  CHROMIUM,
  COCKPIT_PACKAGE as PACKAGE,
  COCKPIT_WS,
  startCockpit,
  type CockpitService,
} from '../../src/embedded/cockpit-ws.js';
import { waitForState } from '../../src/embedded/runner-tasks.js';
import { skipUnlessFiles } from '../harness/requirements.js';
import { runnerSuite } from '../harness/suite.js';

const SKIP = skipUnlessFiles(
  [COCKPIT_WS, '/usr/bin/cockpit-bridge', '/usr/share/cockpit/shell/manifest.json', CHROMIUM],
  "the Cockpit page's browser tests need Cockpit and Chromium: apt-get install cockpit-ws cockpit-bridge cockpit-system chromium (.ci/run does)",
);

describe('the Cockpit page', { skip: SKIP }, () => {
  const name = `cockpit-${process.pid}`;
  const socketPath = `/run/tessia-test/${name}.sock`;
  const suite = runnerSuite({ unixSocket: { path: socketPath, mode: '0600' } });
  let cockpit: CockpitService;
  let browser: Browser;
  let page: Page;

  before(async () => {
    cockpit = await startCockpit(suite.runner.systemd, socketPath, name);
    browser = await chromium.launch({ ...BROWSER_OPTIONS, executablePath: cockpit.browserExecutable });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  });

  after(async () => {
    await browser.close();
    await cockpit.stop();
  });

  const open = async (hash = '') => {
    await page.goto(`${cockpit.pageUrl}${hash}`);
  };
  const loaded = () => page.waitForSelector('#app[data-loaded="true"]');
  const screenshot = async (file: string) => {
    const dir = process.env['TESSIA_SCREENSHOTS'];
    if (dir) await page.screenshot({ path: join(dir, file), fullPage: true });
  };

  test('is a Cockpit package with a Tasks entry under Tools', async () => {
    await page.goto(`${cockpit.base}/`);
    const entry = page.locator(`a[href="/${PACKAGE}"]`).first();
    await entry.waitFor({ state: 'attached' });
    assert.equal((await entry.textContent())?.trim(), 'Tasks');
    // Inside cockpit-ws's network, as everything that reaches it.
    const manifest = (await page.evaluate(
      (url) => fetch(url).then((r) => r.json()),
      `${cockpit.base}/cockpit/@localhost/${PACKAGE}/manifest.json`,
    )) as Record<string, any>;
    assert.ok(manifest['tools'].index, 'a tools entry');
  });

  test('lists the tasks, newest first, each with its machine, state, exit code and unit', async () => {
    const older = await suite.start('echo', ['echo older', 'return 3']);
    const newer = await suite.start('sleeper', null);
    await waitForState(suite.api, older.taskId, ['exited']);
    await open();
    await loaded();
    const rows = await page
      .locator('#tessia-tasks tbody tr[data-task]')
      .evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-task')));
    assert.ok(rows.includes(newer.taskId) && rows.indexOf(newer.taskId) < rows.indexOf(older.taskId), 'the newest first');
    const row = page.locator(`tr[data-task="${older.taskId}"]`);
    assert.equal(await row.locator('td[data-label="Machine"]').textContent(), 'echo');
    assert.equal(await row.locator('[data-state]').getAttribute('data-state'), 'exited');
    assert.equal(await row.locator('td[data-label="Exit code"]').textContent(), "3 (the machine's own code)");
    assert.equal(await row.locator('a[data-unit]').getAttribute('data-unit'), older.unit);
    assert.equal(await page.locator(`tr[data-task="${newer.taskId}"] [data-state]`).getAttribute('data-state'), 'running');
    await screenshot('cockpit-tasks.png');
  });

  test('updates the list live: a task started elsewhere appears, and its end shows', async () => {
    await open();
    await loaded();
    const task = await suite.start('echo', ['echo live', 'sleep 1', 'return 0']);
    await page.waitForSelector(`tr[data-task="${task.taskId}"] [data-state="running"]`);
    await page.waitForSelector(`tr[data-task="${task.taskId}"] [data-state="exited"]`, { timeout: 20_000 });
    assert.equal(await page.locator(`tr[data-task="${task.taskId}"] td[data-label="Exit code"]`).textContent(), '0 (success)');
  });

  test('starts an echo task from the form, shows it running, and follows its log to the end line', async () => {
    await open('#/start');
    await loaded();
    await page.selectOption('#tessia-machine', 'echo');
    await page.fill(
      '#tessia-parameters',
      JSON.stringify(['echo the first line', 'LOG ERROR something went wrong', 'sleep 2', 'echo the last line', 'return 0']),
    );
    await page.click('#tessia-submit');
    await page.waitForSelector('#app[data-state="running"]');
    const taskId = new URL(page.url()).hash.replace('#/task/', '');
    assert.match(taskId, /^[0-9a-f]{8}$/);
    await page.waitForSelector('#tessia-log .tessia-log__entry:has-text("the first line")');
    const end = await page.waitForSelector('#tessia-log-end', { timeout: 30_000 });
    assert.equal(await end.textContent(), 'The task ended: exited, exit code 0 (success).');
    const messages = await page.locator('#tessia-log .tessia-log__message').allTextContents();
    assert.ok(messages.indexOf('the first line') < messages.indexOf('the last line'), messages.join('\n'));
    await page.waitForSelector('#app[data-state="exited"]');
    // Coloured by priority, as journalctl does.
    assert.match(
      (await page.locator('.tessia-log__entry', { hasText: 'something went wrong' }).getAttribute('class')) ?? '',
      /tessia-log--err/,
    );
    assert.match((await page.locator('.tessia-log__entry', { hasText: 'the first line' }).getAttribute('class')) ?? '', /tessia-log--info/);
    // An entry's structured fields, on a click.
    await page.locator('#tessia-log .tessia-log__entry', { hasText: 'the first line' }).click();
    const fields = await page.locator('.tessia-log__fields').first().textContent();
    assert.match(fields ?? '', new RegExp(`TESSIA_TASK_ID${taskId}`));
    await screenshot('cockpit-task-log.png');
  });

  test("shows the runner's 400 in place, under the parameters, and starts nothing", async () => {
    const before = (await suite.api.get('/v1/tasks')).body.length;
    await open('#/start');
    await loaded();
    await page.selectOption('#tessia-machine', 'echo');
    await page.fill('#tessia-parameters', JSON.stringify(['frobnicate now']));
    await page.click('#tessia-submit');
    const problem = page.locator('#tessia-parameters-error');
    await problem.filter({ hasText: /\S/ }).waitFor();
    const refused = await suite.api.post('/v1/tasks', { machine: 'echo', parameters: ['frobnicate now'] });
    assert.equal(refused.status, 400);
    assert.equal(await problem.textContent(), refused.body.detail, "the runner's own words");
    await page.fill('#tessia-parameters', '{not json');
    await page.click('#tessia-submit');
    await problem.filter({ hasText: 'Not JSON' }).waitFor();
    assert.equal((await suite.api.get('/v1/tasks')).body.length, before);
  });

  test('stops a task (confirmed), then deletes it (confirmed)', async () => {
    const task = await suite.start('sleeper', null);
    await open();
    await loaded();
    const row = page.locator(`tr[data-task="${task.taskId}"]`);
    await row.locator('[data-action="stop"]').click();
    await page
      .locator('.pf-c-modal-box')
      .filter({ hasText: `Stop task ${task.taskId}?` })
      .waitFor();
    await page.locator('.pf-c-modal-box button', { hasText: 'Stop' }).click();
    await page.waitForSelector(`tr[data-task="${task.taskId}"] [data-state="exited"]`, { timeout: 20_000 });
    assert.equal(await row.locator('td[data-label="Exit code"]').textContent(), '-1 (stopped on request)');
    await row.locator('[data-action="delete"]').click();
    await page
      .locator('.pf-c-modal-box')
      .filter({ hasText: `Delete task ${task.taskId}?` })
      .waitFor();
    await page.locator('.pf-c-modal-box button', { hasText: 'Delete' }).click();
    await page.waitForSelector(`tr[data-task="${task.taskId}"]`, { state: 'detached', timeout: 20_000 });
    assert.equal((await suite.api.get(`/v1/tasks/${task.taskId}`)).status, 404);
  });

  test('filters by state and pages through the API, the newest first', async () => {
    const ended = [];
    for (let i = 0; i < 21; i++) ended.push(await suite.start('echo', ['return 0']));
    const running = await suite.start('sleeper', null);
    for (const task of ended) await waitForState(suite.api, task.taskId, ['exited']);
    await open();
    await loaded();
    await page.selectOption('#tessia-state-filter', 'running');
    await page.waitForSelector(`tr[data-task="${ended.at(-1)?.taskId}"]`, { state: 'detached' });
    const states = await page
      .locator('#tessia-tasks tbody [data-state]')
      .evaluateAll((labels) => labels.map((l) => l.getAttribute('data-state')));
    assert.ok(states.length > 0 && states.every((state) => state === 'running'), states.join(','));
    assert.equal(await page.locator(`tr[data-task="${running.taskId}"]`).count(), 1);
    await page.selectOption('#tessia-state-filter', 'exited');
    await page.waitForSelector(`tr[data-task="${ended.at(-1)?.taskId}"]`);
    assert.equal(await page.locator('#tessia-tasks tbody tr[data-task]').count(), 20, 'a page of 20');
    const firstPage = await page
      .locator('#tessia-tasks tbody tr[data-task]')
      .evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-task')));
    await page.click('button:has-text("Older")');
    await page.waitForSelector(`tr[data-task="${ended.at(-1)?.taskId}"]`, { state: 'detached' });
    const secondPage = await page
      .locator('#tessia-tasks tbody tr[data-task]')
      .evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-task')));
    assert.ok(secondPage.length > 0 && secondPage.every((id) => !firstPage.includes(id)), 'the older page holds other tasks');
    assert.ok(secondPage.includes(ended[0]?.taskId ?? ''), 'the oldest of them on it');
  });

  test('a second stop kills: a task in its cleanup ends at once (confirmed again)', async () => {
    const task = await suite.start('echo', ['echo working', 'sleep 120', 'CLEANUP', 'echo cleaning up', 'sleep 120']);
    await open(`#/task/${task.taskId}`);
    await page.waitForSelector('#app[data-state="running"]');
    // The machine itself running (its first line out): a SIGTERM before it listens would end it at once.
    await page.waitForSelector('#tessia-log .tessia-log__entry:has-text("working")');
    await page.click('[data-action="stop"]');
    await page.locator('.pf-c-modal-box button', { hasText: 'Stop' }).click();
    await page.waitForSelector('#tessia-log .tessia-log__entry:has-text("cleaning up")');
    const kill = page.locator('[data-action="stop"]', { hasText: 'Kill' });
    await kill.waitFor();
    await kill.click();
    await page
      .locator('.pf-c-modal-box')
      .filter({ hasText: `Kill task ${task.taskId}?` })
      .waitFor();
    await page.locator('.pf-c-modal-box button', { hasText: 'Kill' }).click();
    await page.waitForSelector('#tessia-log-end');
    assert.equal(await page.locator('#tessia-log-end').textContent(), 'The task ended: exited, exit code -1 (stopped on request).');
  });

  test('follows the log on across a restart of the runner', async () => {
    const task = await suite.start('echo', ['echo before', 'sleep 4', 'echo after the restart', 'sleep 60']);
    await open(`#/task/${task.taskId}`);
    await page.waitForSelector('#tessia-log .tessia-log__entry:has-text("before")');
    await suite.runner.restart();
    await page.waitForSelector('#tessia-log .tessia-log__entry:has-text("after the restart")', { timeout: 30_000 });
    assert.equal(await page.locator('#tessia-log .tessia-log__entry', { hasText: 'before' }).count(), 1, 'nothing twice');
  });

  test('inside the shell, a task links to its unit in Services', async () => {
    const task = await suite.start('sleeper', null);
    await page.goto(`${cockpit.base}/${PACKAGE}`);
    const frame = page.frameLocator(`iframe[name="cockpit1:localhost/${PACKAGE}"]`);
    await frame.locator(`tr[data-task="${task.taskId}"] a[data-unit]`).click();
    await page.waitForURL(`**/system/services#/${encodeURIComponent(task.unit)}`);
  });

  test('says plainly when the runner is not running', async () => {
    await suite.runner.stop();
    try {
      await open();
      await page.waitForSelector('#app[data-loaded="error"]');
      assert.match((await page.locator('.tessia-status').textContent()) ?? '', /not running or not reachable/);
    } finally {
      await suite.runner.start();
    }
  });
});

describe('the Cockpit page for a user who may not use the runner', { skip: SKIP }, () => {
  const name = `cockpit-nobody-${process.pid}`;
  const socketPath = `/run/tessia-test/${name}.sock`;
  // Mode 0600, root's: the user's bridge cannot connect (the package's is 0660, tessia-task-runner-admin's).
  const suite = runnerSuite({ unixSocket: { path: socketPath, mode: '0600' } });
  let cockpit: CockpitService;
  let browser: Browser;

  before(async () => {
    cockpit = await startCockpit(suite.runner.systemd, socketPath, name, 'nobody');
    browser = await chromium.launch({ ...BROWSER_OPTIONS, executablePath: cockpit.browserExecutable });
  });

  after(async () => {
    await browser.close();
    await cockpit.stop();
  });

  test('is told it is not permitted, and nothing more', async () => {
    const page = await browser.newPage();
    await page.goto(cockpit.pageUrl);
    await page.waitForSelector('#app[data-loaded="error"]');
    assert.match((await page.locator('.tessia-status').textContent()) ?? '', /Not permitted to reach the task runner/);
    assert.equal(await page.locator('#tessia-tasks tbody tr[data-task]').count(), 0);
  });
});
