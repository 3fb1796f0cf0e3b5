// License servers for the tests of src/license/network: real fastify on 127.0.0.1 (a free port, or the one a stopped
// server had, to bring it back), over a card double, with one injected clock for servers and clients.
import { startLicenseServer, type LicenseServerOptions, type RunningLicenseServer } from '../../../src/license/index.js';
import { T0 } from '../../support/index.js';

export const clock = { now: T0 + 10 };

const running: RunningLicenseServer[] = [];

export async function serve(options: Omit<LicenseServerOptions, 'now'> & { readonly port?: number }): Promise<RunningLicenseServer> {
  const server = await startLicenseServer({ host: '127.0.0.1', port: 0, now: () => clock.now, leaseSeconds: 60, ...options });
  running.push(server);
  return server;
}

/** Stops every server the test started (afterEach). */
export async function stopAll(): Promise<void> {
  for (const server of running.splice(0)) await server.close().catch(() => undefined);
}

/** The reason of a LicenseError `run` is refused with (fails the test when it is not refused). */
export async function reasonOf(run: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof run === 'function' ? run() : run);
  } catch (error) {
    const reason = (error as { reason?: unknown }).reason;
    if (typeof reason !== 'string') throw error;
    return reason;
  }
  throw new Error('expected a refusal');
}
