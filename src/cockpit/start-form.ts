/** Starting a task: a machine from the runner's config, its parameters as JSON; the runner's 400 shown in place. */
import type { MachineInfo, Task } from './api-types.js';
import { alert, button, el } from './dom.js';
import { RunnerError, type RunnerClient } from './runner-client.js';

export function showStartForm(root: HTMLElement, runner: RunnerClient): () => void {
  let closed = false;
  const machine = el('select', { class: 'pf-c-form-control', id: 'tessia-machine', name: 'machine' });
  const description = el('p', { class: 'pf-c-form__helper-text', id: 'tessia-machine-description' });
  const parameters = el('textarea', {
    class: 'pf-c-form-control tessia-parameters',
    id: 'tessia-parameters',
    name: 'parameters',
    rows: '8',
    spellcheck: 'false',
  });
  parameters.value = 'null';
  const problem = el('div', { class: 'pf-c-form__helper-text pf-m-error', id: 'tessia-parameters-error', 'aria-live': 'polite' });
  const status = el('div', { class: 'tessia-status' });
  let machines: MachineInfo[] = [];
  /**
   * One Idempotency-Key for a request as the form holds it: a start sent again after a timeout (the
   * runner may have started it) gives the task the first one made, not a second task.
   */
  let attempt: { request: string; key: string } | null = null;
  const keyFor = (request: string) => {
    // getRandomValues, not randomUUID: a console served over plain HTTP is no secure context.
    if (attempt?.request !== request)
      attempt = { request, key: Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('') };
    return attempt.key;
  };

  const submit = button('Start', 'primary', () => void start(), { id: 'tessia-submit' });
  const cancel = button('Cancel', 'link', () => {
    cockpit.location.go([]);
  });

  async function start(): Promise<void> {
    problem.replaceChildren();
    let body: unknown;
    try {
      body = JSON.parse(parameters.value === '' ? 'null' : parameters.value);
    } catch (error) {
      problem.replaceChildren(`Not JSON: ${error instanceof Error ? error.message : String(error)}`);
      parameters.setAttribute('aria-invalid', 'true');
      return;
    }
    submit.disabled = true;
    try {
      const request = { machine: machine.value, parameters: body };
      const task = await runner.post<Task>('/v1/tasks', request, { 'Idempotency-Key': keyFor(JSON.stringify(request)) });
      if (!closed) cockpit.location.go(['task', task.taskId]);
    } catch (error) {
      if (closed) return;
      submit.disabled = false;
      if (error instanceof RunnerError && error.status !== null && error.status < 500) {
        // The runner's own words (INVALID_PARAMETERS, UNKNOWN_MACHINE, …), under the field.
        problem.replaceChildren(error.message);
        parameters.setAttribute('aria-invalid', 'true');
      } else {
        status.replaceChildren(alert('danger', error instanceof Error ? error.message : String(error)));
      }
    }
  }

  machine.addEventListener('change', () => {
    description.textContent = machines.find((each) => each.name === machine.value)?.description ?? '';
  });
  parameters.addEventListener('input', () => {
    parameters.removeAttribute('aria-invalid');
  });
  runner.get<MachineInfo[]>('/v1/machines').then(
    (found) => {
      if (closed) return;
      machines = found;
      machine.replaceChildren(...found.map((each) => el('option', { value: each.name }, each.name)));
      machine.dispatchEvent(new Event('change'));
      root.dataset['loaded'] = 'true';
    },
    (error: unknown) => {
      if (!closed) status.replaceChildren(alert('danger', error instanceof Error ? error.message : String(error)));
    },
  );

  root.replaceChildren(
    el('h1', { class: 'pf-c-title pf-m-2xl' }, 'Start a task'),
    status,
    el(
      'form',
      { class: 'pf-c-form', id: 'tessia-start-form' },
      el(
        'div',
        { class: 'pf-c-form__group' },
        el('label', { class: 'pf-c-form__label', for: 'tessia-machine' }, 'Machine'),
        machine,
        description,
      ),
      el(
        'div',
        { class: 'pf-c-form__group' },
        el('label', { class: 'pf-c-form__label', for: 'tessia-parameters' }, 'Parameters (JSON)'),
        parameters,
        problem,
      ),
      el('div', { class: 'pf-c-form__actions' }, submit, cancel),
    ),
  );
  return () => {
    closed = true;
  };
}
