/**
 * The task list: the newest first, a page at a time, filtered by the API (state, machine), updated
 * live from the runner's events; each row links to its task's page and its unit's page.
 */
import { isFinished, TASK_ID, TASK_STATES, type MachineInfo, type Task } from './api-types.js';
import { confirmDelete, confirmStop, stopLabel } from './actions.js';
import { alert, button, el } from './dom.js';
import { bytes, cpuTime, duration, localTime } from './format.js';
import { RunnerError, type RunnerClient, type Stream } from './runner-client.js';
import { exitCell, stateLabel, unitLink } from './task-cells.js';

const PAGE_SIZE = 20;
/** Events come in bursts (created, running, exited): one read of the page for each burst. */
const REFRESH_DELAY_MS = 250;
const RECONNECT_DELAY_MS = 5000;

export function showTaskList(root: HTMLElement, runner: RunnerClient): () => void {
  const filters = { state: '', machine: '' };
  /** The path of each page shown so far: the first, then each "Older" one. */
  let pages: string[] = [];
  let next: string | null = null;
  let events: Stream | null = null;
  let refreshTimer: number | undefined;
  let reconnectTimer: number | undefined;
  let closed = false;

  const status = el('div', { class: 'tessia-status', 'aria-live': 'polite' });
  const body = el('tbody', { role: 'rowgroup' });
  const pageInfo = el('span', { class: 'pf-c-pagination__total-items' });
  const newer = button('Newer', 'secondary', () => {
    pages = pages.slice(0, -1);
    void load();
  });
  const older = button('Older', 'secondary', () => {
    if (next === null) return;
    pages = [...pages, next];
    void load();
  });
  const stateFilter = el(
    'select',
    { class: 'pf-c-form-control', 'aria-label': 'State', id: 'tessia-state-filter' },
    el('option', { value: '' }, 'All states'),
  );
  for (const state of TASK_STATES) stateFilter.append(el('option', { value: state }, state));
  const machineFilter = el(
    'select',
    { class: 'pf-c-form-control', 'aria-label': 'Machine', id: 'tessia-machine-filter' },
    el('option', { value: '' }, 'All machines'),
  );
  for (const [select, key] of [
    [stateFilter, 'state'],
    [machineFilter, 'machine'],
  ] as const) {
    select.addEventListener('change', () => {
      filters[key] = select.value;
      pages = [];
      void load();
    });
  }

  const firstPage = () => {
    const query = new URLSearchParams({ view: 'full', order: 'newest', limit: String(PAGE_SIZE) });
    if (filters.state) query.set('state', filters.state);
    if (filters.machine) query.set('machine', filters.machine);
    return `/v1/tasks?${query.toString()}`;
  };

  async function load(): Promise<void> {
    const path = pages.at(-1) ?? firstPage();
    try {
      const page = await runner.getPage<Task>(path);
      if (closed) return;
      next = page.next;
      // A row is made only of a task whose id is one: it goes into paths and links.
      body.replaceChildren(...page.items.filter((task) => TASK_ID.test(task.taskId)).map(row));
      if (page.items.length === 0) body.append(el('tr', {}, el('td', { colspan: '10', class: 'tessia-empty' }, 'No tasks.')));
      pageInfo.textContent = `Page ${pages.length + 1}`;
      newer.disabled = pages.length === 0;
      older.disabled = next === null;
      status.replaceChildren();
      root.dataset['loaded'] = 'true';
    } catch (error) {
      if (closed) return;
      showError(error);
    }
  }

  function showError(error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    const retry = button('Try again', 'link', () => {
      void load().then(follow);
    });
    status.replaceChildren(
      alert(
        'danger',
        error instanceof RunnerError && error.unreachable ? 'The task runner is not reachable' : 'The task runner refused',
        message,
      ),
      retry,
    );
    root.dataset['loaded'] = 'error';
  }

  function row(task: Task): HTMLElement {
    const link = el('a', { href: `#/task/${task.taskId}`, class: 'tessia-task-link' }, task.taskId);
    link.addEventListener('click', (event) => {
      event.preventDefault();
      cockpit.location.go(['task', task.taskId]);
    });
    const actions = el('td', { class: 'pf-c-table__action' });
    if (!isFinished(task))
      actions.append(
        button(stopLabel(task), 'secondary', () => void confirmStop(runner, task).then(scheduleRefresh), {
          'data-action': 'stop',
        }),
      );
    actions.append(button('Delete', 'link', () => void confirmDelete(runner, task).then(scheduleRefresh), { 'data-action': 'delete' }));
    return el(
      'tr',
      { 'data-task': task.taskId, role: 'row' },
      el('td', { 'data-label': 'Task' }, link),
      el('td', { 'data-label': 'Machine' }, task.machine),
      el('td', { 'data-label': 'State' }, stateLabel(task)),
      el('td', { 'data-label': 'Exit code' }, exitCell(task)),
      el('td', { 'data-label': 'Started' }, localTime(task.startedAt)),
      el('td', { 'data-label': 'Finished' }, localTime(task.finishedAt)),
      el('td', { 'data-label': 'Duration' }, duration(task.startedAt, task.finishedAt)),
      el(
        'td',
        { 'data-label': 'CPU / peak memory' },
        [cpuTime(task.usage?.cpuNsec ?? null), bytes(task.usage?.memoryPeakBytes ?? null)].filter(Boolean).join(' / '),
      ),
      el('td', { 'data-label': 'Unit' }, unitLink(task)),
      actions,
    );
  }

  function scheduleRefresh(): void {
    if (closed || refreshTimer !== undefined) return;
    refreshTimer = window.setTimeout(() => {
      refreshTimer = undefined;
      void load();
    }, REFRESH_DELAY_MS);
  }

  /** The runner's events (only new ones): any task's change reads the page shown again. */
  function follow(): void {
    if (closed || cockpit.hidden) return;
    events?.close();
    events = runner.follow(
      '/v1/events?format=ndjson',
      (event) => {
        if (event['type'] === 'task') scheduleRefresh();
      },
      (error) => {
        // Ended (the runner restarting, the bridge gone): the page is read again when it is back.
        events = null;
        if (error && !error.transient) return;
        if (!closed && !cockpit.hidden) reconnectTimer = window.setTimeout(() => void load().then(follow), RECONNECT_DELAY_MS);
      },
    );
  }

  runner.get<MachineInfo[]>('/v1/machines').then(
    (machines) => {
      for (const machine of machines) machineFilter.append(el('option', { value: machine.name }, machine.name));
    },
    () => undefined,
  );
  const start = button(
    'Start task',
    'primary',
    () => {
      cockpit.location.go(['start']);
    },
    { id: 'tessia-start' },
  );
  root.replaceChildren(
    el('h1', { class: 'pf-c-title pf-m-2xl' }, 'Tasks'),
    el(
      'div',
      { class: 'pf-c-toolbar' },
      el(
        'div',
        { class: 'pf-c-toolbar__content tessia-toolbar' },
        start,
        stateFilter,
        machineFilter,
        el('span', { class: 'tessia-spacer' }),
        pageInfo,
        newer,
        older,
      ),
    ),
    status,
    el(
      'table',
      { class: 'pf-c-table pf-m-compact pf-m-grid-md', role: 'grid', 'aria-label': 'Tasks', id: 'tessia-tasks' },
      el(
        'thead',
        {},
        el(
          'tr',
          { role: 'row' },
          ...['Task', 'Machine', 'State', 'Exit code', 'Started', 'Finished', 'Duration', 'CPU / peak memory', 'Unit', ''].map((name) =>
            el('th', { role: 'columnheader', scope: 'col' }, name),
          ),
        ),
      ),
      body,
    ),
  );
  // Hidden (another page of Cockpit shown), the list holds no stream; shown again, it reads the page again.
  const onVisibility = () => {
    if (cockpit.hidden) {
      window.clearTimeout(reconnectTimer);
      events?.close();
      events = null;
    } else if (!events) {
      void load().then(follow);
    }
  };
  cockpit.addEventListener('visibilitychange', onVisibility);
  void load().then(follow);
  return () => {
    closed = true;
    cockpit.removeEventListener('visibilitychange', onVisibility);
    events?.close();
    window.clearTimeout(refreshTimer);
    window.clearTimeout(reconnectTimer);
  };
}
