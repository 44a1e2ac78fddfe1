/**
 * A blueprint's plain-text password → a crypt(3) hash for /etc/shadow, the same hash every
 * time: SHA-512-crypt (`$6$rounds=N$SALT$…`, Ulrich Drepper's "Unix crypt using SHA-256 and
 * SHA-512", the scheme `mkpasswd -m sha-512` and glibc/libxcrypt implement), computed here with
 * node:crypto so no host tool decides the image's bytes.
 *
 * Reproducible on purpose: the salt is derived from the blueprint's name and the user's name
 * (`passwordSalt`), not drawn at random, so the same blueprint gives the same hash, the same
 * users.add options, the same cache key and the same image. The trade-off (docs/blueprint.md,
 * "Passwords"): the salt is public to whoever has the blueprint, so an attacker can start a
 * dictionary attack on that one account before seeing the image, and two images built from one
 * blueprint share the hash. Different users and different blueprints still get different salts,
 * so one precomputed table does not serve many images. A user who wants a random salt writes the
 * hash (`mkpasswd`), which is used as it is.
 *
 * Why SHA-512-crypt and not yescrypt (Debian 12's default for new passwords): pam_unix on Debian,
 * Fedora and RHEL verifies both, and SHA-512-crypt needs only SHA-512, which Node has. The rounds
 * are raised from the default 5000 to `ROUNDS` to make guessing slower.
 *
 * Pure: no files, no randomness.
 */
import { createHash } from 'node:crypto';

/**
 * The rounds written into every hash (`rounds=N`): ten times crypt's default, about 0.2 s per
 * hash in Node here (each imgmake command that maps the blueprint pays it once per password),
 * and well under a second for pam_unix in a VM under software emulation.
 */
export const ROUNDS = 50_000;

const ALPHABET = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/**
 * The 16-character salt of `user`'s password in blueprint `blueprint`: SHA-256 of a versioned
 * label and both names, each byte mapped onto crypt's alphabet (256 is a multiple of 64, so no
 * character is favoured).
 */
export function passwordSalt(blueprint: string, user: string): string {
  const h = createHash('sha256').update(`imgmake password salt v1\0${blueprint}\0${user}`).digest();
  let s = '';
  for (let i = 0; i < 16; i++) s += ALPHABET[h[i]! % 64];
  return s;
}

/** The hash of `password` for `user` of `blueprint`: `$6$rounds=50000$SALT$…`. */
export function hashPassword(password: string, blueprint: string, user: string): string {
  return sha512Crypt(password, passwordSalt(blueprint, user), ROUNDS);
}

/**
 * SHA-512-crypt of `password` with `salt` (at most 16 characters are used, as crypt does) and
 * `rounds` (1000 … 999999999; 5000 is written without `rounds=`, as crypt writes it).
 */
export function sha512Crypt(password: string, salt: string, rounds = 5000): string {
  if (!Number.isInteger(rounds) || rounds < 1000 || rounds > 999_999_999) throw new Error(`Internal error: sha512Crypt rounds ${rounds}`);
  const P = Buffer.from(password, 'utf8');
  const S = Buffer.from(salt, 'utf8').subarray(0, 16);
  const sha = (...parts: Buffer[]): Buffer => {
    const h = createHash('sha512');
    for (const p of parts) h.update(p);
    return h.digest();
  };
  /** `n` bytes of `block` repeated. */
  const stretch = (block: Buffer, n: number): Buffer => {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i += 64) block.copy(out, i, 0, Math.min(64, n - i));
    return out;
  };

  const B = sha(P, S, P);
  const a = createHash('sha512').update(P).update(S).update(stretch(B, P.length));
  for (let n = P.length; n > 0; n >>= 1) a.update(n & 1 ? B : P);
  const A = a.digest();

  const DP = sha(...Array<Buffer>(P.length).fill(P));
  const Pseq = stretch(DP, P.length);
  const DS = sha(...Array<Buffer>(16 + A[0]!).fill(S));
  const Sseq = stretch(DS, S.length);

  let C = A;
  for (let i = 0; i < rounds; i++) {
    const h = createHash('sha512');
    h.update(i & 1 ? Pseq : C);
    if (i % 3 !== 0) h.update(Sseq);
    if (i % 7 !== 0) h.update(Pseq);
    h.update(i & 1 ? C : Pseq);
    C = h.digest();
  }

  let out = '';
  const b64 = (b2: number, b1: number, b0: number, n: number): void => {
    let w = (C[b2]! << 16) | (C[b1]! << 8) | C[b0]!;
    for (let k = 0; k < n; k++, w >>= 6) out += ALPHABET[w & 0x3f]!;
  };
  // The byte order crypt's encoding uses: 21 groups of three, then the last byte alone.
  const order = [
    [0, 21, 42], [22, 43, 1], [44, 2, 23], [3, 24, 45], [25, 46, 4], [47, 5, 26], [6, 27, 48],
    [28, 49, 7], [50, 8, 29], [9, 30, 51], [31, 52, 10], [53, 11, 32], [12, 33, 54], [34, 55, 13],
    [56, 14, 35], [15, 36, 57], [37, 58, 16], [59, 17, 38], [18, 39, 60], [40, 61, 19], [62, 20, 41],
  ] as const;
  for (const [x, y, z] of order) b64(x, y, z, 4);
  const last = C[63]!;
  out += ALPHABET[last & 0x3f]! + ALPHABET[last >> 6]!;
  return `$6$${rounds === 5000 ? '' : `rounds=${rounds}$`}${S.toString('utf8')}$${out}`;
}
