/**
 * Connections that came in on a Unix socket. They are told apart by the listener they came from,
 * never by a missing remote address: a TCP connection that the client has already torn down has
 * none either, and must not pass for a local one.
 */
import type { Server, Socket } from 'node:net';

const unixPeers = new WeakSet<Socket>();

/** Marks every connection `server` accepts (a Unix-socket listener, plain or TLS) as a Unix peer. */
export function acceptsUnixPeers<T extends Server>(server: T): T {
  server.on('connection', (socket: Socket) => unixPeers.add(socket));
  // The TLS socket a request sees is not the raw connection: mark it too.
  server.on('secureConnection', (socket: Socket) => unixPeers.add(socket));
  return server;
}

export function isUnixPeer(socket: Socket): boolean {
  return unixPeers.has(socket);
}
