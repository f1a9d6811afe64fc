/**
 * The Cockpit page (issue 18), in Debian's Chromium through Debian's cockpit-ws in the private
 * system: how long until it shows the task list (a page of 20), and a running task's first log
 * line — each against the same API request made bare, over the runner's Unix socket from here.
 * Skipped (undefined) where Cockpit or Chromium is not installed.
 */
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { chromium } from 'playwright-core';
import { client } from '../src/embedded/api-client.js';
import { BROWSER_OPTIONS, CHROMIUM, COCKPIT_PACKAGE, COCKPIT_WS, startCockpit } from '../src/embedded/cockpit-ws.js';
import type { PrivateSystemd } from '../src/embedded/private-systemd.js';
import type { RunnerService } from '../src/embedded/runner-service.js';
import { percentile, round } from './stats.js';

const SAMPLES = 10;
/** The task's first line of its own (the page shows systemd's lines about the unit too). */
const FIRST_LINE = 'the first line of the task';
export const COCKPIT_BENCH_MACHINES = {
  'bench-print-then-sleep': { exec: ['/bin/sh', '-c', `echo ${FIRST_LINE}; exec sleep 60`] },
};
const LIST = '/v1/tasks?view=full&order=newest&limit=20';

export interface CockpitBenchResult {
  samples: number;
  /** The page opened alone, outside the shell: a session of its own, whose bridge starts first. */
  directOpenP50Ms: number;
  /** From a click on Tasks in Cockpit's shell (its session running) until the list is shown in its frame. */
  listLoad: { p50Ms: number; maxMs: number; bareP50Ms: number };
  /**
   * From a click on a task in the list until its first line of output is shown (after systemd's lines
   * about its unit; the line written before the click); bare: that line in the log stream of another
   * such task, read as long after its start.
   */
  firstLogLine: { p50Ms: number; maxMs: number; bareP50Ms: number };
}

/** Over the runner's Unix socket: the time until the first line of the answer that `done` accepts. */
function bare(socket: string, path: string, done: (text: string) => boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    const began = performance.now();
    const sent = request({ socketPath: socket, path, headers: { Host: 'localhost' } }, (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        if (done(text)) {
          resolve(performance.now() - began);
          response.destroy();
        }
      });
      response.on('end', () => {
        resolve(performance.now() - began);
      });
    });
    sent.on('error', reject);
    sent.end();
  });
}

export async function benchCockpit(
  runner: RunnerService,
  systemd: PrivateSystemd,
  socket: string,
  log: (line: string) => void,
): Promise<CockpitBenchResult | undefined> {
  if (!existsSync(COCKPIT_WS) || !existsSync(CHROMIUM)) {
    log(`cockpit: skipped, ${COCKPIT_WS} or ${CHROMIUM} is not installed`);
    return undefined;
  }
  const api = client(runner.baseUrl);
  const cockpit = await startCockpit(systemd, socket, 'bench-cockpit');
  const browser = await chromium.launch({ ...BROWSER_OPTIONS, executablePath: cockpit.browserExecutable });
  const onHost = `${systemd.root}${socket}`;
  try {
    for (let i = 0; i < 20; i++) await api.post('/v1/tasks', { machine: 'bench-sleep', parameters: null });
    const timeOnPage = async (url: string, selector: string) => {
      const page = await browser.newPage();
      try {
        const began = performance.now();
        await page.goto(url);
        await page.waitForSelector(selector, { timeout: 30_000 });
        return performance.now() - began;
      } finally {
        await page.close();
      }
    };
    /**
     * As an admin does it: Cockpit's shell open (its session and bridge running), a click on Tasks
     * under Tools until the list is shown in its frame, then a click on a task until its first line
     * of output is shown. A session of its own each time: the shell keeps a page it has loaded.
     */
    const inShell = async (taskId: string) => {
      const page = await browser.newPage();
      try {
        await page.goto(`${cockpit.base}/system`);
        await page.waitForSelector('iframe[name="cockpit1:localhost/system"][data-loaded]', { timeout: 30_000 });
        const frame = page.frameLocator(`iframe[name="cockpit1:localhost/${COCKPIT_PACKAGE}"]`);
        let began = performance.now();
        await page.click(`a[href="/${COCKPIT_PACKAGE}"]`);
        await frame.locator('#app[data-loaded="true"]').waitFor({ timeout: 30_000 });
        const listMs = performance.now() - began;
        began = performance.now();
        await frame.locator(`a[href="#/task/${taskId}"]`).click();
        await frame.locator(`#tessia-log .tessia-log__entry:has-text("${FIRST_LINE}")`).waitFor({ timeout: 30_000 });
        return { listMs, firstLineMs: performance.now() - began };
      } finally {
        await page.close();
      }
    };
    // A warm-up: the first page of a browser also starts its renderer, and the bridge reads the packages.
    await timeOnPage(cockpit.pageUrl, '#app[data-loaded="true"]');
    const list = { page: [] as number[], bare: [] as number[] };
    const firstLine = { page: [] as number[], bare: [] as number[] };
    const direct: number[] = [];
    const running: string[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      // The page and the bare read each a task of their own, both started before the shell opens: by the
      // time either reads, its first line is in the journal (an admin opens a task that has run a while).
      const forPage = (await api.post('/v1/tasks', { machine: 'bench-print-then-sleep', parameters: null })).body as { taskId: string };
      const forBare = (await api.post('/v1/tasks', { machine: 'bench-print-then-sleep', parameters: null })).body as { taskId: string };
      const shown = await inShell(forPage.taskId);
      list.page.push(shown.listMs);
      firstLine.page.push(shown.firstLineMs);
      list.bare.push(await bare(onHost, LIST, () => false));
      firstLine.bare.push(await bare(onHost, `/v1/tasks/${forBare.taskId}/logs?follow=true`, (text) => text.includes(FIRST_LINE)));
      direct.push(await timeOnPage(cockpit.pageUrl, '#app[data-loaded="true"]'));
      running.push(forPage.taskId, forBare.taskId);
    }
    for (const taskId of running) await api.post(`/v1/tasks/${taskId}/stop`);
    const figures = (of: { page: number[]; bare: number[] }) => ({
      p50Ms: round(percentile(of.page, 50)),
      maxMs: round(Math.max(...of.page)),
      bareP50Ms: round(percentile(of.bare, 50)),
    });
    const result = {
      samples: SAMPLES,
      listLoad: figures(list),
      firstLogLine: figures(firstLine),
      directOpenP50Ms: round(percentile(direct, 50)),
    };
    log(
      `cockpit: Tasks clicked in the shell until the list is shown ${result.listLoad.p50Ms} ms p50 (max ${result.listLoad.maxMs}), bare list request ${result.listLoad.bareP50Ms} ms; a task clicked until its first line of output ${result.firstLogLine.p50Ms} ms p50 (max ${result.firstLogLine.maxMs}), bare ${result.firstLogLine.bareP50Ms} ms; the page opened alone (a session of its own, its bridge started) ${result.directOpenP50Ms} ms p50`,
    );
    return result;
  } finally {
    await browser.close();
    await cockpit.stop();
  }
}
