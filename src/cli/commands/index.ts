// The commands of `vsc`, each group in a file of its own.
export { cardEmulateCommand } from './card-emulate.js';
export { cardClientCommands } from './card-client.js';
export { adminCommands, serverInitCommand, serverStartCommand } from './server-admin.js';
export { demoCommand } from './demo.js';
export { dongleGroup } from './dongle.js';
export { keyfileGroup, vendorGroup } from './rental-vendor.js';
export { rentalCommands, rentalGroup, RENTAL_CLIENT_OPTIONS } from './rental.js';
export { validatorGroup } from './rental-validator.js';
export { licenseGroup } from './license.js';
