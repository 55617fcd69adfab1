/**
 * Runs the pipeline for accepted hits just after their answers are written, not before. Node
 * handles every socket that became readable in one poll phase, then runs `setImmediate` work: so
 * a burst of hits is answered first and decided right after, and a browser's answer never waits
 * for consent, rendering or batching of the hits that arrived with it.
 * https://nodejs.org/en/learn/asynchronous-work/event-loop-timers-and-nexttick
 *
 * The queue only ever holds the hits of one poll phase. `drain()` processes them at once
 * (shutdown, tests).
 */
export interface DeferredProcessing<T> {
  push(item: T): void;
  drain(): void;
  readonly size: number;
}

export function createDeferredProcessing<T>(process: (item: T) => void, onError: (err: unknown, item: T) => void): DeferredProcessing<T> {
  let queue: T[] = [];
  let scheduled = false;

  function drain(): void {
    scheduled = false;
    // Swap first: hits accepted while this batch runs go to the next turn.
    const batch = queue;
    queue = [];
    for (const e of batch) {
      try {
        process(e);
      } catch (err) {
        onError(err, e);
      }
    }
  }

  return {
    push(item) {
      queue.push(item);
      if (!scheduled) {
        scheduled = true;
        setImmediate(() => {
          if (scheduled) drain();
        });
      }
    },
    drain,
    get size() {
      return queue.length;
    },
  };
}
