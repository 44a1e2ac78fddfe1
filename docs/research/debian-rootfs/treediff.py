#!/usr/bin/env python3
"""Compare two trees: paths only in one, and per-path differences in type/mode/owner/content/xattrs/mtime.
usage: treediff.py A B [--mtime]"""
import os, sys, hashlib, stat
def walk(root):
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n); rel = os.path.relpath(p, root); st = os.lstat(p)
            if stat.S_ISDIR(st.st_mode) and os.path.ismount(p): dirs.remove(n) if n in dirs else None
            e = {'mode': oct(st.st_mode), 'own': (st.st_uid, st.st_gid), 'mtime': int(st.st_mtime)}
            if stat.S_ISLNK(st.st_mode): e['c'] = os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                h = hashlib.sha256()
                with open(p, 'rb') as f:
                    for b in iter(lambda: f.read(1 << 20), b''): h.update(b)
                e['c'] = h.hexdigest(); e['size'] = st.st_size
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode): e['c'] = st.st_rdev
            try: e['x'] = sorted((k, os.getxattr(p, k, follow_symlinks=False)) for k in os.listxattr(p, follow_symlinks=False))
            except OSError: e['x'] = None
            out[rel] = e
    return out
a, b = walk(sys.argv[1]), walk(sys.argv[2]); show_mtime = '--mtime' in sys.argv
for p in sorted(set(a) - set(b)): print('only-A ', p)
for p in sorted(set(b) - set(a)): print('only-B ', p)
mt = 0
for p in sorted(set(a) & set(b)):
    d = [k for k in ('mode', 'own', 'c', 'x') if a[p].get(k) != b[p].get(k)]
    if d: print('differ ', p, ','.join('content' if k == 'c' else k for k in d))
    elif a[p]['mtime'] != b[p]['mtime']:
        mt += 1
        if show_mtime: print('mtime  ', p)
print(f'# {len(a)} / {len(b)} entries; {mt} differ only in mtime', file=sys.stderr)
