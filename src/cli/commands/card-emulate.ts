// `vsc card emulate`: a standalone software card (no server) served to pcscd through vpcd.
import { resolve } from 'node:path';
import { once } from 'node:events';
import { type Command, type OptionValues, requireOption } from '../command.js';
import { UsageError, ExitCode } from '../../errors/index.js';
import { VpcdBridge, parseVpcdAddress, DEFAULT_VPCD_HOST, DEFAULT_VPCD_PORT, type VpcdBridgeEvent } from '../../reader-driver/index.js';

function describeEvent(event: VpcdBridgeEvent): string | undefined {
  switch (event.type) {
    case 'connected':
      return undefined;
    case 'disconnected':
      return event.willReconnect ? `vpcd connection lost (${event.reason}); reconnecting` : undefined;
    case 'error':
      return `vpcd: ${event.error.message}`;
  }
}

async function run(options: OptionValues): Promise<number> {
  // Loaded when the command runs, so that other commands start without the card's code.
  const { openEmulatedCard, checkSerial } = await import('../../card-emulator/index.js');
  const statePath = resolve(requireOption(options, 'state'));
  const endpoint = parseVpcdAddress(typeof options['vpcd'] === 'string' ? options['vpcd'] : `${DEFAULT_VPCD_HOST}:${DEFAULT_VPCD_PORT}`);
  let serial: string | undefined;
  if (typeof options['serial'] === 'string') {
    try {
      serial = checkSerial(options['serial']);
    } catch (error) {
      throw new UsageError(`--serial: ${(error as Error).message}`);
    }
  }
  const keyMode = options['universal'] === true ? 'universal' : undefined;
  const json = options['json'] === true;

  const card = await openEmulatedCard(statePath, { serial, keyMode });
  try {
    if (!card.created && ((serial !== undefined && serial !== card.serial) || (keyMode !== undefined && keyMode !== card.keyMode))) {
      throw new UsageError(`--serial and --universal apply only when the state file is created; ${statePath} holds card ${card.serial} (${card.keyMode} key)`);
    }
    const bridge = new VpcdBridge(card.os, {
      host: endpoint.host,
      port: endpoint.port,
      onEvent: (event) => {
        const line = describeEvent(event);
        if (line !== undefined) console.error(line);
      },
    });
    const stopSignals = new AbortController();
    const signalled = Promise.race([once(process, 'SIGTERM', stopSignals), once(process, 'SIGINT', stopSignals)]).catch(() => undefined);
    const connected = bridge.start();
    const first = await Promise.race([connected.then(() => 'connected' as const), signalled.then(() => 'signal' as const)]);
    if (first === 'connected') {
      const facts = { event: 'inserted', serial: card.serial, keyMode: card.keyMode, vpcd: `${endpoint.host}:${endpoint.port}`, state: statePath, created: card.created };
      console.log(json ? JSON.stringify(facts) : `card ${card.serial} inserted into vpcd at ${facts.vpcd}${card.created ? ' (new card, state created)' : ''}; SIGTERM or Ctrl-C removes it`);
      await signalled;
    }
    stopSignals.abort();
    await bridge.stop();
    console.log(json ? JSON.stringify({ event: 'removed', serial: card.serial }) : `card ${card.serial} removed`);
    return ExitCode.ok;
  } finally {
    await card.close();
  }
}

export const cardEmulateCommand: Command = {
  kind: 'command',
  name: 'emulate',
  summary: 'serve a standalone software card (VSC and PIV applets) to pcscd through its vpcd driver',
  details: [
    'The card connects to vpcd (pcscd with vsmartcard-vpcd) and stays inserted until SIGTERM or Ctrl-C.',
    'A new card is personalised for PIV with PIN 123456, PUK 12345678 and the default management key:',
    'change them before you rely on the card, e.g. yubico-piv-tool -a change-pin, -a change-puk and',
    '-a set-mgm-key (pkcs11-tool --change-pin works for the PIN too).',
    'Its keys, counter, certificates and PIN state live in the state file, created on first use and',
    'updated before the card answers. The file holds the private keys in clear: protect it like a key file.',
    'vpcd accepts cards from any host without authentication: firewall its ports (35963, 35964).',
    '--universal is for application developers who test the universal-key variant (patent 003 [0098]-[0102]): its key sits in the',
    'state file, so rental keyfiles refuse such a card ("vsc keyfile create" accepts a universal key only as an attested token,',
    'made by "vsc dongle init --keys-on-token --key-mode universal --universal-key FILE").',
  ].join('\n'),
  options: {
    vpcd: { type: 'string', value: 'HOST:PORT', description: 'where pcscd\'s vpcd listens', default: `${DEFAULT_VPCD_HOST}:${DEFAULT_VPCD_PORT}` },
    state: { type: 'string', value: 'FILE', description: 'state file of the card (created if missing); required' },
    serial: { type: 'string', value: 'SERIAL', description: 'serial number of a new card (default: random)' },
    universal: { type: 'boolean', description: 'a new card signs with the universal-key variant (P1 01), for development: rental keyfiles refuse it' },
    json: { type: 'boolean', description: 'print events as JSON lines' },
  },
  run,
};
