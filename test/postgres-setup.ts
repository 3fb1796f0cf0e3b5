// vitest globalSetup: one real PostgreSQL cluster for the run; tests get its URL through inject().
import type { TestProject } from 'vitest/node';
import { startPostgresCluster } from './support/postgres-cluster.js';

declare module 'vitest' {
  export interface ProvidedContext {
    postgresUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cluster = await startPostgresCluster();
  project.provide('postgresUrl', cluster.url);
  return () => cluster.stop();
}
