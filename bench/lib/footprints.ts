import type { App } from "../../src/app.js";
import { type DiskUse, diskDelta, diskUse } from "./disk-use.js";
import type { PodmanStore } from "./podman-store.js";
import { COMMAND } from "./workload.js";

/** Host disk used by one more sandbox, before it writes anything. */
export interface Footprints {
  oursSandboxDir: DiskUse;
  oursStateDelta: DiskUse;
  podmanStorageDelta: DiskUse;
}

/** What one more created (not started) sandbox adds on the host: its directory, and the state as a whole. */
export async function oursFootprint(
  app: App,
): Promise<Pick<Footprints, "oursSandboxDir" | "oursStateDelta">> {
  const before = await diskUse([app.layout.root]);
  const sb = await app.service.create({ bundle: "demo", command: COMMAND });
  try {
    const oursSandboxDir = await diskUse([app.layout.sandbox(sb.name)]);
    return { oursSandboxDir, oursStateDelta: diskDelta(await diskUse([app.layout.root]), before) };
  } finally {
    await app.service.remove(sb.name);
  }
}

/** What `podman create` adds to a storage that already holds the image. */
export async function podmanFootprint(
  podman: PodmanStore,
  tag: string,
  env: Record<string, string>,
): Promise<DiskUse> {
  const before = await diskUse(podman.storageDirs);
  const id = await podman.create(tag, env);
  try {
    return diskDelta(await diskUse(podman.storageDirs), before);
  } finally {
    await podman.removeContainer(id);
  }
}
