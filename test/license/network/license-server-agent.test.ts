// The network license server over the real card (src/license/network with AgentLicenseLink): the license applet on a
// software card in the in-process card OS behind a real rental server (the machine's license agent), real HTTP. Where
// the other tests of this folder use the card double, this one shows the card itself deciding and signing.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ed25519KeyFromSeed, generateEd25519Seed } from '../../../src/crypto/index.js';
import { acquireSeat, AgentLicenseLink, borrowSeat, checkBorrowed, returnBorrowed } from '../../../src/license/index.js';
import { firstUpdate, LICENSOR, simpleProduct, startLicenseAgent, T0, type RunningLicenseAgent } from '../../support/index.js';
import { clock, reasonOf, serve, stopAll } from './network-test-servers.js';

let agent: RunningLicenseAgent;
let link: AgentLicenseLink;

beforeEach(async () => {
  clock.now = T0 + 10;
  agent = await startLicenseAgent();
  await agent.activate(firstUpdate([{ op: 'put-product', product: simpleProduct(5, 'unlimited', { licenseQuantity: 2, featureMap: 0b11, maxBorrowSeconds: 7 * 86_400 }) }]));
  link = await AgentLicenseLink.connect(agent.socket);
});

afterEach(async () => {
  await stopAll();
  await link.close();
  await agent.close();
});

describe('network license server on the real card', () => {
  it('leases two seats decided and signed by the card, refuses a third, and lends one with a certificate its card signed', async () => {
    const { url } = await serve({ link });
    const seat = (client: string, features = 1) => acquireSeat(url, { licensorKey: LICENSOR.publicKey, productCode: 5, features, client, heartbeatMs: 0, now: () => clock.now });
    const a = await seat('host-a');
    expect(a.leases[0]!.card.serial).toBe(agent.root.serial);
    expect(await reasonOf(seat('host-b', 0b100))).toBe('feature');
    await seat('host-b');
    expect(await reasonOf(seat('host-c'))).toBe('seats');
    await a.release();
    const own = { serial: 'LAPTOP-1', publicKey: ed25519KeyFromSeed(generateEd25519Seed()).publicKey, keyMode: 'individual' as const };
    const borrowed = await borrowSeat(url, { licensorKey: LICENSOR.publicKey, productCode: 5, features: 1, client: 'laptop', borrowerCard: own, seconds: 86_400, now: () => clock.now });
    expect(checkBorrowed(borrowed.text, { licensorKey: LICENSOR.publicKey, productCode: 5, features: 1, now: clock.now + 3_600, ownCard: own }).until).toBe(clock.now + 86_400);
    expect(await reasonOf(seat('host-c'))).toBe('seats');
    await returnBorrowed(url, borrowed.id);
    await (await seat('host-c')).release();
  });
});
