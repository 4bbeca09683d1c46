#!/bin/sh
# Remove a Control Room installed with install.sh; your data (hubs, agents, renders in
# ~/.local/share/controlroom) stays.
#
#   ./uninstall.sh                 the per-user install
#   sudo ./uninstall.sh --system   the system-wide one
set -eu

MODE=user
QUIET=""
for arg in "$@"; do
    case "$arg" in
        --system) MODE=system ;;
        --user) MODE=user ;;
        --quiet) QUIET=1 ;;
        -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "uninstall.sh: unknown option $arg" >&2; exit 2 ;;
    esac
done

if [ "$MODE" = system ]; then
    PREFIX=/opt/controlroom
else
    PREFIX="$HOME/.local/opt/controlroom"
fi

if [ ! -f "$PREFIX/installed-files" ]; then
    echo "uninstall.sh: no Control Room installed by install.sh in $PREFIX" >&2
    exit 1
fi
while IFS= read -r file; do
    [ -n "$file" ] && rm -f "$file"
done < "$PREFIX/installed-files"
rm -rf "$PREFIX"
[ -n "$QUIET" ] || echo "Control Room removed from $PREFIX; your data is kept"
