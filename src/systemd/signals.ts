/**
 * What a signal that reached the runner means, and whether to believe it. Any local user may send
 * a signal to the runner's unique name (the system bus policy allows every signal), with any path,
 * interface, member and body: only the sender is set by the bus itself. So systemd's signals count
 * only from the connection that owns `org.freedesktop.systemd1` now, and `NameOwnerChanged` only
 * from the bus. Pure: the client feeds it each signal and the owner it last learnt.
 */

/** The bus itself: the sender of its own signals (dbus-daemon and dbus-broker alike). */
export const BUS_NAME = 'org.freedesktop.DBus';
export const BUS_PATH = '/org/freedesktop/DBus';
export const SYSTEMD_NAME = 'org.freedesktop.systemd1';
export const MANAGER = 'org.freedesktop.systemd1.Manager';
export const PROPERTIES = 'org.freedesktop.DBus.Properties';

export interface IncomingSignal {
  /** The sender's unique name (`:1.42`), or the bus's own name; set by the bus, never by the sender. */
  sender: string;
  path: string;
  interface: string;
  member: string;
  body: unknown[];
}

/** The signals the runner acts on; what it does not act on is `ignored`, what it refuses `forged`. */
export type SignalMeaning =
  | { kind: 'jobRemoved'; unitName: string; result: string }
  | { kind: 'propertiesChanged'; path: string; interface: string; changed: Record<string, unknown> }
  /** `owner`: the new owner of systemd's name, null while it has none. */
  | { kind: 'systemdOwnerChanged'; owner: string | null }
  | { kind: 'ignored' }
  /** Not sent by whom it claims to be: dropped, counted and logged. */
  | { kind: 'forged'; member: ForgedMember };

/** Bounded for metrics labels: the member as the signal claims it, or `other`. */
export type ForgedMember = 'JobRemoved' | 'PropertiesChanged' | 'NameOwnerChanged' | 'other';

/** `systemdOwner`: the unique name owning `org.freedesktop.systemd1` now, null when unknown or none. */
export function classifySignal(signal: IncomingSignal, systemdOwner: string | null): SignalMeaning {
  if (signal.sender === BUS_NAME) {
    // The bus also sends NameAcquired/NameLost to us, and NameOwnerChanged for other names.
    if (signal.path !== BUS_PATH || signal.interface !== BUS_NAME || signal.member !== 'NameOwnerChanged') return { kind: 'ignored' };
    const [name, , newOwner] = signal.body;
    if (name !== SYSTEMD_NAME || typeof newOwner !== 'string') return { kind: 'ignored' };
    return { kind: 'systemdOwnerChanged', owner: newOwner === '' ? null : newOwner };
  }
  if (systemdOwner === null || signal.sender !== systemdOwner) return { kind: 'forged', member: forgedMember(signal.member) };
  if (signal.interface === MANAGER && signal.member === 'JobRemoved') {
    const [, , unitName, result] = signal.body;
    if (typeof unitName !== 'string' || typeof result !== 'string') return { kind: 'ignored' };
    return { kind: 'jobRemoved', unitName, result };
  }
  if (signal.interface === PROPERTIES && signal.member === 'PropertiesChanged') {
    const [iface, changed] = signal.body;
    if (typeof iface !== 'string' || typeof changed !== 'object' || changed === null) return { kind: 'ignored' };
    return { kind: 'propertiesChanged', path: signal.path, interface: iface, changed: changed as Record<string, unknown> };
  }
  return { kind: 'ignored' };
}

export function forgedMember(member: string): ForgedMember {
  return member === 'JobRemoved' || member === 'PropertiesChanged' || member === 'NameOwnerChanged' ? member : 'other';
}
