# users.add: edits the tree's user database (passwd, shadow, group, gshadow) as the plan says.
#
# Everything happens in BEGIN, reading with getline, so no input order matters. ENVIRON gives
# PASSWD, SHADOW, GROUP, GSHADOW (empty: none) — the ./ paths of the tree's files —, PLAN, OUT
# (a directory for the new files) and DAYS (SOURCE_DATE_EPOCH in days, shadow's lastchg).
#
# PLAN, one operation a line, tab-separated; an optional field is empty when not given, or "="
# followed by the value:
#   group  NAME  GID  SYSTEM(0|1)
#   user   NAME  UID  GID  GROUPNAME  GROUPS(a,b)  HOME  SHELL  HASH  GECOS  SYSTEM  KEYS(index|-)
# Writes OUT/passwd, OUT/shadow, OUT/group, OUT/gshadow and OUT/homes (one line a user:
# NAME UID GID HOME MAKE KEYS, tab-separated; MAKE: skel, empty or no — whether a missing home is
# made, with /etc/skel's files or without), or OUT/error and exits 1. POSIX awk.

function fail(msg) {
  print "users.add: " msg > (OUT "/error")
  exit 1
}

function given(v) { return substr(v, 1, 1) == "=" }
function value(v) { return substr(v, 2) }

function join(f, n,   s, k) {
  s = f[1]
  for (k = 2; k <= n; k++) s = s ":" f[k]
  return s
}

