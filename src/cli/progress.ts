import { SingleBar } from "cli-progress";
import type { CliStream } from "./cli-io";

/** A progress display that is a no-op unless its stream is a terminal. */
export interface Progress {
  start(total: number, payload?: Record<string, string | number>): void;
  update(value: number, payload?: Record<string, string | number>): void;
  setTotal(total: number): void;
  stop(): void;
}

const NONE: Progress = { start() {}, update() {}, setTotal() {}, stop() {} };

/**
 * A cli-progress bar on `stream` (stderr) when it is a TTY, so stdout stays a clean summary that
 * scripts can read; nothing at all when stderr is a file or a pipe (cron, CI logs).
 *
 * @example
 * const bar = progressBar(io.stderr, "rotate-keys {bar} {value}/{total} entries | {eta_formatted} left");
 * bar.start(total); bar.update(done); bar.stop();
 */
export function progressBar(stream: CliStream, format: string): Progress {
  if (!stream.isTTY) return NONE;
  const bar = new SingleBar({
    // cli-progress only calls write() and reads isTTY/columns, which a CliStream has.
    stream: stream as NodeJS.WritableStream,
    format,
    hideCursor: true,
    clearOnComplete: false,
    etaBuffer: 50,
    barsize: 30,
  });
  return {
    start: (total, payload) => bar.start(total, 0, payload),
    update: (value, payload) => bar.update(value, payload),
    setTotal: (total) => bar.setTotal(total),
    stop: () => bar.stop(),
  };
}
