/** Types of ./dist-state.js (plain JavaScript: the binaries and the build script run it before anything is compiled). */
export function distStale(root: string): string | null;
