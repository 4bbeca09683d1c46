"""Build what ships: the PyInstaller bundle, the tarball and the .deb (``make package``).

    python packaging/package.py bundle            # dist/controlroom/, the one-dir bundle
    python packaging/package.py tarball           # dist/controlroom-VERSION-linux-x86_64.tar.gz
    python packaging/package.py deb [--fast]      # dist/controlroom_VERSION_amd64.deb + lintian
    python packaging/package.py all               # all three (what `make package` runs)

Run it with the project's venv Python (PyInstaller is one of its test dependencies). Each
step prints how long it took and what it made, so a slow or large build shows at once.
Standard library only: the tests import it to build their own package.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "packaging"
LINUX = HERE / "linux"
DIST = ROOT / "dist"
NAME = "controlroom"
#: The .deb installs the bundle here; the tarball's install.sh picks its own prefix.
OPT = Path("/opt/controlroom")
MAINTAINER = "Control Room developers <dev@controlroom.example.org>"


def version() -> str:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return str(tomllib.load(f)["project"]["version"])


def say(message: str) -> None:
    print(f"package: {message}", flush=True)


# -- the bundle ----------------------------------------------------------------------------

def bundle(dist: Path = DIST, work: Path = ROOT / "build" / "pyinstaller") -> Path:
    """Run PyInstaller on the spec; the bundle's directory."""
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
         "--distpath", str(dist), "--workpath", str(work), str(HERE / "controlroom.spec")],
        check=True, cwd=ROOT,
    )
    out = dist / NAME
    say(f"bundle {out} ({size_mib(out):.0f} MiB) in {time.monotonic() - started:.0f} s")
    return out


def apparent_size(path: Path) -> tuple[int, int]:
    """Bytes and entries of a tree: files by their size, symlinks as links (lstat)."""
    if path.is_symlink() or not path.is_dir():
        return path.lstat().st_size, 1
    total = count = 0
    for p in path.rglob("*"):
        if p.is_symlink() or p.is_file():
            total += p.lstat().st_size
            count += 1
    return total, count


def size_mib(path: Path) -> float:
    return apparent_size(path)[0] / 2**20


# -- the pieces both packages share -------------------------------------------------------

def desktop_file(exec_path: str) -> str:
    """The menu entry, pointing at the windowed executable at ``exec_path``."""
    text = (LINUX / "controlroom.desktop").read_text()
    return re.sub(r"^(Exec|TryExec)=.*$", lambda m: f"{m.group(1)}={exec_path}", text,
                  flags=re.MULTILINE)


def validate_desktop(path: Path) -> None:
    """``desktop-file-validate`` on the file, when the tool is installed."""
    tool = shutil.which("desktop-file-validate")
    if tool is None:
        say("desktop-file-validate not found (apt-get install desktop-file-utils); "
            "the .desktop file was not checked")
        return
    result = subprocess.run([tool, str(path)], capture_output=True, text=True)
    if result.returncode != 0 or result.stdout.strip():
        raise SystemExit(f"package: {path.name} is not valid:\n{result.stdout}{result.stderr}")


def icons(into: Path) -> list[Path]:
    """The hicolor icons under ``into`` (``share/icons/hicolor/...``)."""
    svg = into / "icons" / "hicolor" / "scalable" / "apps" / f"{NAME}.svg"
    svg.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / "resources" / "icons" / "controlroom.svg", svg)
    svg.chmod(0o644)
    return [svg]


def copy_bundle(source: Path, target: Path) -> None:
    """The bundle, symlinks kept (PyInstaller 6 puts some in a one-dir tree)."""
    shutil.copytree(source, target, symlinks=True)


# -- the tarball ---------------------------------------------------------------------------

def stage_tarball(bundle_dir: Path, stage: Path) -> Path:
    """The tarball's tree under ``stage``: the bundle, the menu entry, the icon and the
    install scripts, as ``tar`` packs it (and as the tests run install.sh from it)."""
    ver = version()
    top = stage / f"{NAME}-{ver}"
    shutil.rmtree(top, ignore_errors=True)
    copy_bundle(bundle_dir, top / NAME)
    share = top / "share"
    (share / "applications").mkdir(parents=True)
    desktop = share / "applications" / f"{NAME}.desktop"
    desktop.write_text(desktop_file(str(OPT / "ControlRoom")))  # install.sh rewrites it
    validate_desktop(desktop)
    icons(share)
    for script in ("install.sh", "uninstall.sh"):
        shutil.copyfile(LINUX / script, top / script)
        (top / script).chmod(0o755)
    (top / "VERSION").write_text(ver + "\n")
    (top / "DEPENDS").write_text(" ".join(depends(bundle_dir)) + "\n")
    return top


