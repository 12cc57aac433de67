/**
 * Coded errors of the eBPF collector (fastify FST_ERR_* style, like LpError in src/core/errors.ts).
 * Safety-check rejections carry every violation found, each with its own code, so an operator sees all
 * reasons at once; `code` is the most severe one.
 */

export const CollectorErrorCode = {
  // static safety check of the object (src/collector/safety-check.ts)
  MALFORMED_OBJECT: 'LPGW_BPF_ERR_MALFORMED_OBJECT',
  NO_PROGRAM: 'LPGW_BPF_ERR_NO_PROGRAM',
  PROGRAM_TYPE: 'LPGW_BPF_ERR_PROGRAM_TYPE',
  DROP_VERDICT: 'LPGW_BPF_ERR_DROP_VERDICT',
  PACKET_WRITE: 'LPGW_BPF_ERR_PACKET_WRITE',
  CONTEXT_WRITE: 'LPGW_BPF_ERR_CONTEXT_WRITE',
  HELPER_NOT_ALLOWED: 'LPGW_BPF_ERR_HELPER_NOT_ALLOWED',
  CALL_NOT_ALLOWED: 'LPGW_BPF_ERR_CALL_NOT_ALLOWED',
  MAP_TYPE: 'LPGW_BPF_ERR_MAP_TYPE',
  STRICT_OUTPUT: 'LPGW_BPF_ERR_STRICT_OUTPUT',
  PACKET_POINTER: 'LPGW_BPF_ERR_PACKET_POINTER',
  MAP_DEFINITION: 'LPGW_BPF_ERR_MAP_DEFINITION',
  RELOCATION: 'LPGW_BPF_ERR_RELOCATION',
  // loading, attaching, reading
  UNAVAILABLE: 'LPGW_BPF_ERR_UNAVAILABLE',
  NOT_PERMITTED: 'LPGW_BPF_ERR_NOT_PERMITTED',
  SYSCALL: 'LPGW_BPF_ERR_SYSCALL',
  VERIFIER: 'LPGW_BPF_ERR_VERIFIER',
  LAYOUT: 'LPGW_BPF_ERR_LAYOUT',
  NO_SUCH_IFACE: 'LPGW_BPF_ERR_NO_SUCH_IFACE',
  ATTACH: 'LPGW_BPF_ERR_ATTACH',
  NETLINK: 'LPGW_BPF_ERR_NETLINK',
  STATE: 'LPGW_BPF_ERR_STATE',
} as const;

export type CollectorErrorCode = (typeof CollectorErrorCode)[keyof typeof CollectorErrorCode];

export class CollectorError extends Error {
  readonly code: CollectorErrorCode;
  /** errno of the failing system call, when there is one. */
  readonly errno: number | undefined;
  constructor(code: CollectorErrorCode, message: string, errno?: number) {
    super(message);
    this.name = 'CollectorError';
    this.code = code;
    this.errno = errno;
  }
}

export interface SafetyViolation {
  readonly code: CollectorErrorCode;
  readonly message: string;
  /** Program (function symbol) name, when the violation is inside a program. */
  readonly program?: string;
  /** Instruction index inside that program. */
  readonly insn?: number;
}

/** Order in which violations decide the error's primary `code` (most severe first). */
const SEVERITY: readonly CollectorErrorCode[] = [
  CollectorErrorCode.MALFORMED_OBJECT,
  CollectorErrorCode.DROP_VERDICT,
  CollectorErrorCode.PACKET_WRITE,
  CollectorErrorCode.CONTEXT_WRITE,
  CollectorErrorCode.HELPER_NOT_ALLOWED,
  CollectorErrorCode.CALL_NOT_ALLOWED,
  CollectorErrorCode.MAP_TYPE,
  CollectorErrorCode.STRICT_OUTPUT,
  CollectorErrorCode.PACKET_POINTER,
  CollectorErrorCode.PROGRAM_TYPE,
  CollectorErrorCode.MAP_DEFINITION,
  CollectorErrorCode.RELOCATION,
  CollectorErrorCode.NO_PROGRAM,
];

function rank(code: CollectorErrorCode): number {
  const i = SEVERITY.indexOf(code);
  return i < 0 ? SEVERITY.length : i;
}

export class SafetyCheckError extends CollectorError {
  readonly violations: readonly SafetyViolation[];
  constructor(violations: readonly SafetyViolation[]) {
    const sorted = [...violations].sort((a, b) => rank(a.code) - rank(b.code));
    const first = sorted[0];
    if (!first) throw new TypeError('SafetyCheckError needs at least one violation');
    const where = (v: SafetyViolation): string => (v.program ? ` [${v.program}${v.insn !== undefined ? ` insn ${v.insn}` : ''}]` : '');
    super(first.code, `BPF object rejected by the safety check: ${sorted.map((v) => `${v.code}: ${v.message}${where(v)}`).join('; ')}`);
    this.name = 'SafetyCheckError';
    this.violations = sorted;
  }
  /** The distinct codes of all violations, most severe first. */
  get codes(): CollectorErrorCode[] {
    return [...new Set(this.violations.map((v) => v.code))];
  }
}
