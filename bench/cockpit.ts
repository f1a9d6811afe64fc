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
import { BROWSER_OPTIONS, CHROMIUM, COCKPIT_WS, startCockpit } from '../src/embedded/cockpit-ws.js';
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
  /** From navigation to the list shown (the page's own connection to Cockpit, its cockpit.js, the API's answer). */
  listLoad: { p50Ms: number; maxMs: number; bareP50Ms: number };
  /**
   * From navigation to the page of a task just started until its first line of output is shown (after
   * systemd's lines about its unit); bare: the same line in the log stream of another such task.
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
    // A warm-up: the first page of a browser also starts its renderer, and the bridge reads the packages.
    await timeOnPage(cockpit.pageUrl, '#app[data-loaded="true"]');
    const list = { page: [] as number[], bare: [] as number[] };
    const firstLine = { page: [] as number[], bare: [] as number[] };
    const running: string[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      list.page.push(await timeOnPage(cockpit.pageUrl, '#app[data-loaded="true"]'));
      list.bare.push(await bare(onHost, LIST, () => false));
      // The page and the bare read each of a task of their own, started just before: its first line still to come.
      const forPage = (await api.post('/v1/tasks', { machine: 'bench-print-then-sleep', parameters: null })).body as { taskId: string };
      firstLine.page.push(
        await timeOnPage(`${cockpit.pageUrl}#/task/${forPage.taskId}`, `#tessia-log .tessia-log__entry:has-text("${FIRST_LINE}")`),
      );
      const forBare = (await api.post('/v1/tasks', { machine: 'bench-print-then-sleep', parameters: null })).body as { taskId: string };
      firstLine.bare.push(await bare(onHost, `/v1/tasks/${forBare.taskId}/logs?follow=true`, (text) => text.includes(FIRST_LINE)));
      running.push(forPage.taskId, forBare.taskId);
    }
    for (const taskId of running) await api.post(`/v1/tasks/${taskId}/stop`);
    const figures = (of: { page: number[]; bare: number[] }) => ({
      p50Ms: round(percentile(of.page, 50)),
      maxMs: round(Math.max(...of.page)),
      bareP50Ms: round(percentile(of.bare, 50)),
    });
    const result = { samples: SAMPLES, listLoad: figures(list), firstLogLine: figures(firstLine) };
    log(
      `cockpit: the task list shown ${result.listLoad.p50Ms} ms p50 (max ${result.listLoad.maxMs}) after navigation, bare list request ${result.listLoad.bareP50Ms} ms; a running task's first log line ${result.firstLogLine.p50Ms} ms p50 (max ${result.firstLogLine.maxMs}), bare ${result.firstLogLine.bareP50Ms} ms`,
    );
    return result;
  } finally {
    await browser.close();
    await cockpit.stop();
  }
}