# load(path, which): the lines of one database file into L[which, i], indexed by name.
function load(path, which,   line, r, f, n) {
  if (path == "") return
  while ((r = (getline line < path)) > 0) {
    L[which, ++N[which]] = line
    if (line ~ /^[#+-]/ || line == "") continue
    n = split(line, f, ":")
    IDX[which, f[1]] = N[which]
    if (which == "passwd" && n >= 7) UIDS[f[3]] = f[1]
    if (which == "group" && n >= 3) GIDS[f[3]] = f[1]
  }
  if (r < 0) fail("cannot read " path)
  close(path)
}

function has(which, name) { return (which SUBSEP name) in IDX }

function field(which, name, k,   f) {
  split(L[which, IDX[which, name]], f, ":")
  return f[k]
}

function append(which, name, line) {
  L[which, ++N[which]] = line
  IDX[which, name] = N[which]
}

# The first id of the range that no entry and no id given in the plan uses.
function free_id(kind, sys,   id, lo, hi) {
  lo = sys ? 100 : 1000
  hi = sys ? 999 : 59999
  for (id = lo; id <= hi; id++) {
    if (kind == "uid" && !(id in UIDS) && !(id in RESERVED_UID)) return id
    if (kind == "gid" && !(id in GIDS) && !(id in RESERVED_GID)) return id
  }
  fail("no free " kind " left in " lo "-" hi)
}

function group_new(name, gid) {
  append("group", name, name ":x:" gid ":")
  GIDS[gid] = name
  if (GSHADOW != "") append("gshadow", name, name ":!::")
}

# The member list (4th field) of a group or gshadow line gets NAME, once.
function add_member(which, group, name,   f, n, m, k, list) {
  if (!has(which, group)) {
    if (which == "gshadow") append("gshadow", group, group ":!::")
    else fail("internal error: no group " group)
  }
  n = split(L[which, IDX[which, group]], f, ":")
  while (n < 4) f[++n] = ""
  m = split(f[4], list, ",")
  for (k = 1; k <= m; k++) if (list[k] == name) return
  f[4] = f[4] == "" ? name : f[4] "," name
  L[which, IDX[which, group]] = join(f, n)
}

function do_group(name, gid, sys,   old) {
  if (has("group", name)) {
    old = field("group", name, 3)
    if (given(gid) && value(gid) != old) fail("group " name " exists with gid " old ", not " value(gid) " (users.add does not renumber groups)")
    return
  }
  if (given(gid)) {
    gid = value(gid)
    if (gid in GIDS) fail("group " name ": gid " gid " is taken by group " GIDS[gid])
  } else gid = free_id("gid", sys)
  group_new(name, gid)
}

function do_user(name, uid, gid, gname, groups, home, shell, hash, gecos, sys, keys,   p, n, old, u, g, h, sh, gc, s, m, list, k, make) {
  old = has("passwd", name)
  if (old) {
    n = split(L["passwd", IDX["passwd", name]], p, ":")
    if (given(uid) && value(uid) != p[3]) fail("user " name " exists with uid " p[3] ", not " value(uid) " (users.add does not renumber users)")
    u = p[3]
  } else if (given(uid)) {
    u = value(uid)
    if (u in UIDS) fail("user " name ": uid " u " is taken by user " UIDS[u])
  } else u = free_id("uid", sys)

  # The primary group: named, by number, kept, or a group of the user's own name.
  if (given(gname)) {
    if (!has("group", value(gname))) fail("user " name ": primary group " value(gname) " does not exist in /etc/group (list it under groups: to create it)")
    g = field("group", value(gname), 3)
  } else if (given(gid)) {
    g = value(gid)
    if (!(g in GIDS)) {
      if (has("group", name)) fail("user " name ": no group has gid " g ", and group " name " exists with gid " field("group", name, 3))
      group_new(name, g)
    }
  } else if (old) g = p[4]
  else if (has("group", name)) g = field("group", name, 3)
  else {
    g = ((u in GIDS) || (u in RESERVED_GID)) ? free_id("gid", sys) : u
    group_new(name, g)
  }

  if (old) {
    gc = given(gecos) ? value(gecos) : p[5]
    h = given(home) ? value(home) : p[6]
    sh = given(shell) ? value(shell) : p[7]
    L["passwd", IDX["passwd", name]] = name ":" p[2] ":" u ":" g ":" gc ":" h ":" sh
  } else {
    gc = given(gecos) ? value(gecos) : ""
    h = given(home) ? value(home) : (sys ? "/nonexistent" : "/home/" name)
    sh = given(shell) ? value(shell) : (sys ? "/usr/sbin/nologin" : "/bin/bash")
    append("passwd", name, name ":x:" u ":" g ":" gc ":" h ":" sh)
    UIDS[u] = name
  }

  if (h == "/nonexistent" && keys != "-") fail("user " name " has ssh_keys but no home (/nonexistent): give it a home")

  if (has("shadow", name)) {
    if (given(hash)) {
      n = split(L["shadow", IDX["shadow", name]], s, ":")
      while (n < 9) s[++n] = ""
      s[2] = value(hash)
      s[3] = DAYS
      L["shadow", IDX["shadow", name]] = join(s, n)
    }
  } else append("shadow", name, name ":" (given(hash) ? value(hash) : (sys ? "*" : "!")) ":" DAYS ":0:99999:7:::")

  m = split(groups, list, ",")
  for (k = 1; k <= m; k++) {
    if (!has("group", list[k])) fail("user " name ": group " list[k] " does not exist in /etc/group (list it under groups: to create it)")
    add_member("group", list[k], name)
    if (GSHADOW != "") add_member("gshadow", list[k], name)
  }
  # A home is made (when missing) for a new user, a home given, or keys to put in it; never
  # for an existing user only joining groups. Only a normal user's gets /etc/skel.
  make = !old || given(home) || keys != "-"
  print name "\t" u "\t" g "\t" h "\t" (make ? (sys ? "empty" : "skel") : "no") "\t" keys > (OUT "/homes")
}

function write(which, path,   i) {
  printf "" > path
  for (i = 1; i <= N[which]; i++) print L[which, i] > path
  close(path)
}

BEGIN {
  OUT = ENVIRON["OUT"]
  DAYS = ENVIRON["DAYS"]
  GSHADOW = ENVIRON["GSHADOW"]
  load(ENVIRON["PASSWD"], "passwd")
  load(ENVIRON["SHADOW"], "shadow")
  load(ENVIRON["GROUP"], "group")
  load(GSHADOW, "gshadow")
  np = 0
  while ((r = (getline line < ENVIRON["PLAN"])) > 0) PLAN[++np] = line
  if (r < 0) fail("cannot read the plan")
  # Ids given for new entries are kept free while others are allocated, whatever the order.
  for (i = 1; i <= np; i++) {
    split(PLAN[i], f, "\t")
    if (f[1] == "group" && given(f[3]) && !has("group", f[2])) RESERVED_GID[value(f[3])] = 1
    if (f[1] == "user" && given(f[3]) && !has("passwd", f[2])) RESERVED_UID[value(f[3])] = 1
    if (f[1] == "user" && given(f[4])) RESERVED_GID[value(f[4])] = 1
  }
  printf "" > (OUT "/homes")
  for (i = 1; i <= np; i++) {
    split(PLAN[i], f, "\t")
    if (f[1] == "group") do_group(f[2], f[3], f[4] == "1")
    else do_user(f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11] == "1", f[12])
  }
  close(OUT "/homes")
  write("passwd", OUT "/passwd")
  write("shadow", OUT "/shadow")
  write("group", OUT "/group")
  if (GSHADOW != "") write("gshadow", OUT "/gshadow")
}
