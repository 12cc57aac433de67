/** Product version, reported by --version and in the signed descriptor. */
export const version = '0.1.0';
