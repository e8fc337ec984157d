import { AetherError } from '../errors.js';

/**
 * Mount options passed to libfuse 2.9.9 (the copy fuse-native bundles), beyond fuse-native's own
 * whitelist. Every option here was mounted on this machine and checked (FUSE.md). Nothing is on by
 * default: the caller, normally the mount orchestrator reading the configuration, chooses.
 */
export interface FuseMountOptions {
  /** `fsname=`: the source column of /proc/mounts and `df`. */
  fsname?: string;
  /** `subtype=`: the type becomes `fuse.<subtype>`, which `df -T` prints. */
  subtype?: string;
  /** `allow_other`: users other than the mounting one may use the mount. */
  allowOther?: boolean;
  /** `default_permissions`: the kernel checks modes and owners before calling handlers. */
  defaultPermissions?: boolean;
  /** `big_writes`: writes larger than 4 KiB. */
  bigWrites?: boolean;
  /** `max_write=`: largest write request, 4096 to 1048576 bytes (the patched channel's buffers, FUSE.md). */
  maxWriteBytes?: number;
  /** `max_read=`: largest read request in bytes. */
  maxReadBytes?: number;
  /** `max_readahead=`: caps the kernel's readahead in bytes (libfuse can only lower it). */
  maxReadaheadBytes?: number;
  /**
   * Not a libfuse option: the kernel readahead of the mount in KiB (its `read_ahead_kb` in sysfs,
   * set once mounted; the kernel starts every FUSE mount at 128), 0 to 65536.
   */
  readaheadKib?: number;
  /**
   * `aether_auto_inval_data`, the patched binding's own (taken out before libfuse parses the
   * list): the kernel drops a file's cached pages when a getattr shows its mtime changed, not only
   * its size (FUSE_AUTO_INVAL_DATA in the patched INIT reply; libfuse 2.9 cannot ask for it).
   */
  autoInvalData?: boolean;
  /** `attr_timeout=`: how long the kernel caches attributes (libfuse default 1 s). */
  attrTimeoutSeconds?: number;
  /** `entry_timeout=`: how long the kernel caches name lookups (libfuse default 1 s). */
  entryTimeoutSeconds?: number;
  /** `negative_timeout=`: how long the kernel caches "no such name" (libfuse default 0). */
  negativeTimeoutSeconds?: number;
  /** `ac_attr_timeout=`: attribute timeout used by auto_cache to check for changed content. */
  acAttrTimeoutSeconds?: number;
  /** `hard_remove`: unlink an open file at once instead of renaming it to `.fuse_hidden*` (FUSE.md). */
  hardRemove?: boolean;
  /** `use_ino`: the kernel takes `ino` from getattr (fuse-native carries only 32 bits of it). */
  useIno?: boolean;
  /** `kernel_cache`: keep the page cache across opens; only correct with invalidation (FUSE-NOTES). */
  kernelCache?: boolean;
  /** `auto_cache`: drop the page cache on open when size or mtime changed. */
  autoCache?: boolean;
  /** `atomic_o_trunc`: open(O_TRUNC) arrives as open flags instead of a truncate(path, 0) first. */
  atomicOTrunc?: boolean;
  /** `noforget`: never forget inodes (keeps paths of open files resolvable; memory grows). */
  noforget?: boolean;
  /** `debug`: libfuse prints every request to stderr and stays in the foreground. */
  debug?: boolean;
  /** `noatime`: the mount's flag (in /proc/mounts): reads never update access times. */
  noatime?: boolean;
}

/** The patched channel's buffers hold 1 MiB requests (libfuse's own: 128 KiB); the kernel floors it at 4 KiB. */
export const MAX_WRITE_BYTES_MIN = 4096;
export const MAX_WRITE_BYTES_MAX = 1048576;
/** fuse-native copies the option string into a 1024-byte buffer, truncating silently. */
const OPTION_STRING_CHARS_MAX = 1000;
const READAHEAD_KIB_MAX = 65536;
const TIMEOUT_SECONDS_MAX = 86400;
const NAME_PATTERN = /^[A-Za-z0-9_.:@+-]{1,64}$/;

