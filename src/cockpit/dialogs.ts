/**
 * Cockpit's confirmation: a PatternFly modal at the top, the action first (danger for what cannot be
 * undone), then Cancel as a link; Escape cancels. The action runs inside it: a failure stays shown in
 * the dialog, which closes once the action has succeeded.
 */
import { alert, button, el } from './dom.js';

export interface Confirmation {
  title: string;
  body: string;
  action: string;
  danger: boolean;
  run: () => Promise<unknown>;
}

/** Resolves true once `run` succeeded, false when cancelled. */
export function confirmAction(confirmation: Confirmation): Promise<boolean> {
  return new Promise((resolve) => {
    const error = el('div', { class: 'tessia-dialog__error' });
    const close = (done: boolean) => {
      document.removeEventListener('keydown', onKey);
      backdrop.remove();
      resolve(done);
    };
    const onKey = (event: KeyboardEvent) => {
      // Not while the action runs: its outcome is shown here.
      if (event.key === 'Escape' && !act.disabled) close(false);
    };
    const act = button(confirmation.action, confirmation.danger ? 'danger' : 'primary', () => {
      act.disabled = true;
      cancel.disabled = true;
      error.replaceChildren();
      confirmation.run().then(
        () => {
          close(true);
        },
        (failure: unknown) => {
          act.disabled = false;
          cancel.disabled = false;
          error.replaceChildren(alert('danger', failure instanceof Error ? failure.message : String(failure)));
        },
      );
    });
    const cancel = button('Cancel', 'link', () => {
      close(false);
    });
    const backdrop = el(
      'div',
      { class: 'pf-c-backdrop' },
      el(
        'div',
        { class: 'pf-l-bullseye' },
        el(
          'div',
          {
            class: 'pf-c-modal-box pf-m-sm pf-m-align-top',
            role: 'dialog',
            'aria-modal': 'true',
            'aria-labelledby': 'tessia-dialog-title',
          },
          el(
            'header',
            { class: 'pf-c-modal-box__header' },
            el('h1', { class: 'pf-c-modal-box__title', id: 'tessia-dialog-title' }, confirmation.title),
          ),
          el('div', { class: 'pf-c-modal-box__body' }, confirmation.body, error),
          el('footer', { class: 'pf-c-modal-box__footer' }, act, cancel),
        ),
      ),
    );
    document.addEventListener('keydown', onKey);
    document.body.append(backdrop);
    // A key held or pressed twice must not confirm what cannot be undone.
    (confirmation.danger ? cancel : act).focus();
  });
}
