import crypto from 'node:crypto';

/**
 * Checks presented tokens against the hub's in constant time. Both sides are hashed first so the
 * comparison always runs over 32 equal-length bytes: `timingSafeEqual` on the raw strings would
 * throw on a length mismatch, and returning early there would tell an attacker the length.
 */
export class TokenCheck {
  private readonly expected: Buffer;

  constructor(token: string) {
    this.expected = digest(token);
  }

  matches(presented: string): boolean {
    return crypto.timingSafeEqual(digest(presented), this.expected);
  }
}

function digest(token: string): Buffer {
  return crypto.createHash('sha256').update(token, 'utf8').digest();
}
