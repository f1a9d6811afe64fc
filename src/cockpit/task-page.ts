/**
 * One task: its details, and its log followed live (coloured by priority, an entry's fields on a
 * click), ending with the task's final state; stop (then kill) and delete.
 */
import { isFinished, type Task } from './api-types.js';
import { confirmDelete, confirmStop } from './actions.js';
import { alert, button, el } from './dom.js';
import { bytes, cpuTime, duration, exitMeaning, localTime, priorityClass } from './format.js';
import type { RunnerClient, Stream } from './runner-client.js';
import { exitCell, stateLabel, unitLink } from './task-cells.js';

export function showTaskPage(root: HTMLElement, runner: RunnerClient, taskId: string): () => void {
  let closed = false;
  let log: Stream | null = null;
  let events: Stream | null = null;
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
      ['Memory, peak', bytes(usage?.memoryPeakBytes ?? null)],
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
    if (!isFinished(task))
      actions.append(
        button(task.stopRequested ? 'Kill' : 'Stop', 'secondary', () => void confirmStop(runner, task).then(refresh), {
          'data-action': 'stop',
        }),
      );
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

  function entryLine(entry: Record<string, unknown>): HTMLElement {
    const time = typeof entry['timestamp'] === 'string' ? localTime(entry['timestamp']) : '';
    const line = el(
      'div',
      { class: `tessia-log__entry ${priorityClass(entry['priority'])}`, tabindex: '0', 'data-priority': String(entry['priority']) },
      el('span', { class: 'tessia-log__time' }, time),
      el('span', { class: 'tessia-log__message' }, typeof entry['message'] === 'string' ? entry['message'] : ''),
    );
    const toggle = () => {
      const next = line.nextElementSibling;
      if (next?.classList.contains('tessia-log__fields')) next.remove();
      else line.after(fieldsOf(entry));
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
    return el(
      'table',
      { class: 'pf-c-table pf-m-compact tessia-log__fields' },
      el(
        'tbody',
        {},
        ...all.map(([name, value]) =>
          el('tr', {}, el('th', {}, name), el('td', {}, typeof value === 'string' ? value : JSON.stringify(value))),
        ),
      ),
    );
  }

  function endLine(end: Record<string, unknown>): HTMLElement {
    const exitCode = typeof end['exitCode'] === 'number' ? end['exitCode'] : null;
    const said = exitCode === null ? '' : `, exit code ${exitCode} (${exitMeaning(exitCode)})`;
    return el('div', { class: 'tessia-log__end', id: 'tessia-log-end' }, `The task ended: ${String(end['state'])}${said}.`);
  }

  function followLog(): void {
    log = runner.follow(
      `/v1/tasks/${taskId}/logs?follow=true`,
      (object) => {
        if (object['type'] === 'entry') {
          const atBottom = lines.scrollHeight - lines.scrollTop - lines.clientHeight < 8;
          lines.append(entryLine(object));
          if (atBottom) lines.scrollTop = lines.scrollHeight;
        } else if (object['type'] === 'end') {
          lines.append(endLine(object));
          void refresh();
        } else if (object['type'] === 'error' && typeof object['detail'] === 'string') {
          lines.append(alert('warning', object['detail']));
        }
      },
      (error) => {
        if (error) status.replaceChildren(alert('danger', error.message));
      },
    );
  }

  root.replaceChildren(
    el('nav', { class: 'tessia-breadcrumb' }, back, ` / ${taskId}`),
    el('h1', { class: 'pf-c-title pf-m-2xl' }, `Task ${taskId}`),
    actions,
    status,
    details,
    el('h2', { class: 'pf-c-title pf-m-lg' }, 'Log'),
    lines,
  );
  void refresh().then(() => {
    if (closed) return;
    followLog();
    // The details follow the task's own events (its stop, its end).
    events = runner.follow(
      `/v1/events?format=ndjson&task=${taskId}`,
      () => void refresh(),
      () => undefined,
    );
  });
  return () => {
    closed = true;
    log?.close();
    events?.close();
  };
}
