/**
 * When to restart a server that exited on its own: a few times, then stop and say so
 * instead of restarting in a loop. Pure.
 */

export class CrashPolicy {
  private readonly times: number[] = [];

  /**
   * @param limit restarts allowed within `windowMs`
   * @param windowMs the window, in milliseconds
   */
  constructor(
    private readonly limit = 3,
    private readonly windowMs = 3 * 60 * 1000,
  ) {}

  /** The server exited: whether to start it again (at `now`, in milliseconds). */
  shouldRestart(now: number): boolean {
    while (this.times.length > 0 && now - this.times[0] > this.windowMs) {
      this.times.shift();
    }
    this.times.push(now);
    return this.times.length <= this.limit;
  }

  /** Forget past crashes (the user restarted the server by hand). */
  reset(): void {
    this.times.length = 0;
  }

  /** The message shown when restarting stops. */
  givingUpMessage(): string {
    const minutes = Math.round(this.windowMs / 60000);
    return (
      `fimls: the language server exited ${this.limit + 1} times in ${minutes} minutes and will not be ` +
      'restarted. See "fimls: Show log", then run "fimls: Restart server".'
    );
  }
}
