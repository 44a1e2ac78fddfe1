# systemd.units: the [Install] section of one unit file, read as `systemctl enable` reads it.
#
# Input: the unit file. ENVIRON["U_NAME"]: the name being acted on: plain (ssh.service), a
# template (getty@.service) or an instance (serial-getty@ttyS0.service).
# Output, one item a line, specifiers (%n %N %p %i %j %%) expanded:
#   name EFFECTIVE      the unit the links are named after (a template: its DefaultInstance)
#   wanted TARGET       WantedBy=     → /etc/systemd/system/TARGET.wants/EFFECTIVE
#   required TARGET     RequiredBy=   → TARGET.requires/
#   upheld TARGET       UpheldBy=     → TARGET.upholds/
#   alias NAME          Alias=        → /etc/systemd/system/NAME
#   also UNIT           Also=         → enabled (disabled) with it
# or the single line "template" for a template without DefaultInstance=, or "error MESSAGE"
# (exit 1) for a specifier or a name it cannot handle. POSIX awk (mawk, busybox).

function trim(s) {
  sub(/^[ \t]+/, "", s)
  sub(/[ \t]+$/, "", s)
  return s
}

# An empty assignment resets the list, as in systemd.
function add(key, v,   n, parts, k) {
  if (v == "") { cnt[key] = 0; return }
  n = split(v, parts, /[ \t]+/)
  for (k = 1; k <= n; k++) if (parts[k] != "") list[key, ++cnt[key]] = parts[k]
}

function expand(s,   out, c, i) {
  out = ""
  for (i = 1; i <= length(s); i++) {
    c = substr(s, i, 1)
    if (c != "%") { out = out c; continue }
    c = substr(s, ++i, 1)
    if (c == "%") out = out "%"
    else if (c == "n") out = out full
    else if (c == "N") out = out substr(full, 1, length(full) - length(suffix))
    else if (c == "p") out = out prefix
    else if (c == "i") out = out inst
    else if (c == "j") out = out lastdash
    else { print "error " unit ": unsupported specifier %" c " in [Install] " s; exit 1 }
  }
  return out
}

BEGIN { unit = ENVIRON["U_NAME"]; sec = ""; pending = ""; definst = "" }

{
  line = pending $0
  pending = ""
  if (line ~ /\\$/) { pending = substr(line, 1, length(line) - 1) " "; next }
  t = trim(line)
  if (t == "" || t ~ /^[#;]/) next
  if (t ~ /^\[.*\]$/) { sec = t; next }
  if (sec != "[Install]") next
  eq = index(t, "=")
  if (eq == 0) next
  key = trim(substr(t, 1, eq - 1))
  val = trim(substr(t, eq + 1))
  if (key == "WantedBy") add("wanted", val)
  else if (key == "RequiredBy") add("required", val)
  else if (key == "UpheldBy") add("upheld", val)
  else if (key == "Alias") add("alias", val)
  else if (key == "Also") add("also", val)
  else if (key == "DefaultInstance") definst = val
}

END {
  dot = 0
  for (i = length(unit); i > 0; i--) if (substr(unit, i, 1) == ".") { dot = i; break }
  suffix = substr(unit, dot)
  at = index(unit, "@")
  if (at) { prefix = substr(unit, 1, at - 1); inst = substr(unit, at + 1, dot - at - 1) }
  else { prefix = substr(unit, 1, dot - 1); inst = "" }
  lastdash = prefix
  while ((d = index(lastdash, "-")) > 0) lastdash = substr(lastdash, d + 1)
  if (at && inst == "") {
    if (definst == "") { print "template"; exit 0 }
    inst = definst
  }
  full = at ? prefix "@" inst suffix : unit
  print "name " full
  nkeys = split("wanted required upheld alias also", keys, " ")
  for (k = 1; k <= nkeys; k++) {
    for (i = 1; i <= cnt[keys[k]]; i++) {
      v = expand(list[keys[k], i])
      if (v !~ /^[A-Za-z0-9:_.@\\-]+$/ || v ~ /^\.\.?$/) { print "error " unit ": [Install] names a unit that is not a unit name: " v; exit 1 }
      print keys[k] " " v
    }
  }
}
