// A description of the machine a benchmark ran on, for BENCHMARKS.md.
import { cpus, totalmem, release, type as osType } from 'node:os';

export function describeMachine(): string[] {
  const cpu = cpus();
  return [
    `- CPU: ${cpu[0]?.model ?? 'unknown'} × ${cpu.length}`,
    `- memory: ${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `- OS: ${osType()} ${release()}`,
    `- Node.js ${process.version}, OpenSSL ${process.versions.openssl}`,
  ];
}