def tarball(bundle_dir: Path, out_dir: Path = DIST) -> Path:
    started = time.monotonic()
    stage = out_dir / "stage-tar"
    top = stage_tarball(bundle_dir, stage)
    target = out_dir / f"{NAME}-{version()}-linux-x86_64.tar.gz"
    with tarfile.open(target, "w:gz", compresslevel=6) as tar:
        tar.add(top, arcname=top.name)  # tarfile keeps symlinks as symlinks
    shutil.rmtree(stage)
    say(f"tarball {target} ({target.stat().st_size / 2**20:.0f} MiB) in "
        f"{time.monotonic() - started:.0f} s")
    return target


# -- the .deb ------------------------------------------------------------------------------

def elf_files(tree: Path) -> Iterable[Path]:
    for p in tree.rglob("*"):
        if p.is_file() and not p.is_symlink():
            with open(p, "rb") as f:
                if f.read(4) == b"\x7fELF":
                    yield p


def system_libraries(tree: Path) -> tuple[set[str], set[str]]:
    """The libraries outside the bundle its binaries load, and those ``ldd`` cannot find.

    Both by path, as ``ldd`` resolves them on this (the build) machine.
    """
    found: set[str] = set()
    missing: set[str] = set()
    inside = str(tree.resolve())
    env = dict(os.environ, LD_LIBRARY_PATH=f"{tree / '_internal'}:"
               f"{tree / '_internal' / 'PySide6' / 'Qt' / 'lib'}")
    for path in elf_files(tree):
        result = subprocess.run(["ldd", str(path)], capture_output=True, text=True, env=env)
        for line in result.stdout.splitlines():
            if "=> not found" in line:
                missing.add(line.split("=>")[0].strip())
                continue
            match = re.search(r"=> (/\S+)", line)
            if match and not match.group(1).startswith(inside):
                found.add(os.path.realpath(match.group(1)))
    return found, missing


def owning_packages(paths: set[str]) -> set[str]:
    """The Debian packages that hold ``paths`` (``dpkg -S``), without the arch suffix."""
    if not paths:
        return set()
    result = subprocess.run(["dpkg", "-S", *sorted(paths)], capture_output=True, text=True)
    packages: set[str] = set()
    for line in result.stdout.splitlines():
        owners = line.split(": ", 1)[0]
        packages |= {o.strip().split(":")[0] for o in owners.split(",")}
    # /usr-merged systems list /lib paths under /usr/lib: ask again for those dpkg missed
    unowned = [p for p in paths if p not in result.stdout]
    for path in unowned:
        alt = path.replace("/usr/lib/", "/lib/", 1) if path.startswith("/usr/lib/") else \
            path.replace("/lib/", "/usr/lib/", 1)
        again = subprocess.run(["dpkg", "-S", alt], capture_output=True, text=True)
        for line in again.stdout.splitlines():
            packages |= {o.strip().split(":")[0] for o in line.split(": ", 1)[0].split(",")}
    return packages


@functools.cache
def depends(bundle_dir: Path) -> list[str]:
    """The package's Depends: whatever the bundle's binaries load from the system, plus
    PortAudio (loaded by name at run time, so ``ldd`` never sees it)."""
    found, missing = system_libraries(bundle_dir)
    if missing:
        say("libraries no installed package provides (the plugins that need them are "
            f"skipped at run time): {', '.join(sorted(missing))}")
    packages = owning_packages(found) | {"libportaudio2", "libxcb-cursor0"}
    return sorted(packages)


def control(ver: str, installed_kib: int, deps: list[str]) -> str:
    return f"""Package: {NAME}
Version: {ver}
Section: sound
Priority: optional
Architecture: amd64
Maintainer: {MAINTAINER}
Installed-Size: {installed_kib}
Depends: {", ".join(deps)}
Homepage: https://controlroom.example.org/
Description: operator console for a networked audio studio and its render farm
 Control Room shows live component health, audio task and render-farm job
 progress with audio meters, and answers a flow's human-in-the-loop locks.
 The same program runs headless as the hub, the audio engine, instance
 drivers, render-farm runners and extra flow nodes.
"""


