/** How a task's fields show, in the list and on its page. */
import type { Task } from './api-types.js';
import { el } from './dom.js';
import { exitMeaning } from './format.js';

const STATE_COLOURS: Record<Task['state'], string> = {
  created: 'pf-m-blue',
  running: 'pf-m-cyan',
  stopping: 'pf-m-orange',
  exited: 'pf-m-green',
  lost: 'pf-m-red',
};

export function stateLabel(task: Task): HTMLElement {
  const colour = task.state === 'exited' && task.exitCode !== 0 ? 'pf-m-red' : STATE_COLOURS[task.state];
  return el('span', { class: `pf-c-label ${colour}`, 'data-state': task.state }, el('span', { class: 'pf-c-label__content' }, task.state));
}

export function exitCell(task: Task): string {
  return task.exitCode === null ? '' : `${task.exitCode} (${exitMeaning(task.exitCode)})`;
}

/** A link to the task's unit in Cockpit's Services page (inside Cockpit's shell). */
export function unitLink(task: Task): HTMLElement {
  const link = el('a', { href: '#', class: 'tessia-unit', 'data-unit': task.unit, title: "The task's unit in Services" }, task.unit);
  link.addEventListener('click', (event) => {
    event.preventDefault();
    cockpit.jump(`/system/services#/${encodeURIComponent(task.unit)}`);
  });
  return link;
}
