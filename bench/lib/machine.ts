import os from "node:os";

export interface MachineInfo {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  platform: string;
  node: string;
  database: string;
  /** 1-minute load average when the run started: other work on the machine makes the numbers noisy. */
  loadAverageAtStart: number;
}

export function machineInfo(databaseVersion: string): MachineInfo {
  const cpus = os.cpus();
  return {
    cores: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? "unknown",
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
    database: databaseVersion,
    loadAverageAtStart: Math.round(os.loadavg()[0] * 100) / 100,
  };
}
