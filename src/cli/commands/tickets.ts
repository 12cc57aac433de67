/**
 * `lp-gateway tickets issuer-init` and `lp-gateway tickets issue`: operator tooling for the `ticket`
 * credential verifier (PRODUCT.md §2). File formats are described in src/gateway/registration/tickets.ts.
 */
import { parseArgs } from 'node:util';
// Only what --help needs is imported statically; the rest loads in run() (a command's --help loads nothing else).
import { toHex } from '../../core/bytes.js';
import { isGatewayError } from '../../gateway/errors.js';
import { TICKET_TYPE_NAMES, ticketTypeFromName } from '../../gateway/registration/ticket-types.js';
import { type Command, UsageError } from '../command.js';

const MAX_COUNT = 100_000;

/** Operator-file problems (existing file, bad key file) are reported as one line, exit 1. */
function reportFileError(cmd: string, e: unknown): number {
  if (isGatewayError(e)) {
    process.stderr.write(`lp-gateway ${cmd}: ${e.message} [${e.code}]\n`);
    return 1;
  }
  throw e;
}

export const ticketsIssuerInitCommand: Command = {
  path: ['tickets', 'issuer-init'],
  summary: 'create a bandwidth-ticket issuer key (Ed25519)',
  help: `Usage: lp-gateway tickets issuer-init --out FILE

Creates a new bandwidth-ticket issuer key: a random Ed25519 seed written to FILE
(64 hex characters, mode 0600; an existing file is never overwritten), and prints
the issuer's public key and key id (first 8 bytes of BLAKE3(public key)).

Gateways that run the 'ticket' credential verifier accept the tickets of the
issuer public keys they are configured with. Keep FILE offline: whoever holds it
can mint bandwidth.

Options:
  --out FILE   where to write the issuer key (required)
  -h, --help   show this help
`,
  async run(argv) {
    const { values } = parseArgs({ args: argv, options: { out: { type: 'string' } }, strict: true, allowPositionals: false });
    if (!values.out) throw new UsageError('--out FILE is required');
    const { generateIssuerKey, writeIssuerKeyFile } = await import('../../gateway/registration/tickets.js');
    const key = generateIssuerKey();
    try {
      writeIssuerKeyFile(values.out, key);
    } catch (e) {
      return reportFileError('tickets issuer-init', e);
    }
    process.stdout.write(`issuer key written to ${values.out} (mode 0600)\npublic key: ${toHex(key.publicKey)}\nkey id:     ${toHex(key.keyId)}\n`);
    return 0;
  },
};

export const ticketsIssueCommand: Command = {
  path: ['tickets', 'issue'],
  summary: 'mint signed bandwidth tickets',
  help: `Usage: lp-gateway tickets issue --issuer-key FILE --type TYPE --bandwidth SIZE
                          --valid-for DURATION --out FILE [--count N] [--append]

Mints Ed25519-signed bandwidth tickets, each with a random 16-byte serial that a
gateway accepts exactly once, and writes them to FILE (mode 0600): one ticket per
line, the base64 of its 112-byte encoding; lines starting with '#' are comments.

Options:
  --issuer-key FILE      issuer key from 'lp-gateway tickets issuer-init' (required)
  --type TYPE            ${TICKET_TYPE_NAMES.join(' | ')} (required);
                         must match the registration: wireguard-* for dVPN,
                         mixnet-* for mixnet, *-entry / *-exit by gateway role
  --bandwidth SIZE       bytes per ticket: a number of bytes or a size with a
                         unit B, kB, MB, GB, TB, KiB, MiB, GiB, TiB (e.g. 1GiB) (required)
  --valid-for DURATION   lifetime from now: a number with s, m, h, d or w
                         (e.g. 30d; a bare number is seconds) (required)
  --out FILE             ticket file to write (required); refused if it exists
                         unless --append is given
  --count N              number of tickets (default 1, at most ${MAX_COUNT})
  --append               add the tickets to an existing FILE
  -h, --help             show this help
`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        'issuer-key': { type: 'string' },
        type: { type: 'string' },
        bandwidth: { type: 'string' },
        'valid-for': { type: 'string' },
        out: { type: 'string' },
        count: { type: 'string', default: '1' },
        append: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: false,
    });
    for (const name of ['issuer-key', 'type', 'bandwidth', 'valid-for', 'out'] as const) {
      if (!values[name]) throw new UsageError(`--${name} is required`);
    }
    const { formatBytes, mintTicket, parseBandwidth, parseDuration, readIssuerKeyFile, writeTicketFile } = await import('../../gateway/registration/tickets.js');
    const ticketType = ticketTypeFromName(values.type ?? '');
    if (ticketType === null) throw new UsageError(`--type must be one of ${TICKET_TYPE_NAMES.join(', ')}`);
    const bandwidth = parseBandwidth(values.bandwidth ?? '');
    if (bandwidth === null) throw new UsageError(`--bandwidth '${values.bandwidth}' is not a size such as 1073741824 or 1GiB`);
    const validFor = parseDuration(values['valid-for'] ?? '');
    if (validFor === null) throw new UsageError(`--valid-for '${values['valid-for']}' is not a duration such as 30d or 12h`);
    const count = /^\d+$/.test(values.count) ? Number(values.count) : NaN;
    if (!(count >= 1 && count <= MAX_COUNT)) throw new UsageError(`--count must be an integer from 1 to ${MAX_COUNT}`);
    const out = values.out ?? '';
    try {
      const key = readIssuerKeyFile(values['issuer-key'] ?? '');
      const expiry = BigInt(Math.floor(Date.now() / 1000) + validFor);
      const tickets = Array.from({ length: count }, () => mintTicket(key, { ticketType, bandwidthBytes: bandwidth, expiry }));
      const until = new Date(Number(expiry) * 1000).toISOString();
      const what = `${count} ${values.type} ticket${count === 1 ? '' : 's'}, ${formatBytes(bandwidth)} each, valid until ${until}, issuer ${toHex(key.keyId)}`;
      writeTicketFile(out, tickets, { append: values.append, comment: what });
      process.stdout.write(`wrote ${what} to ${out}\n`);
    } catch (e) {
      return reportFileError('tickets issue', e);
    }
    return 0;
  },
};
