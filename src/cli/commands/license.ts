// `vsc license ...` (DESIGN.md "License containers and lost licenses"; Wibu 002): the customer's container commands,
// the customer's side of activation, and the licensor's issuing back end.
import type { CommandGroup } from '../command.js';
import { licenseActivationCommands } from './license-activation.js';
import { licenseBackupCommands } from './license-backup.js';
import { licenseHubGroup } from './license-hub.js';
import { licenseLostCommands } from './license-lost.js';
import { licenseCustomerCommands } from './license-customer.js';
import { licenseIssuingCommands } from './license-issuing.js';
import { licenseNetworkCommands } from './license-network.js';
import { licenseRestoreCommands } from './license-restore.js';

export const licenseGroup: CommandGroup = {
  kind: 'group',
  name: 'license',
  summary: 'license containers on the card: use and activate licenses, run a licensor\'s issuing service, and back up, restore and lock containers',
  children: [...licenseCustomerCommands, ...licenseActivationCommands, ...licenseNetworkCommands, ...licenseBackupCommands, ...licenseRestoreCommands, ...licenseLostCommands, ...licenseIssuingCommands, licenseHubGroup],
};
