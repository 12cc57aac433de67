/** How the program is attached (see attach.ts). Dependency-free so the CLI can validate flags cheaply. */
export const AttachMode = { AUTO: 'auto', TCX: 'tcx', CLSACT: 'clsact' } as const;
export type AttachMode = (typeof AttachMode)[keyof typeof AttachMode];
