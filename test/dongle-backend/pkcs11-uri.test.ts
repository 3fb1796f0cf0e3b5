// The PKCS#11 URI of RFC 7512 that names a dongle token (patent 004 claim 10; DESIGN.md "Dongle-backed card"):
// valid URIs modelled on the examples of RFC 7512 §3.3, percent-encoding both ways, every refusal with its
// DongleError 'uri' (exit 2) and a message that quotes no value, and a fuzz that the parser only ever returns a
// URI or throws that error.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { fromHex } from '../../src/bytes/index.js';
import { DongleError } from '../../src/dongle-backend/dongle.js';
import { resolveModulePath } from '../../src/dongle-backend/pkcs11-module.js';
import { formatPkcs11Uri, parseDongleUri, parsePkcs11Uri, type Pkcs11Uri } from '../../src/dongle-backend/pkcs11-uri.js';

const SOFTHSM = '/usr/lib/softhsm/libsofthsm2.so';

/** The error `body` throws; fails the test when it throws none. */
function refusal(body: () => unknown): DongleError {
  try {
    body();
  } catch (error) {
    expect(error).toBeInstanceOf(DongleError);
    const refused = error as DongleError;
    expect(refused.code).toBe('dongle.uri');
    expect(refused.exitCode).toBe(2);
    expect(refused.message).not.toContain('\n');
    return refused;
  }
  throw new Error('expected a refusal, got a parsed URI');
}

describe('parsePkcs11Uri: valid URIs', () => {
  it('reads a dongle URI: token, module-path and pin-source, percent-decoded', () => {
    const uri = parsePkcs11Uri(`pkcs11:token=vsc%20dongle?module-path=${SOFTHSM}&pin-source=file:/home/user/dongle.pin`);
    expect(uri).toMatchObject({ token: 'vsc dongle', modulePath: SOFTHSM, pinSource: 'file:/home/user/dongle.pin' });
    expect(Object.isFrozen(uri)).toBe(true);
  });

  it('reads every path attribute of RFC 7512 §2.3', () => {
    const uri = parsePkcs11Uri(
      'pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;model=1.0;serial=;' +
        'slot-description=Sun%20Metaslot;slot-manufacturer=Sun;slot-id=4294967296;library-manufacturer=Snake%20Oil,%20Inc.;' +
        'library-description=Soft%20Token%20Library;library-version=1.23;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91' +
        '?pin-source=file:/etc/token_pin',
    );
    expect(uri).toMatchObject({
      token: 'The Software PKCS#11 Softtoken', manufacturer: 'Snake Oil, Inc.', model: '1.0', serial: '', slotDescription: 'Sun Metaslot',
      slotManufacturer: 'Sun', slotId: 4294967296n, libraryManufacturer: 'Snake Oil, Inc.', libraryDescription: 'Soft Token Library',
      libraryVersion: { major: 1, minor: 23 }, object: 'my-certificate', type: 'cert', pinSource: 'file:/etc/token_pin',
    });
    expect(uri.id).toEqual(fromHex('69953e5cf4bdec91'));
  });

  it.each([
    ['a label with "%" and ";" inside', 'pkcs11:token=A%20name%20with%20a%20substring%20%25%3B', { token: 'A name with a substring %;' }],
    ['UTF-8 in a label', 'pkcs11:object=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1', { object: 'Name with a small A with acute: á' }],
    ['UTF-8 in a token label of 32 bytes', `pkcs11:token=${'a'.repeat(30)}%C3%A1`, { token: `${'a'.repeat(30)}á` }],
    ['"&" raw in a path value', 'pkcs11:token=R&D', { token: 'R&D' }],
    ['";", "/" and "?" raw in a query value', 'pkcs11:token=a?pin-source=file:/a;b/c?d', { pinSource: 'file:/a;b/c?d' }],
    ['a scheme in capitals', `PKCS11:token=a?module-path=${SOFTHSM}`, { token: 'a', modulePath: SOFTHSM }],
    ['a library version without minor', 'pkcs11:library-version=3', { libraryVersion: { major: 3, minor: 0 } }],
    ['module-name', 'pkcs11:serial=17972a6e362a34c8?module-name=softhsm2', { serial: '17972a6e362a34c8', moduleName: 'softhsm2' }],
    ['no attributes at all', 'pkcs11:', {}],
  ])('reads %s', (_, text, expected) => {
    expect(parsePkcs11Uri(text)).toMatchObject(expected);
  });

  it('keeps vendor attributes (x-...) of path and query apart', () => {
    const uri = parsePkcs11Uri('pkcs11:token=my-token;x-vendor-aaa=value-a?pin-source=file:/etc/token_pin&x-vendor-bbb=value%20b');
    expect([...uri.vendorPath]).toEqual([['x-vendor-aaa', 'value-a']]);
    expect([...uri.vendorQuery]).toEqual([['x-vendor-bbb', 'value b']]);
  });
});

