import { type App, openApp } from "../app.js";
import { style } from "./output.js";

export interface GlobalFlags {
  stateDir?: string;
  config?: string;
  quiet?: boolean;
}

/** Opens the app on first use, and reconciles when the last process left something behind. */
export class CliContext {
  private opened: App | undefined;

  constructor(private readonly flags: () => GlobalFlags) {}

  get quiet(): boolean {
    return this.flags().quiet === true;
  }

  async app(): Promise<App> {
    if (this.opened) return this.opened;
    const f = this.flags();
    const app = await openApp({ stateDir: f.stateDir, configFile: f.config });
    this.opened = app;
    if (app.service.needsReconcile()) {
      for (const action of await app.service.reconcile()) {
        if (!this.quiet) process.stderr.write(`${style.dim(`reconcile: ${action}`)}\n`);
      }
    }
    return app;
  }

  close(): void {
    this.opened?.close();
  }
}
