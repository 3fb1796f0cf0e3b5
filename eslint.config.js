// Lint rules: typescript-eslint's recommended type-aware set, plus the project's conventions.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { dirname, isAbsolute, relative, resolve as resolvePath, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

// The folder-surface rule (STYLE.md convention 1): a folder's index.ts is its only public surface.
// From outside src/<folder>/, an import may name src/<folder>/index.js and nothing deeper; a test in
// test/<folder>/ may reach its own src/<folder>/ files (white-box tests of one part), and bench/
// reaches test helpers only through test/support/index.js. src/ never imports test/ or bench/.
const ROOT = dirname(fileURLToPath(import.meta.url));

/** ['src', 'apdu', ...rest] for a path inside the repository, or undefined outside it. */
function repoParts(path) {
  const rel = relative(ROOT, path);
  return rel.startsWith('..') || isAbsolute(rel) ? undefined : rel.split(sep);
}

function isIndex(parts, depth) {
  return parts.length === depth + 1 && /^index\.(js|ts)$/.test(parts[depth]);
}

/** Why an import from `from` to `to` reaches past a surface, or undefined when it does not. */
export function surfaceViolation(from, to) {
  const [fromTop, fromFolder] = from;
  const [toTop, toFolder] = to;
  if (toTop === 'src' && to.length > 2) {
    if (fromTop === 'src' && fromFolder === toFolder) return undefined;
    if (fromTop === 'test' && fromFolder === toFolder) return undefined;
    if (isIndex(to, 2)) return undefined;
    return `src/${toFolder}/${to.slice(2).join('/')} is inside src/${toFolder}/: import it through src/${toFolder}/index.js`;
  }
  if (fromTop === 'src' && (toTop === 'test' || toTop === 'bench')) return `src/ must not depend on ${toTop}/`;
  if (fromTop === 'bench' && toTop === 'test' && !(to[1] === 'support' && isIndex(to, 2))) {
    return `bench/ reaches test helpers only through test/support/index.js, not ${to.join('/')}`;
  }
  return undefined;
}

const folderSurfaceRule = {
  meta: { type: 'problem', schema: [], messages: { surface: 'Import reaches past a folder surface: {{why}}' } },
  create(context) {
    const from = repoParts(context.filename);
    if (from === undefined) return {};
    const check = (node, source) => {
      if (source === null || source === undefined || source.type !== 'Literal' || typeof source.value !== 'string') return;
      if (!source.value.startsWith('.')) return;
      const to = repoParts(resolvePath(dirname(context.filename), source.value));
      if (to === undefined) return;
      const why = surfaceViolation(from, to);
      if (why !== undefined) context.report({ node: source, messageId: 'surface', data: { why } });
    };
    return {
      ImportDeclaration: (node) => check(node, node.source),
      ExportNamedDeclaration: (node) => check(node, node.source),
      ExportAllDeclaration: (node) => check(node, node.source),
      ImportExpression: (node) => check(node, node.source),
    };
  },
};

export default tseslint.config(
  { ignores: ['node_modules/', 'coverage/', 'dist/', '**/*.d.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-console': 'error',
      eqeqeq: 'error',
    },
  },
  {
    files: ['src/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    plugins: { project: { rules: { 'folder-surface': folderSurfaceRule } } },
    rules: { 'project/folder-surface': 'error' },
  },
  {
    // The CLI, demo and benchmarks talk to a person through the console on purpose.
    files: ['src/cli/**', 'src/demo/rented-word-count.ts', 'bench/**', 'bin/**', 'test/**'],
    rules: { 'no-console': 'off' },
  },
  {
    files: ['bin/**/*.js', 'eslint.config.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