describe('formatPkcs11Uri', () => {
  it('percent-encodes what the component needs and nothing it may keep: the OpenSC PIV label', () => {
    const uri = parsePkcs11Uri('pkcs11:token=PIV%20Card%20Holder%20pin%20%28PIV_II%29?module-path=/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so');
    expect(formatPkcs11Uri(uri)).toBe('pkcs11:token=PIV%20Card%20Holder%20pin%20(PIV_II)?module-path=/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so');
  });

  it('drops vendor query attributes (one could carry a secret) and keeps the rest in a fixed order', () => {
    const uri = parsePkcs11Uri('pkcs11:serial=1;token=t;id=%01?x-secret=s3cr3t&pin-source=file:/p&module-name=softhsm2');
    expect(formatPkcs11Uri(uri)).toBe('pkcs11:token=t;serial=1;id=%01?module-name=softhsm2&pin-source=file:/p');
  });

  it('round-trips: parse(format(uri)) is uri', () => {
    const printable = (value: string): boolean => [...value].every((char) => char.charCodeAt(0) >= 0x20 && char.charCodeAt(0) !== 0x7f);
    const text = fc.string({ unit: 'grapheme', maxLength: 8 }).filter((value) => new TextEncoder().encode(value).length <= 16 && printable(value));
    fc.assert(
      fc.property(text, text, fc.option(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), { nil: undefined }), fc.uint8Array({ maxLength: 8 }), (token, serial, slotId, id) => {
        const uri = parsePkcs11Uri(`pkcs11:token=${encodeURIComponent(token)};serial=${encodeURIComponent(serial)}?module-path=/m/${encodeURIComponent(token)}.so`);
        const withMore: Pkcs11Uri = { ...uri, slotId, id };
        expect(parsePkcs11Uri(formatPkcs11Uri(withMore))).toEqual(withMore);
      }),
    );
  });
});

