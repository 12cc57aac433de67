/** Defaults shared by the library and the CLI (dependency-free so the CLI can show them in --help cheaply). */

/** LP TCP and UDP ports (PRODUCT §3). */
export const DEFAULT_PORTS: readonly number[] = [41264, 51264];
export const DEFAULT_IFACE = 'lo';
export const DEFAULT_WINDOW_SEC = 10;
export const DEFAULT_MAX_FLOWS = 65_536;
export const DEFAULT_MAX_FILES = 48;
export const DEFAULT_MAX_AGE_SEC = 86_400;
export const DEFAULT_WINDOWS_PER_FILE = 360;
