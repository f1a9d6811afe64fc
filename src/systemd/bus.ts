/**
 * The system bus connection: method calls with explicit signatures (no introspection round trips)
 * and signal matches. The only file that imports the D-Bus library.
 */
import { EventEmitter } from 'node:events';
import { DBusError, Message, MessageBus, MessageType, Variant, systemBus } from '@jellybrick/dbus-next';

export { Variant };

export interface MethodCall {
  destination: string;
  path: string;
  interface: string;
  member: string;
  signature?: string;
  body?: unknown[];
}

export interface BusSignal {
  path: string;
  interface: string;
  member: string;
  body: unknown[];
}

export class BusCallError extends Error {
  constructor(
    readonly dbusName: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'BusCallError';
  }
}

export class SystemBus extends EventEmitter<{ signal: [BusSignal]; disconnect: [Error] }> {
  private constructor(private readonly bus: MessageBus) {
    super();
    bus.on('message', (message) => {
      if (message.type !== MessageType.SIGNAL) return;
      this.emit('signal', {
        path: message.path ?? '',
        interface: message.interface ?? '',
        member: message.member ?? '',
        body: message.body as unknown[],
      });
    });
    (bus as unknown as EventEmitter).on('error', (error: Error) => this.emit('disconnect', error));
  }

  /** Connects to `$DBUS_SYSTEM_BUS_ADDRESS` (default unix:path=/run/dbus/system_bus_socket). */
  static async connect(): Promise<SystemBus> {
    const bus = systemBus();
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      (bus as unknown as EventEmitter).once('error', onError);
      bus.once('connect', () => {
        (bus as unknown as EventEmitter).off('error', onError);
        resolve();
      });
    });
    return new SystemBus(bus);
  }

  async call(call: MethodCall): Promise<unknown[]> {
    const message = new Message({
      destination: call.destination,
      path: call.path,
      interface: call.interface,
      member: call.member,
      signature: call.signature ?? '',
      body: call.body ?? [],
    });
    try {
      const reply = await this.bus.call(message);
      return (reply?.body as unknown[] | undefined) ?? [];
    } catch (error) {
      if (error instanceof DBusError) throw new BusCallError(error.type, error.text ?? String(error.type));
      throw error;
    }
  }

  async addMatch(rule: string): Promise<void> {
    await this.call({
      destination: 'org.freedesktop.DBus',
      path: '/org/freedesktop/DBus',
      interface: 'org.freedesktop.DBus',
      member: 'AddMatch',
      signature: 's',
      body: [rule],
    });
  }

  close(): void {
    this.bus.disconnect();
  }
}
