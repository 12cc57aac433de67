/**
 * Fetch and verify a gateway's signed descriptor from its HTTP API (`/v1/gateway`). The signature and the
 * validity window prove only that the descriptor is what its own key announces; `identity` pins the key
 * (DESIGN.md §7.6): anything else is refused with LPC_ERR_IDENTITY_MISMATCH before any LP packet is sent.
 */
import { defaultSuite, type CryptoSuite } from '../core/index.js';
import { descriptorPin, verifyDescriptor, type GatewayDescriptor } from '../gateway/descriptor.js';
import { ClientError } from './errors.js';
import type { GatewayPin } from '../core/index.js';

export function descriptorUrl(base: string): string {
  const u = base.includes('://') ? base : `http://${base}`;
  return /\/v1\/gateway\/?$/.test(u) ? u : `${u.replace(/\/$/, '')}/v1/gateway`;
}

export interface FetchDescriptorOptions {
  /** The expected identity key (64 hex, any case): the descriptor must be signed by it. */
  identity?: string;
  nowSec?: number;
}

export async function fetchDescriptor(base: string, timeoutMs = 10_000, suite: CryptoSuite = defaultSuite, o: FetchDescriptorOptions = {}): Promise<{ descriptor: GatewayDescriptor; pin: GatewayPin }> {
  const url = descriptorUrl(base);
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    throw new ClientError('LPC_ERR_DESCRIPTOR_UNREACHABLE', `cannot fetch ${url}: ${(e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message}`);
  }
  if (!res.ok) throw new ClientError('LPC_ERR_DESCRIPTOR_UNREACHABLE', `${url} answered HTTP ${res.status}`);
  let json: unknown;
  try {
    json = await res.json();
  } catch {
    throw new ClientError('LPC_ERR_DESCRIPTOR_INVALID', `${url} did not return JSON`);
  }
  let descriptor: GatewayDescriptor;
  try {
    descriptor = verifyDescriptor(json, suite, o.nowSec);
  } catch (e) {
    throw new ClientError((e as { code?: string }).code ?? 'LPC_ERR_DESCRIPTOR_INVALID', `${url}: ${(e as Error).message}`);
  }
  if (o.identity !== undefined && descriptor.identity_key !== o.identity.toLowerCase()) {
    throw new ClientError('LPC_ERR_IDENTITY_MISMATCH', `${url} is signed by ${descriptor.identity_key}, not the pinned identity ${o.identity.toLowerCase()}`);
  }
  return { descriptor, pin: descriptorPin(descriptor) };
}
