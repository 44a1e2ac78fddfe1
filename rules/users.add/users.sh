# users.add: the filesystem side, after users.awk planned the database. Sourced after the
# prelude; $RUN is the run directory (users.awk, plan, keys-N).

# db_file NAME: the ./ path of /etc/NAME in the tree (links followed), or empty when missing.
db_file() {
  _p=$(in_tree "/etc/$1" follow)
  if [ -f "$_p" ]; then printf '%s\n' "$_p"; fi
}

# install_db NAME: /tmp/users/NAME over /etc/NAME, keeping the old file's mode and owner.
install_db() {
  _old=$(db_file "$1")
  put "/tmp/users/$1" "/etc/$1" "$(stat -c %a "$_old")" "$(stat -c %u:%g "$_old")"
}

users_db() {
  PASSWD=$(db_file passwd)
  GROUP=$(db_file group)
  SHADOW=$(db_file shadow)
  GSHADOW=$(db_file gshadow)
  [ -n "$PASSWD" ] || die "users.add: /etc/passwd is missing from the tree: users.add edits an existing user database (a Debian root has one from base-passwd)"
  [ -n "$GROUP" ] || die "users.add: /etc/group is missing from the tree"
  [ -n "$SHADOW" ] || die "users.add: /etc/shadow is missing from the tree"
  rm -rf /tmp/users
  mkdir /tmp/users
  if ! PASSWD=$PASSWD SHADOW=$SHADOW GROUP=$GROUP GSHADOW=$GSHADOW PLAN="$RUN/plan" OUT=/tmp/users \
      DAYS=$((SOURCE_DATE_EPOCH / 86400)) awk -f "$RUN/users.awk"; then
    die "$(cat /tmp/users/error 2>/dev/null || echo 'users.add: awk failed')"
  fi
  install_db passwd
  install_db shadow
  install_db group
  if [ -n "$GSHADOW" ]; then install_db gshadow; fi
}

# users_homes: each user's home when it is missing and users.awk says to make it (0700, the
# user's, with /etc/skel's files for a normal user), and ~/.ssh/authorized_keys (0600 in a
# 0700 .ssh, the user's) when keys were given.
users_homes() {
  _tab=$(printf '\t')
  while IFS=$_tab read -r _name _uid _gid _home _make _keys; do
    [ "$_home" != /nonexistent ] || continue # users.awk refused ssh_keys for it
    [ "$_make" != no ] || continue
    _h=$(parent_dir "$_home")
    [ ! -L "$_h" ] || die "users.add: user $_name: home $_home is a symlink; not following it"
    if [ ! -e "$_h" ]; then
      mkdir "$_h"
      _skel=$(in_tree /etc/skel follow)
      if [ "$_make" = skel ] && [ -d "$_skel" ]; then cp -a "$_skel/." "$_h/"; fi
      chown -hR "$_uid:$_gid" "$_h"
      chmod 0700 "$_h"
    fi
    [ -d "$_h" ] || die "users.add: user $_name: home $_home exists and is not a directory"
    [ "$_keys" != - ] || continue
    _s=$(in_tree "$_home/.ssh")
    [ ! -L "$_s" ] || die "users.add: user $_name: $_home/.ssh is a symlink; not following it"
    [ -d "$_s" ] || mkdir "$_s"
    chown "$_uid:$_gid" "$_s"
    chmod 0700 "$_s"
    put "$RUN/keys-$_keys" "$_home/.ssh/authorized_keys" 0600 "$_uid:$_gid"
  done < /tmp/users/homes
}
