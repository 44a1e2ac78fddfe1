# imgmake rules: the shell prelude every built-in rule's script starts with (see sh.ts).
set -eu
umask 022

die() { printf '%s\n' "$*" >&2; exit 1; }

# in_tree PATH [follow]: the "./..." path in the tree that image path PATH names, each symlink
# on the way resolved with the tree as its root; the last component too with "follow".
in_tree() {
  _rest=${1#/}; _cur=.; _hops=0
  while [ -n "$_rest" ]; do
    case $_rest in
      */*) _c=${_rest%%/*}; _rest=${_rest#*/} ;;
      *) _c=$_rest; _rest= ;;
    esac
    case $_c in
      '' | .) continue ;;
      ..) [ "$_cur" = . ] || _cur=${_cur%/*}; continue ;;
    esac
    if [ -L "$_cur/$_c" ] && { [ -n "$_rest" ] || [ "${2:-}" = follow ]; }; then
      _hops=$((_hops + 1))
      [ "$_hops" -le 40 ] || die "$1: too many levels of symbolic links"
      _t=$(readlink "$_cur/$_c")
      case $_t in
        /*) _cur=.; _rest=${_t#/}/$_rest ;;
        *) _rest=$_t/$_rest ;;
      esac
    else
      _cur=$_cur/$_c
    fi
  done
  printf '%s\n' "$_cur"
}

# parent_dir PATH: makes sure the directory holding image path PATH exists (0755, root) and
# prints the "./..." path of PATH with its directory resolved.
parent_dir() {
  _p=$(in_tree "$1")
  _d=${_p%/*}
  [ -e "$_d" ] || mkdir -p "$_d"
  [ -d "$_d" ] || die "$1: $(printf '%s' "$_d" | cut -c2-) is not a directory"
  printf '%s\n' "$_p"
}

# put SRC PATH MODE OWNER: installs a copy of file SRC at image path PATH, replacing whatever
# file or link is there (never writing through it), with MODE and OWNER (UID:GID). One
# `install` (it sets the owner before the mode, so set-id bits stay) and one `mv`: every
# program started costs a stage milliseconds, and rules call this for each file they write.
put() {
  _dst=$(parent_dir "$2")
  [ ! -d "$_dst" ] || [ -L "$_dst" ] || die "$2: is a directory"
  _tmp=${_dst%/*}/.imgmake-new.$$
  install -m "$3" -o "${4%%:*}" -g "${4#*:}" "$1" "$_tmp"
  mv -f -T "$_tmp" "$_dst" # -T: a link to a directory is replaced, not moved into
}

# link TARGET PATH: makes image path PATH a symlink to TARGET, replacing a file or link there.
link() {
  _dst=$(parent_dir "$2")
  [ ! -d "$_dst" ] || [ -L "$_dst" ] || die "$2: is a directory; a symlink cannot replace it"
  _tmp=${_dst%/*}/.imgmake-new.$$
  ln -s -- "$1" "$_tmp" # --: a target may start with a dash
  mv -f -T "$_tmp" "$_dst"
}
