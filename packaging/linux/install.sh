#!/bin/sh
# Install Control Room from this unpacked tarball.
#
#   ./install.sh                 for you alone: ~/.local/opt/controlroom, the command
#                                ~/.local/bin/controlroom and a menu entry
#   sudo ./install.sh --system   for everyone: /opt/controlroom, /usr/local/bin/controlroom
#                                and a menu entry under /usr/local/share
#
# uninstall.sh (also copied into the install) removes exactly what this wrote, and
# never the data you made: ~/.local/share/controlroom stays.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
MODE=user
case "${1:-}" in
    "") ;;
    --system) MODE=system ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option $1 (use --system, or nothing for a per-user install)" >&2
       exit 2 ;;
esac

if [ "$MODE" = system ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install.sh --system writes to /opt and /usr/local: run it as root" \
             "(sudo ./install.sh --system), or without --system for yourself" >&2
        exit 1
    fi
    if command -v dpkg-query >/dev/null 2>&1 \
        && dpkg-query -W -f='${Status}' controlroom 2>/dev/null | grep -q 'install ok'; then
        echo "install.sh: the controlroom .deb is installed in /opt/controlroom;" \
             "remove it first (sudo apt-get remove controlroom) or install per-user" >&2
        exit 1
    fi
    PREFIX=/opt/controlroom
    BIN=/usr/local/bin
    SHARE=/usr/local/share
else
    PREFIX="$HOME/.local/opt/controlroom"
    BIN="$HOME/.local/bin"
    SHARE="${XDG_DATA_HOME:-$HOME/.local/share}"
fi

if [ -e "$PREFIX" ]; then
    echo "install.sh: replacing the Control Room in $PREFIX (your data is not touched)"
    "$PREFIX/uninstall.sh" --quiet ${MODE:+--$MODE} 2>/dev/null || rm -rf "$PREFIX"
fi

mkdir -p "$(dirname "$PREFIX")" "$BIN" "$SHARE/applications" \
         "$SHARE/icons/hicolor/scalable/apps"
# cp -a keeps the symlinks PyInstaller puts inside the bundle
cp -a "$HERE/controlroom" "$PREFIX"
cp "$HERE/uninstall.sh" "$PREFIX/uninstall.sh"
cp "$HERE/VERSION" "$PREFIX/VERSION"
ln -sfn "$PREFIX/controlroom" "$BIN/controlroom"
sed -e "s|^Exec=.*|Exec=$PREFIX/ControlRoom|" -e "s|^TryExec=.*|TryExec=$PREFIX/ControlRoom|" \
    "$HERE/share/applications/controlroom.desktop" > "$SHARE/applications/controlroom.desktop"
cp "$HERE/share/icons/hicolor/scalable/apps/controlroom.svg" \
   "$SHARE/icons/hicolor/scalable/apps/controlroom.svg"
# What uninstall.sh removes besides $PREFIX itself.
cat > "$PREFIX/installed-files" <<LIST
$BIN/controlroom
$SHARE/applications/controlroom.desktop
$SHARE/icons/hicolor/scalable/apps/controlroom.svg
LIST
command -v update-desktop-database >/dev/null 2>&1 \
    && update-desktop-database -q "$SHARE/applications" 2>/dev/null || true

# The libraries the bundle loads from the system (the .deb declares them in Depends).
if command -v dpkg-query >/dev/null 2>&1 && [ -f "$HERE/DEPENDS" ]; then
    missing=""
    for pkg in $(cat "$HERE/DEPENDS"); do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok' \
            || missing="$missing $pkg"
    done
    if [ -n "$missing" ]; then
        echo "install.sh: Control Room needs these system packages:$missing"
        echo "install.sh: install them with: sudo apt-get install$missing"
    fi
fi

echo "Control Room $(cat "$HERE/VERSION") installed in $PREFIX"
echo "Start it from your desktop's menu, or run: $BIN/controlroom"
case ":$PATH:" in
    *":$BIN:"*) ;;
    *) echo "($BIN is not on your PATH yet: log out and in, or add it)" ;;
esac
