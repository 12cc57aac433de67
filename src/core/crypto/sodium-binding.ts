/**
 * sodium-native's native binding, for the hot paths (AEAD: sodium-aead.ts; SHA-256 and HMAC: sodium-sha256.ts).
 *
 * sodium-native's exported functions are JavaScript wrappers around this binding: asserts and constant lookups
 * on the binding object (a dictionary-mode object of ~1,000 properties, so each lookup is a generic property
 * load) and a thrown Error where the binding returns a status. The binding's own checks are C `assert`s, which
 * abort the process, so each caller here checks every length the binding asserts before calling it.
 *
 * binding.js is not part of sodium-native's documented API (the package has no `exports` map, so it resolves).
 * If it is missing, or lacks a function, `bindingFunction` returns null and the callers use the public wrappers.
 */
import { createRequire } from 'node:module';

function load(): Record<string, unknown> | null {
  try {
    return createRequire(import.meta.url)('sodium-native/binding.js') as Record<string, unknown>;
  } catch {
    return null;
  }
}

const binding = load();

/** The binding's function `name` (typed by the caller, who knows its signature), or null. */
export function bindingFunction<F>(name: string): F | null {
  const f = binding?.[name];
  return typeof f === 'function' ? (f as F) : null;
}
