// The folder-surface lint rule (STYLE.md convention 1, eslint.config.js) is active: an import that
// reaches past another folder's index.ts fails `npm run lint`, and every folder under src/ has one.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const REPO_ROOT = join(import.meta.dirname, '..', '..');
const eslint = new ESLint({ cwd: REPO_ROOT });

/** The folder-surface messages ESLint gives `code` as if it were the file at `path`. */
async function surfaceErrors(path: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(REPO_ROOT, path) });
  return result!.messages.filter((message) => message.ruleId === 'project/folder-surface').map((message) => message.message);
}

describe('folder-surface lint rule', () => {
  it.each([
    ['src/demo/example.ts', "import { CardStore } from '../vsc-server/card-store.js';\nexport { CardStore };\n", 'src/vsc-server/card-store.js'],
    ['src/demo/example.ts', "export * from '../apdu/piv/piv-state.js';\n", 'src/apdu/piv/piv-state.js'],
    ['src/demo/example.ts', "export async function load(): Promise<unknown> { return import('../vsc-server/database.js'); }\n", 'src/vsc-server/database.js'],
    ['src/demo/example.ts', "import { sendApdus } from '../../test/support/index.js';\nexport { sendApdus };\n", 'src/ must not depend on test/'],
    ['test/demo/example.test.ts', "import { CardStore } from '../../src/vsc-server/card-store.js';\nexport { CardStore };\n", 'src/vsc-server/card-store.js'],
    ['test/e2e/example.test.ts', "import { CardOs } from '../../src/apdu/card-os.js';\nexport { CardOs };\n", 'src/apdu/card-os.js'],
    ['bench/example.ts', "import { startPostgresCluster } from '../test/support/postgres-cluster.js';\nexport { startPostgresCluster };\n", 'test/support/index.js'],
  ])('refuses %s importing past a surface (%#)', async (path, code, named) => {
    const errors = await surfaceErrors(path, code);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain(named);
  });

  it.each([
    ['src/demo/example.ts', "import { CardStore } from '../vsc-server/index.js';\nexport { CardStore };\n"],
    ['src/apdu/piv/example.ts', "import { decodeTlv } from '../ber-tlv.js';\nexport { decodeTlv };\n"],
    ['test/vsc-server/example.test.ts', "import { CardStore } from '../../src/vsc-server/card-store.js';\nexport { CardStore };\n"],
    ['bench/example.ts', "import { startPostgresCluster } from '../test/support/index.js';\nexport { startPostgresCluster };\n"],
  ])('lets %s import through a surface or inside its own folder (%#)', async (path, code) => {
    expect(await surfaceErrors(path, code)).toEqual([]);
  });

  it('finds an index.ts in every folder of TypeScript under src/ (a folder of page assets has no surface to import)', () => {
    const folders = (dir: string): string[] =>
      readdirSync(dir).map((name) => join(dir, name)).filter((path) => statSync(path).isDirectory()).flatMap((path) => [path, ...folders(path)]);
    const hasTypeScript = (folder: string): boolean => readdirSync(folder).some((name) => name.endsWith('.ts'));
    const missing = folders(join(REPO_ROOT, 'src')).filter((folder) => hasTypeScript(folder) && !readdirSync(folder).includes('index.ts'));
    expect(missing.map((folder) => folder.slice(REPO_ROOT.length + 1))).toEqual([]);
  });
});
