/**
 * One task: its details, and its log followed live (the last TAIL entries first, coloured by
 * priority, an entry's fields on a click), ending with the task's final state; stop (then kill) and
 * delete. Its streams close while the page is hidden (each holds one of the runner's log streams)
 * and resume where they were, as they do after the runner restarts.
 */
import { isFinished, type Task } from './api-types.js';
import { confirmDelete, confirmStop, stopLabel } from './actions.js';
import { alert, button, el } from './dom.js';
import { bytes, cpuTime, duration, exitMeaning, localTime, priorityClass, truncated, visible } from './format.js';
import type { RunnerClient, Stream } from './runner-client.js';
import { exitCell, stateLabel, unitLink } from './task-cells.js';

/** Entries read when the page opens (the API's tail); older ones are in the journal. */
const TAIL = 1000;
/** Entries kept on the page: the oldest go first. */
const MAX_ENTRIES = 5000;
/** Characters of a message or a field's value shown. */
const MAX_TEXT = 16 * 1024;
/** Fields of an entry kept for its details. */
const MAX_FIELDS = 100;
const RESUME_DELAY_MS = 3000;

export function showTaskPage(root: HTMLElement, runner: RunnerClient, taskId: string): () => void {
  let closed = false;
  let ended = false;
  let log: Stream | null = null;
  let events: Stream | null = null;
  let resumeTimer: number | undefined;
  let eventsTimer: number | undefined;
  /** The last entry's cursor: where a stream opened again resumes. */
  let cursor: string | null = null;
  const details = el('dl', { class: 'pf-c-description-list pf-m-horizontal pf-m-compact', id: 'tessia-details' });
  const actions = el('div', { class: 'tessia-actions' });
  const status = el('div', { class: 'tessia-status', 'aria-live': 'polite' });
  const lines = el('div', { class: 'tessia-log', id: 'tessia-log', role: 'log', 'aria-label': 'Log' });
  const back = el('a', { href: '#/', class: 'tessia-back' }, 'Tasks');
  back.addEventListener('click', (event) => {
    event.preventDefault();
    cockpit.location.go([]);
  });

  async function refresh(): Promise<void> {
    try {
      const task = await runner.get<Task>(`/v1/tasks/${taskId}`);
      if (!closed) show(task);
    } catch (error) {
      if (!closed) status.replaceChildren(alert('danger', error instanceof Error ? error.message : String(error)));
    }
  }

  function show(task: Task): void {
    const usage = task.usage;
    const pairs: [string, Node | string][] = [
      ['Machine', task.machine],
      ['State', stateLabel(task)],
      ['Exit code', exitCell(task)],
      ['Result', task.result ?? ''],
      ['Detail', task.detail ?? ''],
      ['Created', localTime(task.createdAt)],
      ['Started', localTime(task.startedAt)],
      ['Finished', localTime(task.finishedAt)],
      ['Duration', duration(task.startedAt, task.finishedAt)],
      ['CPU', cpuTime(usage?.cpuNsec ?? null)],
      ['Memory, now / peak', [bytes(usage?.memoryBytes ?? null), bytes(usage?.memoryPeakBytes ?? null)].filter(Boolean).join(' / ')],
      ['IO, read / written', [bytes(usage?.ioReadBytes ?? null), bytes(usage?.ioWriteBytes ?? null)].filter(Boolean).join(' / ')],
      ['Processes', usage?.tasks === null || usage?.tasks === undefined ? '' : String(usage.tasks)],
      ['Unit', unitLink(task)],
    ];
    details.replaceChildren(
      ...pairs.map(([term, value]) =>
        el(
          'div',
          { class: 'pf-c-description-list__group' },
          el('dt', { class: 'pf-c-description-list__term' }, term),
          el('dd', { class: 'pf-c-description-list__description' }, value),
        ),
      ),
    );
    actions.replaceChildren();
    if (!isFinished(task)) {
      actions.append(button(stopLabel(task), 'secondary', () => void confirmStop(runner, task).then(refresh), { 'data-action': 'stop' }));
    }
    actions.append(
      button(
        'Delete',
        'danger',
        () => {
          void confirmDelete(runner, task).then((deleted) => {
            if (deleted) cockpit.location.go([]);
          });
        },
        { 'data-action': 'delete' },
      ),
    );
    root.dataset['state'] = task.state;
  }

  /** What an entry keeps for its fields on demand: bounded, whatever the task wrote (100 fields, 16 KiB each). */
  function bounded(entry: Record<string, unknown>): Record<string, unknown> {
    const fields = typeof entry['fields'] === 'object' && entry['fields'] !== null ? (entry['fields'] as Record<string, unknown>) : {};
    const text = (value: unknown) => truncated(typeof value === 'string' ? value : JSON.stringify(value), MAX_TEXT);
    return {
      priorityName: entry['priorityName'],
      source: entry['source'],
      fields: Object.fromEntries(
        Object.entries(fields)
          .slice(0, MAX_FIELDS)
          .map(([name, value]) => [truncated(name, 64), text(value)]),
      ),
    };
  }

  function entryLine(entry: Record<string, unknown>): HTMLElement {
    const kept = bounded(entry);
    const time = typeof entry['timestamp'] === 'string' ? localTime(entry['timestamp']) : '';
    const message = typeof entry['message'] === 'string' ? visible(truncated(entry['message'], MAX_TEXT)) : '';
    const line = el(
      'div',
      { class: `tessia-log__entry ${priorityClass(entry['priorityName'])}`, tabindex: '0' },
      el('span', { class: 'tessia-log__time' }, time),
      el('span', { class: 'tessia-log__message' }, message),
    );
    const toggle = () => {
      const next = line.nextElementSibling;
      if (next?.classList.contains('tessia-log__fields')) next.remove();
      else line.after(fieldsOf(kept));
    };
    line.addEventListener('click', toggle);
    line.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') toggle();
    });
    return line;
  }

  function fieldsOf(entry: Record<string, unknown>): HTMLElement {
    const fields = typeof entry['fields'] === 'object' && entry['fields'] !== null ? (entry['fields'] as Record<string, unknown>) : {};
    const all: [string, unknown][] = [['PRIORITY', entry['priorityName']], ['SOURCE', entry['source']], ...Object.entries(fields)];
    const text = (value: unknown) => visible(truncated(typeof value === 'string' ? value : JSON.stringify(value), MAX_TEXT));
    return el(
      'table',
      { class: 'pf-c-table pf-m-compact tessia-log__fields' },
      el('tbody', {}, ...all.map(([name, value]) => el('tr', {}, el('th', {}, visible(name)), el('td', {}, text(value))))),
    );
  }

  /** The end as the runner says it: a box of its own, which no entry of the task can look like. */
  function endLine(end: Record<string, unknown>): HTMLElement {
    const exitCode = typeof end['exitCode'] === 'number' ? end['exitCode'] : null;
    const said = exitCode === null ? '' : `, exit code ${exitCode} (${exitMeaning(exitCode)})`;
    const box = alert(exitCode === 0 ? 'info' : 'danger', `The task ended: ${String(end['state'])}${said}.`);
    box.id = 'tessia-log-end';
    return box;
  }

  function append(entry: HTMLElement): void {
    const atBottom = lines.scrollHeight - lines.scrollTop - lines.clientHeight < 8;
    lines.append(entry);
    while (lines.childElementCount > MAX_ENTRIES) lines.firstElementChild?.remove();
    if (atBottom) lines.scrollTop = lines.scrollHeight;
  }

  function followLog(): void {
    const from = cursor === null ? `tail=${TAIL}` : `after=${encodeURIComponent(cursor)}`;
    log = runner.follow(
      `/v1/tasks/${taskId}/logs?follow=true&${from}`,
      (object) => {
        if (object['type'] === 'entry') {
          if (typeof object['cursor'] === 'string') cursor = object['cursor'];
          append(entryLine(object));
        } else if (object['type'] === 'end') {
          ended = true;
          append(endLine(object));
          void refresh();
        } else if (object['type'] === 'error' && typeof object['detail'] === 'string') {
          append(alert('warning', object['detail']));
        }
      },
      (error) => {
        log = null;
        if (closed || ended) return;
        if (error && !error.transient) {
          // Refused for good (no such task, not permitted): said, and not asked again.
          status.replaceChildren(alert('danger', error.message));
          return;
        }
        // Cut short (the runner restarting, the bridge gone): said, and followed again from where it was.
        status.replaceChildren(alert('warning', error ? error.message : 'The log stream ended early: following again shortly.'));
        window.clearTimeout(resumeTimer);
        resumeTimer = window.setTimeout(resume, RESUME_DELAY_MS);
      },
    );
  }

  function followEvents(): void {
    // The details follow the task's own events (its stop, its end).
    events = runner.follow(
      `/v1/events?format=ndjson&task=${taskId}`,
      (event) => {
        if (event['type'] === 'task') void refresh();
      },
      (error) => {
        events = null;
        // Followed again (a runner restart ends it) unless refused for good.
        if (!closed && (!error || error.transient)) eventsTimer = window.setTimeout(resume, RESUME_DELAY_MS);
      },
    );
  }

  function resume(): void {
    if (closed || cockpit.hidden) return;
    status.replaceChildren();
    void refresh();
    if (!log && !ended) followLog();
    if (!events) followEvents();
  }

  function pause(): void {
    log?.close();
    events?.close();
    log = null;
    events = null;
  }

  const onVisibility = () => {
    if (cockpit.hidden) pause();
    else resume();
  };

  root.replaceChildren(
    el('nav', { class: 'tessia-breadcrumb' }, back, ` / ${taskId}`),
    el('h1', { class: 'pf-c-title pf-m-2xl' }, `Task ${taskId}`),
    actions,
    status,
    details,
    el('h2', { class: 'pf-c-title pf-m-lg' }, 'Log'),
    el(
      'p',
      { class: 'tessia-note' },
      `The last ${TAIL} entries, then new ones as they come (journalctl --namespace=+tessia -u tessia-task-${taskId}: all of them).`,
    ),
    lines,
  );
  cockpit.addEventListener('visibilitychange', onVisibility);
  if (!cockpit.hidden) resume();
  return () => {
    closed = true;
    cockpit.removeEventListener('visibilitychange', onVisibility);
    window.clearTimeout(resumeTimer);
    window.clearTimeout(eventsTimer);
    pause();
  };
}
