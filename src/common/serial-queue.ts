/**
 * Runs tasks one after another, in call order: a task starts once every earlier one has
 * settled, and a failed task does not block the next.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const run = this.tail.then(task, task);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Resolves once every task queued so far has settled. */
  async drained(): Promise<void> {
    await this.run(() => Promise.resolve());
  }
}