def changelog(ver: str) -> str:
    return (f"{NAME} ({ver}) unstable; urgency=medium\n\n"
            "  * Control Room, the console, the hub and every agent in one PyInstaller\n"
            "    bundle under /opt/controlroom.\n\n"
            f" -- {MAINTAINER}  Fri, 04 Dec 2026 12:00:00 +0000\n")


def deb(bundle_dir: Path, out_dir: Path = DIST, fast: bool = False,
        check: bool = True) -> Path:
    """``dpkg-deb`` a package installing under /opt; ``lintian`` it unless ``check`` is off.

    ``fast`` compresses with gzip -1 (seconds) instead of xz (about 2 minutes here).
    """
    started = time.monotonic()
    ver = version()
    stage = out_dir / "stage-deb"
    shutil.rmtree(stage, ignore_errors=True)
    copy_bundle(bundle_dir, stage / OPT.relative_to("/"))
    usr = stage / "usr"
    (usr / "bin").mkdir(parents=True)
    (usr / "bin" / NAME).symlink_to(OPT / NAME)
    share = usr / "share"
    (share / "applications").mkdir(parents=True)
    desktop = share / "applications" / f"{NAME}.desktop"
    desktop.write_text(desktop_file(str(OPT / "ControlRoom")))
    validate_desktop(desktop)
    icons(share)
    doc = share / "doc" / NAME
    doc.mkdir(parents=True)
    shutil.copyfile(LINUX / "copyright", doc / "copyright")
    with gzip.GzipFile(doc / "changelog.gz", "wb", mtime=0) as gz:
        gz.write(changelog(ver).encode())
    overrides = share / "lintian" / "overrides" / NAME
    overrides.parent.mkdir(parents=True)
    shutil.copyfile(LINUX / "lintian-overrides", overrides)
    debian = stage / "DEBIAN"
    debian.mkdir()
    shutil.copyfile(LINUX / "prerm", debian / "prerm")
    installed = sum(p.lstat().st_size for p in stage.rglob("*")) // 1024
    (debian / "control").write_text(control(ver, installed, depends(bundle_dir)))
    for path in stage.rglob("*"):  # root-owned, readable by all, as a package must be
        if path.is_symlink():
            continue
        executable = path.is_dir() or (os.access(path, os.X_OK) and ".so" not in path.name)
        path.chmod(0o755 if executable else 0o644)  # libraries need no execute bit
    (debian / "prerm").chmod(0o755)
    target = out_dir / f"{NAME}_{ver}_amd64.deb"
    compression = ["-Zgzip", "-z1"] if fast else ["-Zxz"]
    subprocess.run(["dpkg-deb", "--root-owner-group", *compression, "--build", str(stage),
                    str(target)], check=True, stdout=subprocess.DEVNULL)
    shutil.rmtree(stage)
    say(f"deb {target} ({target.stat().st_size / 2**20:.0f} MiB) in "
        f"{time.monotonic() - started:.0f} s")
    if check:
        lintian(target)
    return target


def lintian(target: Path) -> None:
    """``lintian`` on the package: errors fail the build, warnings are shown."""
    tool = shutil.which("lintian")
    if tool is None:
        raise SystemExit("package: lintian not found; apt-get install lintian")
    started = time.monotonic()
    result = subprocess.run([tool, "--fail-on", "error", str(target)], capture_output=True,
                            text=True)
    output = (result.stdout + result.stderr).strip()
    if output:
        print(output)
    if result.returncode != 0:
        raise SystemExit(f"package: lintian found errors in {target.name}")
    say(f"lintian: no errors ({time.monotonic() - started:.0f} s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="package.py", description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=("bundle", "tarball", "deb", "all"))
    parser.add_argument("--dist", type=Path, default=DIST, help="where packages go")
    parser.add_argument("--fast", action="store_true", help="gzip -1 instead of xz for the .deb")
    parser.add_argument("--no-lintian", action="store_true")
    args = parser.parse_args(argv)
    dist: Path = args.dist
    dist.mkdir(parents=True, exist_ok=True)
    bundle_dir = dist / NAME
    if args.what in ("bundle", "all") or not (bundle_dir / NAME).exists():
        bundle_dir = bundle(dist)
    if args.what in ("tarball", "all"):
        tarball(bundle_dir, dist)
    if args.what in ("deb", "all"):
        deb(bundle_dir, dist, fast=args.fast, check=not args.no_lintian)
    return 0


if __name__ == "__main__":
    sys.exit(main())
