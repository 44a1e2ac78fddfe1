# systemd.units: enable, disable, mask and set the default target offline, as
# `systemctl --root=TREE` would, without running anything from the tree. Sourced after the
# prelude; $RUN is the run directory (holds install.awk).

# Where systemd looks for unit files, first match wins (the ones an image can hold: no /run).
UNIT_PATH='/etc/systemd/system /usr/local/lib/systemd/system /usr/lib/systemd/system /lib/systemd/system'

# find_unit NAME: NAME in the unit path (an instance falls back to its template, after every
# directory was searched for the instance itself). Sets FOUND (the image path: what links point
# to), FILE (its ./ path in the tree, links followed), MASKED (yes: a link to /dev/null) and REAL
# (the unit's own name when FOUND is an alias link to another unit, else empty). Fails if none.
find_unit() {
  MASKED=
  REAL=
  case $1 in
    *@?*.*) _try="$1 ${1%%@*}@.${1##*.}" ;;
    *) _try=$1 ;;
  esac
  for _n in $_try; do
    for _d in $UNIT_PATH; do
      _l=$(in_tree "$_d/$_n")
      if [ -L "$_l" ]; then
        _t=$(readlink "$_l")
        if [ "$_t" = /dev/null ]; then FOUND=$_d/$_n; MASKED=yes; return 0; fi
      fi
      _f=$(in_tree "$_d/$_n" follow)
      if [ -f "$_f" ]; then
        FOUND=$_d/$_n
        FILE=$_f
        if [ -L "$_l" ] && [ "${_t##*/}" != "$_n" ]; then REAL=${_t##*/}; fi
        return 0
      fi
    done
  done
  return 1
}

unknown() {
  case $2 in
    *@?*.*) die "$1: unknown unit $2: neither it nor ${2%%@*}@.${2##*.} is in /etc/systemd/system, /usr/local/lib/systemd/system, /usr/lib/systemd/system or /lib/systemd/system of the tree" ;;
    *) die "$1: unknown unit $2: it is in none of /etc/systemd/system, /usr/local/lib/systemd/system, /usr/lib/systemd/system, /lib/systemd/system of the tree" ;;
  esac
}

# install_info NAME: install.awk's lines for FILE read as NAME, into /tmp/install.
install_info() {
  if ! U_NAME=$1 awk -f "$RUN/install.awk" "$FILE" > /tmp/install; then
    die "$(sed -n 's/^error //p' /tmp/install)"
  fi
}

# for_units VERB FUNC NAME...: FUNC UNIT for each NAME and each unit FUNC adds to QUEUE (from
# Also=), once each; every one must be in the unit path, and an alias stands for its unit.
for_units() {
  _verb=$1
  _fn=$2
  shift 2
  QUEUE="$*"
  _seen=' '
  while [ -n "$QUEUE" ]; do
    set -- $QUEUE
    _u=$1
    shift
    QUEUE="$*"
    case $_seen in *" $_u "*) continue ;; esac
    _seen="$_seen$_u "
    find_unit "$_u" || unknown "$_verb" "$_u"
    if [ -n "$REAL" ]; then
      echo "$_verb: $_u is an alias ($FOUND) of $REAL: ${_verb%e}ing $REAL"
      _u=$REAL
      find_unit "$_u" || unknown "$_verb" "$_u"
    fi
    "$_fn" "$_u"
  done
}

# unit_enable NAME...: the links systemctl enable makes, for NAME and what Also= names.
unit_enable() {
  _direct=" $* "
  for_units enable enable_one "$@"
}

# enable_one UNIT: UNIT was found (FOUND, FILE); make its links.
enable_one() {
  _u=$1
  [ -z "$MASKED" ] || die "enable: $_u is masked: $FOUND is a link to /dev/null"
  install_info "$_u"
  _how=direct
  case $_direct in *" $_u "*) ;; *) _how=also ;; esac
  if [ "$(cat /tmp/install)" = template ]; then
    [ $_how = also ] && { echo "enable: skipping $_u (from Also=): a template without DefaultInstance="; return 0; }
    die "enable: $_u is a template without DefaultInstance=: name an instance, such as ${_u%%@*}@NAME.${_u##*.}"
  fi
  if [ "$(wc -l < /tmp/install)" -le 1 ]; then
    [ $_how = also ] && { echo "enable: skipping $_u (from Also=): it has no [Install] section"; return 0; }
    die "enable: $_u ($FOUND) has no [Install] section (WantedBy=, RequiredBy=, UpheldBy=, Alias=, Also=): it cannot be enabled; it starts when another unit pulls it in"
  fi
  _eff=
  while read -r _k _v; do
    case $_k in
      name) _eff=$_v ;;
      wanted) link "$FOUND" "/etc/systemd/system/$_v.wants/$_eff" ;;
      required) link "$FOUND" "/etc/systemd/system/$_v.requires/$_eff" ;;
      upheld) link "$FOUND" "/etc/systemd/system/$_v.upholds/$_eff" ;;
      alias)
        [ "$_v" != "$_eff" ] || continue
        _p=$(in_tree "/etc/systemd/system/$_v")
        if [ -e "$_p" ] && [ ! -L "$_p" ]; then die "enable: alias $_v of $_u: /etc/systemd/system/$_v is a file, not replacing it"; fi
        link "$FOUND" "/etc/systemd/system/$_v"
        ;;
      also) QUEUE="$QUEUE $_v" ;;
    esac
  done < /tmp/install
}

# unit_disable NAME...: removes what enabling made: every link named after the unit (for a
# template, after any of its instances that points to it) in /etc/systemd/system/*.wants,
# *.requires and *.upholds, and its Alias= links; then the same for Also= units.
unit_disable() {
  _sd=$(in_tree /etc/systemd/system follow)
  for_units disable disable_one "$@"
}

# disable_one UNIT: UNIT was found (FOUND, FILE, MASKED); remove its links.
disable_one() {
  _u=$1
  : > /tmp/install
  [ -n "$MASKED" ] || install_info "$_u"
  for _l in "$_sd"/*.wants/* "$_sd"/*.requires/* "$_sd"/*.upholds/*; do
    [ -L "$_l" ] || continue
    _b=${_l##*/}
    case $_u in
      *@.*)
        case $_b in "${_u%%@*}"@*".${_u##*.}") ;; *) continue ;; esac
        _t=$(readlink "$_l")
        [ "$_b" = "$_u" ] || [ "${_t##*/}" = "$_u" ] || continue
        ;;
      *) [ "$_b" = "$_u" ] || continue ;;
    esac
    rm -f "$_l"
  done
  while read -r _k _v; do
    case $_k in
      alias)
        _p=$(in_tree "/etc/systemd/system/$_v")
        if [ -L "$_p" ]; then rm -f "$_p"; fi
        ;;
      also) QUEUE="$QUEUE $_v" ;;
    esac
  done < /tmp/install
}

# unit_mask NAME: /etc/systemd/system/NAME → /dev/null (never over a unit file there).
unit_mask() {
  find_unit "$1" || unknown mask "$1"
  _p=$(in_tree "/etc/systemd/system/$1")
  if [ -e "$_p" ] && [ ! -L "$_p" ]; then die "mask: /etc/systemd/system/$1 is a unit file; masking would replace it"; fi
  link /dev/null "/etc/systemd/system/$1"
}

# unit_default NAME: /etc/systemd/system/default.target → NAME's file.
unit_default() {
  find_unit "$1" || unknown default_target "$1"
  [ -z "$MASKED" ] || die "default_target: $1 is masked: $FOUND is a link to /dev/null"
  link "$FOUND" /etc/systemd/system/default.target
}
