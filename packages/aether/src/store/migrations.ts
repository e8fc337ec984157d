/** The embedded store's SQLite schema. `user_version` numbers the migrations. */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE inodes (
     ino INTEGER PRIMARY KEY,
     kind TEXT NOT NULL CHECK (kind IN ('file','dir','symlink')),
     mode INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL,
     size INTEGER NOT NULL, nlink INTEGER NOT NULL,
     atime_ms REAL NOT NULL, mtime_ms REAL NOT NULL, ctime_ms REAL NOT NULL,
     target TEXT
   );
   CREATE TABLE dentries (
     parent INTEGER NOT NULL, name TEXT NOT NULL, ino INTEGER NOT NULL,
     PRIMARY KEY (parent, name)
   ) WITHOUT ROWID;
   CREATE INDEX dentries_by_ino ON dentries (ino);
   CREATE TABLE blocks (
     ino INTEGER NOT NULL, idx INTEGER NOT NULL, hash TEXT NOT NULL,
     PRIMARY KEY (ino, idx)
   ) WITHOUT ROWID;
   CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
   CREATE TABLE chunks (
     hash TEXT PRIMARY KEY, pack INTEGER NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL
   ) WITHOUT ROWID;`,
];
