/**
 * Cleanups registered as resources come into existence, run once, in reverse order. A failed
 * create unwinds exactly what it had made; errors in one cleanup never stop the others.
 */
export class CleanupStack {
  private readonly steps: { name: string; fn: () => Promise<void> | void }[] = [];
  private done = false;

  push(name: string, fn: () => Promise<void> | void): void {
    if (this.done) throw new Error(`cleanup stack already ran; cannot add ${name}`);
    this.steps.push({ name, fn });
  }

  /** Forget every step: the resources now belong to someone else (a created sandbox). */
  release(): void {
    this.steps.length = 0;
  }

  /** Run every step, last first; returns the errors that occurred, labelled by step. */
  async run(): Promise<Error[]> {
    if (this.done) return [];
    this.done = true;
    const errors: Error[] = [];
    for (const step of this.steps.reverse()) {
      try {
        await step.fn();
      } catch (err) {
        errors.push(new Error(`cleanup ${step.name}: ${err instanceof Error ? err.message : String(err)}`));
      }
    }
    this.steps.length = 0;
    return errors;
  }
}