describe('parsePkcs11Uri: refusals', () => {
  it('refuses pin-value, before anything else, and never repeats the PIN', () => {
    for (const text of [
      'pkcs11:token=a?pin-value=S3CRET-4711',
      'pkcs11:token=a?module-path=/m.so&pin-value=S3CRET-4711&pin-source=file:/p',
      'pkcs11:token=a;pin-value=S3CRET-4711',
      'pkcs11:token=%ZZ;token=b?pin-value=S3CRET-4711#frag',
    ]) {
      const error = refusal(() => parsePkcs11Uri(text));
      expect(error.message).toContain('pin-value would put the PIN in process arguments and shell history; use pin-source=file:/path');
      expect(error.message).not.toContain('S3CRET');
    }
  });

  it.each([
    ['another scheme', 'emulated:/media/stick', 'starting with pkcs11:'],
    ['no scheme', 'token=a', 'starting with pkcs11:'],
    ['a fragment', 'pkcs11:token=a#b', 'no fragment'],
    ['a repeated path attribute', 'pkcs11:token=a;token=b', '"token" appears twice'],
    ['a repeated query attribute', 'pkcs11:token=a?module-path=/a.so&module-path=/b.so', '"module-path" appears twice'],
    ['an empty path attribute', 'pkcs11:token=a;;serial=b', 'empty path attribute'],
    ['a trailing ";"', 'pkcs11:token=a;', 'empty path attribute'],
    ['a trailing "&"', 'pkcs11:token=a?module-path=/a.so&', 'empty query attribute'],
    ['an attribute without "="', 'pkcs11:token', 'has no "="'],
    ['a malformed name', 'pkcs11:to%20ken=a', 'malformed path attribute name'],
    ['an unknown path attribute', 'pkcs11:tokn=a', 'unknown path attribute "tokn"'],
    ['an unknown query attribute', 'pkcs11:token=a?pin=1234', 'unknown query attribute "pin"'],
    ['a cut percent-encoding', 'pkcs11:token=a%2', 'bad percent-encoding'],
    ['a percent-encoding that is not hex', 'pkcs11:token=a%G0', 'bad percent-encoding'],
    ['a raw space', 'pkcs11:token=a b', 'must be percent-encoded'],
    ['a raw "/" in the path', 'pkcs11:token=a/b', 'must be percent-encoded'],
    ['a raw "\\"" in the query', 'pkcs11:token=a?pin-source=file:/"p"', 'must be percent-encoded'],
    ['bytes that are not UTF-8', 'pkcs11:token=%FF%FE', 'not valid UTF-8'],
    ['a NUL', 'pkcs11:token=a%00b', 'control character'],
    ['a newline in a path', 'pkcs11:token=a?module-path=/a%0A.so', 'control character'],
    ['a label longer than CK_TOKEN_INFO holds', `pkcs11:token=${'a'.repeat(33)}`, 'at most 32'],
    ['a serial longer than CK_TOKEN_INFO holds', `pkcs11:serial=${'1'.repeat(17)}`, 'at most 16'],
    ['a slot-id that is not a number', 'pkcs11:slot-id=0x10', 'slot-id: expected a decimal number'],
    ['a slot-id past 64 bits', `pkcs11:slot-id=${1n << 64n}`, 'below 2^64'],
    ['a library-version of three parts', 'pkcs11:library-version=1.2.3', 'library-version'],
    ['a library-version past a byte', 'pkcs11:library-version=256', 'library-version'],
    ['an unknown object type', 'pkcs11:type=key', 'type: expected one of'],
    ['a relative module-path', 'pkcs11:token=a?module-path=libsofthsm2.so', 'absolute path'],
    ['a module-name with a path in it', 'pkcs11:token=a?module-name=..%2Fevil', 'module-name'],
    ['an empty pin-source', 'pkcs11:token=a?pin-source=', 'pin-source'],
    ['a URI past the length limit', `pkcs11:token=a;x-pad=${'a'.repeat(5000)}`, 'at most 4096 characters'],
  ])('refuses %s', (_, text, named) => {
    expect(refusal(() => parsePkcs11Uri(text)).message).toContain(named);
  });

  it('refuses what is not a string', () => {
    expect(refusal(() => parsePkcs11Uri(42 as unknown as string)).message).toContain('expected a string');
  });

  it('never quotes a value, only names and offsets', () => {
    const error = refusal(() => parsePkcs11Uri('pkcs11:token=SECRETLABEL%ZZ'));
    expect(error.message).not.toContain('SECRETLABEL');
    expect(error.message).toContain('offset 24');
  });
});

