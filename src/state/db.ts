import Database from "better-sqlite3";

export type Db = Database.Database;

/**
 * Schema migrations, applied in order; `PRAGMA user_version` records how many ran. Append only:
 * a released migration is never edited.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE images (
    key          TEXT PRIMARY KEY,
    toplevels    TEXT NOT NULL,   -- JSON array of the store paths the image was asked for
    closure      TEXT NOT NULL,   -- JSON array, sorted: exactly what the image holds
    bytes        INTEGER NOT NULL,
    build_ms     INTEGER NOT NULL,
    created_at   TEXT NOT NULL
  );
  -- A set of top-level store paths always has the same closure (store paths are immutable), so
  -- resolving it once is enough: a cache hit needs no nix-store call.
  CREATE TABLE toplevel_sets (
    toplevels    TEXT PRIMARY KEY, -- JSON array, sorted
    image_key    TEXT NOT NULL
  );
  CREATE TABLE sandboxes (
    name          TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    bundle        TEXT NOT NULL,
    image_key     TEXT NOT NULL,
    spec          TEXT NOT NULL,   -- JSON SandboxSpec
    state         TEXT NOT NULL,   -- creating | created | running | stopped | removing
    owner_pid     INTEGER,         -- process doing a transition (creating/removing)
    owner_start   TEXT,
    monitor_pid   INTEGER,         -- process watching the workload while running
    monitor_start TEXT,
    exit_code     INTEGER,
    created_at    TEXT NOT NULL,
    started_at    TEXT,
    finished_at   TEXT
  );
  -- Which sandbox holds the host mount of which image: the mount lives while a row does.
  CREATE TABLE mount_refs (
    sandbox      TEXT NOT NULL,
    image_key    TEXT NOT NULL,
    PRIMARY KEY (sandbox, image_key)
  );
  -- Named cross-process locks; a lock whose owner died is taken over.
  CREATE TABLE locks (
    name         TEXT PRIMARY KEY,
    token        TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    start        TEXT NOT NULL
  );
  `,
  `
  -- Sandboxes the OpenShell gateway asked the driver for, by the gateway's id. The sandbox
  -- itself is a row of 'sandboxes' (named 'sandbox' here) once provisioning has made it.
  CREATE TABLE driver_sandboxes (
    id            TEXT PRIMARY KEY,
    sandbox       TEXT NOT NULL UNIQUE,
    gateway_name  TEXT NOT NULL,
    plan          TEXT NOT NULL,   -- JSON DriverPlan; holds the sandbox token (root-only dir)
    intent        TEXT NOT NULL,   -- running | stopped: what the gateway last asked for
    phase         TEXT NOT NULL,   -- provisioning | active | failed | deleting
    reason        TEXT,            -- for failed: a terminal reason (ProvisioningFailed…)
    message       TEXT,
    changed_at    TEXT NOT NULL,   -- last transition, reported in conditions
    created_at    TEXT NOT NULL
  );
  `,
];

export function openDb(file: string): Db {
  // busy_timeout makes concurrent writers wait for each other instead of failing at once.
  const db = new Database(file, { timeout: 10_000 });
  enableWal(db);
  db.pragma("synchronous = NORMAL");
  migrate(db);
  return db;
}

/**
 * WAL lets readers proceed while another CLI process writes. Switching a new database to WAL
 * needs it to itself, and SQLite does not wait for that (no busy handler): two processes that
 * open a fresh state directory at once would see "database is locked". Retry briefly.
 */
function enableWal(db: Db): void {
  const wait = new Int32Array(new SharedArrayBuffer(4));
  for (let attempt = 0; ; attempt++) {
    try {
      if (db.pragma("journal_mode", { simple: true }) === "wal") return;
      db.pragma("journal_mode = WAL");
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== "SQLITE_BUSY" || attempt >= 200) throw err;
      Atomics.wait(wait, 0, 0, 10);
    }
  }
}

function migrate(db: Db): void {
  const apply = db.transaction(() => {
    const version = db.pragma("user_version", { simple: true }) as number;
    for (let i = version; i < MIGRATIONS.length; i++) {
      db.exec(MIGRATIONS[i] as string);
    }
    if (version < MIGRATIONS.length) db.pragma(`user_version = ${MIGRATIONS.length}`);
  });
  apply.immediate();
}
