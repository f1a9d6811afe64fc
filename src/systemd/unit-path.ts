/** Every unit's object path starts so. */
export const UNIT_PATH_PREFIX = '/org/freedesktop/systemd1/unit/';

/** systemd's D-Bus object path of a unit: every byte outside [A-Za-z0-9] (and a leading digit) as _xx. */
export function unitObjectPath(unitName: string): string {
  let label = '';
  for (const [index, byte] of Buffer.from(unitName, 'utf8').entries()) {
    const char = String.fromCharCode(byte);
    const plain = /[A-Za-z]/.test(char) || (index > 0 && /[0-9]/.test(char));
    label += plain ? char : `_${byte.toString(16).padStart(2, '0')}`;
  }
  return UNIT_PATH_PREFIX + label;
}