describe('parseDongleUri: what naming a dongle needs', () => {
  it('takes a token or a serial, and module-path or module-name', () => {
    expect(parseDongleUri(`pkcs11:token=a?module-path=${SOFTHSM}&pin-source=file:/p`)).toMatchObject({ token: 'a' });
    expect(parseDongleUri('pkcs11:serial=0a1b?module-name=tpm2_pkcs11')).toMatchObject({ serial: '0a1b', moduleName: 'tpm2_pkcs11' });
    expect(parseDongleUri('pkcs11:token=a?module-name=softhsm2&x-vendor=ignored').vendorQuery.size).toBe(1);
  });

  it.each([
    ['no module', 'pkcs11:token=a', 'needs module-path=/path/to/module.so'],
    ['no token and no serial', `pkcs11:model=SoftHSM%20v2?module-path=${SOFTHSM}`, 'needs token=LABEL or serial=SERIAL'],
    ['only an empty token', `pkcs11:token=?module-path=${SOFTHSM}`, 'needs token=LABEL or serial=SERIAL'],
    ['an object', `pkcs11:token=a;object=k;type=private?module-path=${SOFTHSM}`, 'drop object, type'],
    ['an id', `pkcs11:token=a;id=%01?module-path=${SOFTHSM}`, 'drop id'],
    ['a vendor path attribute', `pkcs11:token=a;x-slot=3?module-path=${SOFTHSM}`, 'vendor attribute "x-slot"'],
    ['a pin-source that is no file', `pkcs11:token=a?module-path=${SOFTHSM}&pin-source=|/bin/ask-pin`, 'pin-source: expected file:/path'],
    ['a pin-value', `pkcs11:token=a?module-path=${SOFTHSM}&pin-value=1234`, 'pin-value would put the PIN'],
  ])('refuses %s', (_, text, named) => {
    expect(refusal(() => parseDongleUri(text)).message).toContain(named);
  });
});

describe('resolveModulePath: module-name', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vsc-pkcs11-modules-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'libexample.so'), '');
  writeFileSync(join(dir, 'opensc-pkcs11.so'), '');

  it('prefers module-path, else finds NAME.so or libNAME.so in the directories', () => {
    expect(resolveModulePath(parsePkcs11Uri('pkcs11:token=a?module-path=/x/y.so&module-name=example'), [dir])).toBe('/x/y.so');
    expect(resolveModulePath(parsePkcs11Uri('pkcs11:token=a?module-name=example'), [dir])).toBe(join(dir, 'libexample.so'));
    expect(resolveModulePath(parsePkcs11Uri('pkcs11:token=a?module-name=opensc-pkcs11'), [dir])).toBe(join(dir, 'opensc-pkcs11.so'));
  });

  it('names module-path when the name is found nowhere', () => {
    expect(() => resolveModulePath(parsePkcs11Uri('pkcs11:token=a?module-name=missing'), [dir])).toThrow(/no PKCS#11 module named missing .*module-path=/);
  });
});

describe('parsePkcs11Uri: fuzz', () => {
  const pieces = ['pkcs11:', 'token', 'serial', 'module-path', 'pin-source', 'pin-value', 'x-a', 'slot-id', 'library-version', 'type', 'id', '=', ';', '&', '?', '#', '%', '%2', '%20', '%C3%A1', '%FF', '/', ':', 'a', '1', '.', ' ', 'é', '\u0000'];
  const uriLike = fc.array(fc.constantFrom(...pieces), { maxLength: 24 }).map((parts) => parts.join(''));

  it('returns a URI or throws DongleError uri, one line, exit 2', () => {
    fc.assert(
      fc.property(fc.oneof(uriLike, fc.string({ unit: 'binary', maxLength: 64 }), uriLike.map((text) => `pkcs11:${text}`)), (text) => {
        try {
          const uri = parsePkcs11Uri(text);
          expect(Object.isFrozen(uri)).toBe(true);
          parseDongleUri(text);
        } catch (error) {
          expect(error).toBeInstanceOf(DongleError);
          expect((error as DongleError).code).toBe('dongle.uri');
          expect((error as DongleError).exitCode).toBe(2);
          expect((error as DongleError).message).not.toContain('\n');
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('never repeats a pin-value, wherever the URI breaks', () => {
    fc.assert(
      fc.property(uriLike.filter((text) => !text.includes("?")), uriLike, fc.stringMatching(/^[A-Za-z0-9]{6,12}$/), (before, after, pin) => {
        const text = `pkcs11:${before}?pin-value=PIN${pin}&${after}`;
        const error = refusal(() => parsePkcs11Uri(text));
        expect(error.message).not.toContain(`PIN${pin}`);
      }),
    );
  });
});