type Flag = 'allowOther' | 'defaultPermissions' | 'bigWrites' | 'hardRemove' | 'useIno' | 'kernelCache' | 'autoCache' | 'atomicOTrunc' | 'noforget' | 'debug' | 'autoInvalData' | 'noatime';
const FLAGS: ReadonlyArray<readonly [Flag, string]> = [
  ['debug', 'debug'],
  ['allowOther', 'allow_other'],
  ['defaultPermissions', 'default_permissions'],
  ['bigWrites', 'big_writes'],
  ['hardRemove', 'hard_remove'],
  ['useIno', 'use_ino'],
  ['kernelCache', 'kernel_cache'],
  ['autoCache', 'auto_cache'],
  ['atomicOTrunc', 'atomic_o_trunc'],
  ['noforget', 'noforget'],
  ['autoInvalData', 'aether_auto_inval_data'],
  ['noatime', 'noatime'],
];

type Timeout = 'attrTimeoutSeconds' | 'entryTimeoutSeconds' | 'negativeTimeoutSeconds' | 'acAttrTimeoutSeconds';
const TIMEOUTS: ReadonlyArray<readonly [Timeout, string]> = [
  ['attrTimeoutSeconds', 'attr_timeout'],
  ['entryTimeoutSeconds', 'entry_timeout'],
  ['negativeTimeoutSeconds', 'negative_timeout'],
  ['acAttrTimeoutSeconds', 'ac_attr_timeout'],
];

function invalid(message: string, option: string): AetherError {
  return new AetherError('MOUNT_OPTION_INVALID', message, { context: { option } });
}

function name(key: 'fsname' | 'subtype', value: string): string {
  if (!NAME_PATTERN.test(value)) throw invalid(`mount option ${key} must be 1 to 64 of A-Z a-z 0-9 _ . : @ + -, got ${JSON.stringify(value)}`, key);
  return `${key}=${value}`;
}

function bytes(key: string, value: number, min: number, max: number): string {
  if (!Number.isInteger(value) || value < min || value > max) throw invalid(`mount option ${key} must be an integer from ${min} to ${max}, got ${value}`, key);
  return `${key}=${value}`;
}

function seconds(key: string, value: number): string {
  if (!Number.isFinite(value) || value < 0 || value > TIMEOUT_SECONDS_MAX) throw invalid(`mount option ${key} must be from 0 to ${TIMEOUT_SECONDS_MAX} seconds, got ${value}`, key);
  // libfuse reads it with %lf; toFixed keeps exponents (1e-7) out of the string.
  return `${key}=${Number(value.toFixed(6))}`;
}

/** The `-o` list for libfuse, validated: libfuse refuses an unknown option only after mounting. */
export function fuseOptionList(opts: FuseMountOptions): string[] {
  const out: string[] = [];
  for (const [key, option] of FLAGS) if (opts[key] === true) out.push(option);
  if (opts.fsname !== undefined) out.push(name('fsname', opts.fsname));
  if (opts.subtype !== undefined) out.push(name('subtype', opts.subtype));
  if (opts.maxWriteBytes !== undefined) out.push(bytes('max_write', opts.maxWriteBytes, MAX_WRITE_BYTES_MIN, MAX_WRITE_BYTES_MAX));
  if (opts.maxReadBytes !== undefined) out.push(bytes('max_read', opts.maxReadBytes, 4096, 1 << 30));
  if (opts.maxReadaheadBytes !== undefined) out.push(bytes('max_readahead', opts.maxReadaheadBytes, 0, 1 << 30));
  if (opts.readaheadKib !== undefined) bytes('readaheadKib', opts.readaheadKib, 0, READAHEAD_KIB_MAX);
  for (const [key, option] of TIMEOUTS) {
    const v = opts[key];
    if (v !== undefined) out.push(seconds(option, v));
  }
  return out;
}

/** The single argument fuse-native hands to libfuse: `-o` and the comma-joined list, or ''. */
export function fuseOptionString(opts: FuseMountOptions): string {
  const list = fuseOptionList(opts);
  const s = list.length === 0 ? '' : `-o${list.join(',')}`;
  if (s.length > OPTION_STRING_CHARS_MAX) throw invalid(`mount options are ${s.length} characters; fuse-native takes at most ${OPTION_STRING_CHARS_MAX}`, 'all');
  return s;
}
