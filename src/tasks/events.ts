/**
 * Task events for subscribers: those the store keeps (to resume from an id) and the live ones, as
 * transitions write them. However many subscribe, an event is written once and read from memory:
 * no journal reader and no D-Bus call per subscriber.
 */
import type { TaskEvent } from './model.js';
import type { EventFilter, TaskStore } from './store.js';
import type { TaskTransitions } from './transitions.js';

export class TaskEvents {
  constructor(
    private readonly store: TaskStore,
    private readonly transitions: TaskTransitions,
  ) {}

  /** Kept events after `after` (0: from the oldest kept), oldest first. */
  after(after: number, limit: number, filter?: EventFilter): TaskEvent[] {
    return this.store.eventsAfter(after, limit, filter);
  }

  /** The newest event's id (0: none yet): where a subscriber that wants only new events starts. */
  lastId(): number {
    return this.store.lastEventId();
  }

  /**
   * Calls `listener` with each event from now on, synchronously after it is written (so a
   * subscriber that read the kept events and subscribes in the same step misses none); returns
   * the unsubscribe.
   */
  subscribe(listener: (event: TaskEvent) => void): () => void {
    this.transitions.on('event', listener);
    return () => {
      this.transitions.off('event', listener);
    };
  }

  /** Subscribers now (metrics). */
  subscribers(): number {
    return this.transitions.listenerCount('event');
  }
}
