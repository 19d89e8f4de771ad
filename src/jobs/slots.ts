// Export slots: at most `size` holders, the rest served first come, first served.

export class Slots {
  private used = 0;
  private readonly queue: Array<{ grant: () => void }> = [];

  constructor(readonly size: number) {}

  get free(): number {
    return this.size - this.used;
  }

  /** Resolves when a slot is held; rejects with the signal's reason if it aborts while waiting. */
  acquire(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.used < this.size && this.queue.length === 0) {
      this.used++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        grant: () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        const at = this.queue.indexOf(waiter);
        if (at >= 0) this.queue.splice(at, 1);
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  release(): void {
    const next = this.queue.shift();
    if (next) next.grant();
    else this.used--;
  }
}
