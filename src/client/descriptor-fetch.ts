/** Fetch and verify a gateway's signed descriptor from its HTTP API (`/v1/gateway`). */
import { defaultSuite, type CryptoSuite } from '../core/index.js';
import { descriptorPin, verifyDescriptor, type GatewayDescriptor } from '../gateway/descriptor.js';
import { ClientError } from './errors.js';
import type { GatewayPin } from '../core/index.js';

export function descriptorUrl(base: string): string {
  const u = base.includes('://') ? base : `http://${base}`;
  return /\/v1\/gateway\/?$/.test(u) ? u : `${u.replace(/\/$/, '')}/v1/gateway`;
}

export async function fetchDescriptor(base: string, timeoutMs = 10_000, suite: CryptoSuite = defaultSuite): Promise<{ descriptor: GatewayDescriptor; pin: GatewayPin }> {
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
  try {
    const descriptor = verifyDescriptor(json, suite);
    return { descriptor, pin: descriptorPin(descriptor) };
  } catch (e) {
    throw new ClientError((e as { code?: string }).code ?? 'LPC_ERR_DESCRIPTOR_INVALID', `${url}: ${(e as Error).message}`);
  }
}
