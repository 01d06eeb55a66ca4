// Progress bars for long commands (key derivation, restore), redrawn in place on stderr. Callers
// draw them on a terminal only, so JSON on stdout stays clean for scripts.
import type { CommandIo } from "./io.ts";

/** Width of a progress bar, in characters. */
const BAR_WIDTH = 30;

/** Draws `label [####    ] 40%` (and `done/total unit` when a unit is given); a new line at the end. */
export function progressBar(
  io: CommandIo,
  label: string,
  unit?: string,
): (done: number, total: number) => void {
  return (done, total) => {
    const fraction = total === 0 ? 1 : Math.min(1, done / total);
    const filled = Math.round(fraction * BAR_WIDTH);
    const count = unit === undefined ? "" : ` ${done}/${total} ${unit}`;
    io.err(
      `\r${label} [${"#".repeat(filled)}${" ".repeat(BAR_WIDTH - filled)}] ${Math.floor(fraction * 100)}%${count}`,
    );
    if (fraction >= 1) io.err("\n");
  };
}

/** The same bar for a callback that reports a fraction from 0 to 1. */
export function fractionBar(io: CommandIo, label: string): (fraction: number) => void {
  const draw = progressBar(io, label);
  return (fraction) => draw(fraction, 1);
}
