/** The demo's script: who asks for a token when, over a working morning. Times are minutes from 08:00. */
export type DemoRequest = { atMinute: number; user: string; kind: "workspace-start" | "api" };

function every(user: string, kind: DemoRequest["kind"], from: number, to: number, step: number): DemoRequest[] {
  const out: DemoRequest[] = [];
  for (let m = from; m <= to; m += step) out.push({ atMinute: m, user, kind });
  return out;
}

/**
 * alice starts workspaces now and then and makes a few API calls; bob is busy (API calls every
 * 4 minutes, a workspace start every hour); carol starts one workspace and leaves.
 */
export const DEMO_SCENARIO: DemoRequest[] = ([
  { atMinute: 0, user: "alice", kind: "workspace-start" },
  { atMinute: 2, user: "alice", kind: "api" },
  { atMinute: 30, user: "alice", kind: "api" },
  { atMinute: 47, user: "alice", kind: "api" },
  { atMinute: 70, user: "alice", kind: "workspace-start" },
  { atMinute: 150, user: "alice", kind: "workspace-start" },
  ...every("bob", "api", 1, 178, 4),
  ...every("bob", "workspace-start", 5, 178, 60),
  { atMinute: 12, user: "carol", kind: "workspace-start" },
] as DemoRequest[]).sort((a, b) => a.atMinute - b.atMinute || a.user.localeCompare(b.user));
