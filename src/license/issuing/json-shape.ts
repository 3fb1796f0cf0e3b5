// The subset of JSON Schema the issuing back end's routes are written in (issuing-schemas.ts), and a strict checker
// for it: the HTTP service hands the same schemas to fastify (ajv) and to OpenAPI, and the offline files (request,
// receipt) are checked by checkShape against them, so a file is accepted exactly when the route would accept its body.
import { LicenseError } from '../license-error.js';

export type Shape =
  | { readonly type: 'object'; readonly additionalProperties: false; readonly required: readonly string[]; readonly properties: Readonly<Record<string, Shape>>; readonly description?: string }
  | { readonly type: 'string'; readonly pattern?: string; readonly minLength?: number; readonly maxLength?: number; readonly enum?: readonly string[]; readonly description?: string }
  | { readonly type: 'integer' | readonly ['integer', 'null']; readonly minimum: number; readonly maximum: number; readonly description?: string }
  | { readonly type: 'number'; readonly minimum: number; readonly maximum: number; readonly description?: string }
  | { readonly type: 'boolean'; readonly description?: string }
  | { readonly type: 'array'; readonly items: Shape; readonly minItems?: number; readonly maxItems: number; readonly description?: string };

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'string') return `a string of ${value.length} characters`;
  if (typeof value === 'number') return Number.isInteger(value) ? `the number ${value}` : 'a fractional number';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** Throws LicenseError 'input' ("WHAT: expected X, got Y") unless `value` has `shape`; never quotes a string value. */
export function checkShape(shape: Shape, value: unknown, what: string): void {
  const fail = (expected: string): never => {
    throw new LicenseError('input', `${what}: expected ${expected}, got ${describe(value)}`);
  };
  switch (shape.type) {
    case 'object': {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail('an object');
      const fields = value as Record<string, unknown>;
      for (const key of shape.required) if (!Object.hasOwn(fields, key)) throw new LicenseError('input', `${what}: missing field ${key}`);
      for (const [key, field] of Object.entries(fields)) {
        const inner = Object.hasOwn(shape.properties, key) ? shape.properties[key] : undefined;
        if (inner === undefined) throw new LicenseError('input', `${what}: unknown field ${JSON.stringify(key.slice(0, 40))}`);
        checkShape(inner, field, `${what}.${key}`);
      }
      return;
    }
    case 'string':
      if (typeof value !== 'string') return fail('a string');
      if (shape.minLength !== undefined && value.length < shape.minLength) fail(`at least ${shape.minLength} characters`);
      if (shape.maxLength !== undefined && value.length > shape.maxLength) fail(`at most ${shape.maxLength} characters`);
      if (shape.pattern !== undefined && !new RegExp(shape.pattern, 'u').test(value)) fail(`a string matching ${shape.pattern}`);
      if (shape.enum !== undefined && !shape.enum.includes(value)) fail(`one of ${shape.enum.join(', ')}`);
      return;
    case 'boolean':
      if (typeof value !== 'boolean') fail('true or false');
      return;
    case 'array':
      if (!Array.isArray(value)) return fail('an array');
      if (value.length < (shape.minItems ?? 0) || value.length > shape.maxItems) fail(`${shape.minItems ?? 0}..${shape.maxItems} items`);
      value.forEach((item, index) => checkShape(shape.items, item, `${what}[${index}]`));
      return;
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value) || value < shape.minimum || value > shape.maximum) fail(`a number in ${shape.minimum}..${shape.maximum}`);
      return;
    default: {
      if (value === null && Array.isArray(shape.type)) return;
      if (typeof value !== 'number' || !Number.isInteger(value) || value < shape.minimum || value > shape.maximum) {
        fail(`a whole number in ${shape.minimum}..${shape.maximum}${Array.isArray(shape.type) ? ' or null' : ''}`);
      }
    }
  }
}
