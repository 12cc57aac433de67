/**
 * `lp-gateway directory key-init` and `lp-gateway directory sign`: operator tooling for signed directory
 * documents, the trust anchor clients and entries are configured with (src/gateway/directory-document.ts,
 * DESIGN.md §7.6). The key file has the ticket issuer key's format: an Ed25519 seed, 64 hex characters, 0600.
 */
// Only what --help needs is imported statically; the rest loads in run() (a command's --help loads nothing else).
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { toHex } from '../../core/bytes.js';
import type { GatewayRecord } from '../../gateway/descriptor.js';
import { isGatewayError } from '../../gateway/errors.js';
import { type Command, UsageError } from '../command.js';

function report(cmd: string, e: unknown): number {
  if (isGatewayError(e) || (e as { code?: string }).code?.startsWith('LPC_ERR_')) {
    process.stderr.write(`lp-gateway ${cmd}: ${(e as Error).message} [${(e as { code: string }).code}]\n`);
    return 1;
  }
  throw e;
}

export const directoryKeyInitCommand: Command = {
  path: ['directory', 'key-init'],
  summary: 'create a directory signing key (Ed25519)',
  help: `Usage: lp-gateway directory key-init --out FILE

Creates a directory key: a random Ed25519 seed written to FILE (64 hex characters,
mode 0600; an existing file is never overwritten), and prints its public key —
the key clients (gateway-probe --directory-key) and entries (directory.keys) are
configured with. Keep FILE offline: whoever holds it decides which gateways are
trusted.

Options:
  --out FILE   where to write the key (required)
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
      return report('directory key-init', e);
    }
    process.stdout.write(`directory key written to ${values.out} (mode 0600)\npublic key: ${toHex(key.publicKey)}\n`);
    return 0;
  },
};

export const directorySignCommand: Command = {
  path: ['directory', 'sign'],
  summary: 'sign a directory document listing gateways (the trust anchor for clients and entries)',
  help: `Usage: lp-gateway directory sign --key FILE --version N --valid-for DURATION --out FILE
                              --gateway URL#IDENTITY | --gateway FILE ...

Builds and signs a directory document (DESIGN.md §7.6): for every --gateway, the
gateway's record (identity, LP addresses, ML-KEM key hash, roles, WireGuard key,
endpoint and tunnel addresses) taken from its signed descriptor, fetched from
URL (which must be pinned to the gateway's identity key, 64 hex after '#') or
read from FILE (a descriptor, e.g. from 'lp-gateway descriptor'). Writes FILE
(JSON); serve it with http.directory_file or from anywhere.

Clients and entries refuse a document whose version is lower than one they have
seen, and any document past its expiry: give each new document a higher version.

Options:
  --key FILE            directory key from 'lp-gateway directory key-init' (required)
  --gateway SOURCE      URL#IDENTITY or a descriptor file; repeatable (at least one)
  --version N           the document's version, a positive integer (required)
  --valid-for DURATION  lifetime from now: a number with s, m, h, d or w (required)
  --out FILE            where to write the document (required)
  -h, --help            show this help
`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: { key: { type: 'string' }, gateway: { type: 'string', multiple: true }, version: { type: 'string' }, 'valid-for': { type: 'string' }, out: { type: 'string' } },
      strict: true,
      allowPositionals: false,
    });
    for (const name of ['key', 'version', 'valid-for', 'out'] as const) if (!values[name]) throw new UsageError(`--${name} is required`);
    const sources = values.gateway ?? [];
    if (sources.length === 0) throw new UsageError('at least one --gateway is required');
    const version = /^\d+$/.test(values.version ?? '') ? Number(values.version) : NaN;
    if (!(Number.isSafeInteger(version) && version >= 1)) throw new UsageError('--version must be a positive integer');
    const [{ fetchDescriptor }, { defaultSuite }, { parsePinnedUrl }, { recordOf, verifyDescriptor }, { signDirectory }, { parseDuration, readIssuerKeyFile }] = await Promise.all([
      import('../../client/descriptor-fetch.js'),
      import('../../core/index.js'),
      import('../../gateway/directory.js'),
      import('../../gateway/descriptor.js'),
      import('../../gateway/directory-document.js'),
      import('../../gateway/registration/tickets.js'),
    ]);
    const validFor = parseDuration(values['valid-for'] ?? '');
    if (validFor === null) throw new UsageError(`--valid-for '${values['valid-for']}' is not a duration such as 7d or 12h`);
    try {
      const key = readIssuerKeyFile(values.key ?? '');
      const records: GatewayRecord[] = [];
      for (const src of sources) {
        if (/^https?:\/\//.test(src)) {
          const { url, pin } = parsePinnedUrl(src);
          if (pin === null) throw new UsageError(`--gateway ${src}: pin the gateway's identity (URL#<64 hex>), so the document lists what you meant`);
          const { descriptor } = await fetchDescriptor(url, 10_000, defaultSuite, { identity: pin });
          records.push(recordOf(descriptor));
        } else {
          records.push(recordOf(verifyDescriptor(JSON.parse(readFileSync(src, 'utf8')) as unknown, defaultSuite)));
        }
      }
      const doc = signDirectory({ key: { publicKey: key.publicKey, secretKey: key.secretKey }, version, gateways: records, validitySec: validFor }, defaultSuite);
      writeFileSync(values.out ?? '', `${JSON.stringify(doc, null, 2)}\n`);
      process.stdout.write(
        `wrote directory document version ${version} (${records.length} gateway${records.length === 1 ? '' : 's'}, valid until ${new Date(doc.expires_at * 1000).toISOString()}) to ${values.out}\n` +
          `directory key: ${doc.directory_key}\n${records.map((r) => `  ${r.identity_key}  ${r.lp.tcp}  ${r.roles.join('+')}`).join('\n')}\n`,
      );
      return 0;
    } catch (e) {
      if (e instanceof UsageError) throw e;
      if (e instanceof SyntaxError) {
        process.stderr.write(`lp-gateway directory sign: a --gateway file is not JSON: ${e.message}\n`);
        return 1;
      }
      return report('directory sign', e);
    }
  },
};
