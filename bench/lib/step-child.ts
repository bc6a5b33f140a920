import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';

/*
 * A child process that takes one timed step per `step` line on its stdin, so a
 * parent can alternate steps between children (tfjs and PyTorch) and both see
 * the same machine load. The child prints `READY <json>` once set up, then
 * `STEP <ms>` per step; `ERROR <message>` ends whatever was asked. Only one
 * request is in flight at a time.
 */

/** What a child says when it is ready: its own description (parameter counts, versions). */
export type ReadyInfo = Record<string, unknown>;

const TAIL_LINES = 5;

export class StepChild {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly output: string[] = [];
  private pending?: { resolve: (line: string) => void; reject: (error: Error) => void; timer: NodeJS.Timeout };
  private exited?: string;

  private constructor(
    readonly label: string,
    command: string,
    args: string[],
    env: NodeJS.ProcessEnv,
  ) {
    this.child = spawn(command, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    createInterface({ input: this.child.stdout }).on('line', (line) => this.onLine(line));
    createInterface({ input: this.child.stderr }).on('line', (line) => this.remember(line));
    this.child.on('error', (error) => this.onExit(`could not start: ${error.message}`));
    this.child.on('exit', (code, signal) => this.onExit(signal ? `killed by ${signal}` : `exited with ${code}`));
  }

  /** Starts the child and waits for its READY line (rejects with its last output if it dies or overstays `timeoutMs`). */
  static async start(label: string, command: string, args: string[], timeoutMs: number, env = process.env): Promise<{ child: StepChild; ready: ReadyInfo }> {
    const child = new StepChild(label, command, args, env);
    try {
      const line = await child.expect('READY', timeoutMs);
      return { child, ready: JSON.parse(line) as ReadyInfo };
    } catch (error) {
      child.stop();
      throw error;
    }
  }

  /** One step: its wall time in milliseconds, as the child measured it. */
  async step(timeoutMs: number): Promise<number> {
    const reply = this.expect('STEP', timeoutMs);
    this.child.stdin.write('step\n');
    return Number(await reply);
  }

  /** Ends the child (by its PID): closing stdin lets it exit on its own, the kill makes sure. */
  stop(): void {
    this.child.stdin.end();
    if (this.exited === undefined) this.child.kill('SIGKILL');
  }

  private expect(keyword: 'READY' | 'STEP', timeoutMs: number): Promise<string> {
    if (this.exited !== undefined) return Promise.reject(this.failure(this.exited));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending = undefined;
        this.child.kill('SIGKILL');
        reject(this.failure(`no ${keyword} within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      this.pending = {
        timer,
        reject,
        resolve: (line) => {
          if (line.startsWith(`${keyword} `)) resolve(line.slice(keyword.length + 1));
          else reject(this.failure(line));
        },
      };
    });
  }

  private onLine(line: string): void {
    const pending = this.pending;
    if (pending && /^(READY|STEP|ERROR) /.test(line)) {
      clearTimeout(pending.timer);
      this.pending = undefined;
      pending.resolve(line);
    } else {
      this.remember(line);
    }
  }

  private onExit(why: string): void {
    this.exited ??= why;
    const pending = this.pending;
    if (pending) {
      clearTimeout(pending.timer);
      this.pending = undefined;
      pending.reject(this.failure(why));
    }
  }

  private remember(line: string): void {
    if (line.trim() === '') return;
    this.output.push(line.trim());
    if (this.output.length > TAIL_LINES) this.output.shift();
  }

  private failure(why: string): Error {
    const tail = this.output.length > 0 ? ` | ${this.output.join(' | ')}` : '';
    return new Error(`${this.label}: ${why}${tail}`);
  }
}
