/**
 * One pool's changes (scale, kill, close), one at a time and in order: every platform's pool runs
 * its changes through this, so a scale never races another. A change that fails does not stop the
 * ones queued after it; its caller gets the error.
 */
export class Serial {
  private chain: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn, fn);
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** Settles when every change queued so far has. */
  idle(): Promise<void> {
    return this.chain.then(() => undefined);
  }
}
