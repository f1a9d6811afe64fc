/** Elements made from data without markup strings: text stays text (no innerHTML). */
type Child = Node | string | null | undefined | false;

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, string | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) if (value !== undefined) element.setAttribute(name, value);
  for (const child of children) if (child !== null && child !== undefined && child !== false) element.append(child);
  return element;
}

export function button(
  label: string,
  variant: 'primary' | 'secondary' | 'danger' | 'link',
  onClick: () => void,
  attributes: Record<string, string> = {},
) {
  const element = el('button', { type: 'button', class: `pf-c-button pf-m-${variant}`, ...attributes }, label);
  element.addEventListener('click', onClick);
  return element;
}

export function alert(variant: 'danger' | 'warning' | 'info', title: string, text?: string): HTMLElement {
  return el(
    'div',
    { class: `pf-c-alert pf-m-inline pf-m-${variant}`, role: 'alert' },
    el('p', { class: 'pf-c-alert__title' }, title),
    text ? el('div', { class: 'pf-c-alert__description' }, text) : null,
  );
}
