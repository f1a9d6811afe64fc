/** The Tasks page: the list (#/), a task (#/task/ID), the start form (#/start), as Cockpit's location says. */
import { TASK_ID } from './api-types.js';
import { RunnerClient } from './runner-client.js';
import { showStartForm } from './start-form.js';
import { showTaskList } from './task-list.js';
import { showTaskPage } from './task-page.js';

const app = document.getElementById('app');
if (!app) throw new Error('the page has no #app');
const root: HTMLElement = app;
const runner = new RunnerClient();
let leave: () => void = () => undefined;

function route(): void {
  leave();
  delete root.dataset['loaded'];
  const [view, id] = cockpit.location.path;
  if (view === 'task' && id !== undefined && TASK_ID.test(id)) leave = showTaskPage(root, runner, id);
  else if (view === 'start') leave = showStartForm(root, runner);
  else leave = showTaskList(root, runner);
}

cockpit.addEventListener('locationchanged', route);
route();
