"""Make base images from the host's own Debian packages, without any registry.

Users behind firewalls cannot pull ``busybox`` or ``debian`` from Docker Hub, but their
Debian hosts can still reach a Debian mirror (or already have the packages). This
module builds the *root filesystem directory* and the image config for such an image;
turning the directory into a layer tar and registering the image is the image store's
job, so nothing here knows about tar, digests or metadata.

Two images are supported:

* ``busybox:latest`` -- the statically linked binary from Debian's ``busybox-static``
  package, laid out like the official image (every applet a hard link in ``/bin``).
  The result is deterministic: two bootstraps from the same package give identical
  trees, so the layer (and image ID) comes out identical too.
* ``debian:bookworm`` -- ``mmdebstrap``/``debootstrap --variant=minbase`` from the
  mirror the host itself uses, cleaned the way Docker's official Debian images are.
"""
from __future__ import annotations

import collections
import glob
import os
import platform
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable

from .. import linux
from ..errors import HoistError, InvalidArgument, Unavailable

Log = Callable[[str], None]

BUSYBOX = "busybox:latest"
DEBIAN_BOOKWORM = "debian:bookworm"

# Every spelling a user may type, mapped to the one reference we produce. "debian"
# alone means bookworm because bookworm is the only Debian release we can build.
_ALIASES: dict[str, str] = {
    "busybox": BUSYBOX,
    "busybox:latest": BUSYBOX,
    "debian": DEBIAN_BOOKWORM,
    "debian:bookworm": DEBIAN_BOOKWORM,
    "debian:12": DEBIAN_BOOKWORM,
}

# The same PATH Docker's official images set.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Used when the host's apt sources name no usable Debian mirror.
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEBIAN_SUITE = "bookworm"

# Suites that only exist on Debian mirrors. A host tracking any of them points at a
# mirror that also carries bookworm; an Ubuntu or Devuan host does not, so its
# mirror must not be used.
_DEBIAN_SUITES = frozenset({
    "bullseye", "bookworm", "trixie", "forky", "sid",
    "oldstable", "stable", "testing", "unstable",
})

_SOURCES_LIST = "/etc/apt/sources.list"
_SOURCES_DIR = "/etc/apt/sources.list.d"

# debootstrap and dpkg live in sbin directories, which a non-login PATH may lack.
_SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")

# dpkg architecture names -> (GOARCH, variant), the names OCI image configs use.
_DPKG_TO_GO: dict[str, tuple[str, str]] = {
    "amd64": ("amd64", ""),
    "arm64": ("arm64", "v8"),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v5"),
    "i386": ("386", ""),
    "ppc64el": ("ppc64le", ""),
    "s390x": ("s390x", ""),
    "mips64el": ("mips64le", ""),
    "mipsel": ("mipsle", ""),
    "riscv64": ("riscv64", ""),
    "loong64": ("loong64", ""),
}

# platform.machine() (uname -m) names -> (GOARCH, variant), for hosts without dpkg.
_MACHINE_TO_GO: dict[str, tuple[str, str]] = {
    "x86_64": ("amd64", ""),
    "amd64": ("amd64", ""),
    "aarch64": ("arm64", "v8"),
    "arm64": ("arm64", "v8"),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "armv5tel": ("arm", "v5"),
    "i386": ("386", ""),
    "i686": ("386", ""),
    "ppc64le": ("ppc64le", ""),
    "s390x": ("s390x", ""),
    "mips64": ("mips64le", ""),
    "riscv64": ("riscv64", ""),
    "loongarch64": ("loong64", ""),
}


@dataclass(frozen=True)
class BootstrapResult:
    reference: str      # "busybox:latest" or "debian:bookworm"
    config: dict        # OCI image config without rootfs/history (the store adds those)
    created_by: str     # the history line for the single layer


def supported() -> list[str]:
    """The names ``hoist image bootstrap`` accepts, in their short form."""
    return ["busybox", "debian:bookworm"]


def normalise(name: str) -> str:
    """Map a user-typed name to the reference we build, or raise InvalidArgument."""
    ref = _ALIASES.get(name.strip())
    if ref is None:
        raise InvalidArgument(
            f"cannot bootstrap {name!r}: supported images are {', '.join(supported())}")
    return ref


def bootstrap_rootfs(name: str, dest: str, *, log: Log = lambda s: None) -> BootstrapResult:
    """Fill the existing empty directory ``dest`` with the root filesystem of ``name``."""
    ref = normalise(name)
    _check_empty_dir(dest)
    # dest becomes the container's "/", which everybody must be able to traverse;
    # temporary directories are usually created 0700.
    os.chmod(dest, 0o755)
    if ref == BUSYBOX:
        return _bootstrap_busybox(dest, log)
    return _bootstrap_debian(dest, log)


# --------------------------------------------------------------------------- helpers


def _check_empty_dir(dest: str) -> None:
    # Refuse anything but an empty directory: cleanup below deletes paths inside dest,
    # and a leftover tree would silently end up in the layer.
    if not os.path.isdir(dest):
        raise InvalidArgument(f"bootstrap destination {dest!r} is not a directory")
    if os.listdir(dest):
        raise InvalidArgument(f"bootstrap destination {dest!r} is not empty")


def rfc3339(epoch: int) -> str:
    """Seconds since the epoch as the UTC RFC 3339 form image configs use."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _source_date_epoch() -> int | None:
    # The reproducible-builds convention: if the caller pins a timestamp, honour it.
    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if value.isdigit():
        return int(value)
    return None


def go_arch(dpkg_arch: str | None = None, machine: str | None = None) -> tuple[str, str]:
    """(architecture, variant) in Go/OCI terms from a dpkg or uname architecture name.

    An unknown name is passed through unchanged rather than guessed at.
    """
    if dpkg_arch:
        return _DPKG_TO_GO.get(dpkg_arch, (dpkg_arch, ""))
    m = machine if machine is not None else platform.machine()
    return _MACHINE_TO_GO.get(m, (m, ""))


def _host_dpkg_arch() -> str | None:
    try:
        out = subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                             text=True, check=True, env=_tool_env())
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def _make_config(dpkg_arch: str | None, created: int, cmd: list[str]) -> dict:
    arch, variant = go_arch(dpkg_arch)
    config: dict = {"architecture": arch, "os": "linux"}
    if variant:
        config["variant"] = variant
    config["created"] = rfc3339(created)
    config["config"] = {"Env": [f"PATH={DEFAULT_PATH}"], "Cmd": cmd}
    return config


def _tool_env() -> dict[str, str]:
    # A predictable environment for the tools we run: sbin on PATH (debootstrap calls
    # chroot, dpkg calls ldconfig), no questions from debconf, untranslated messages.
    env = dict(os.environ)
    path = env.get("PATH", "/usr/bin:/bin").split(":")
    env["PATH"] = ":".join(path + [d for d in _SBIN_DIRS if d not in path])
    env["DEBIAN_FRONTEND"] = "noninteractive"
    env["LC_ALL"] = "C"
    return env


def _find_tool(name: str) -> str | None:
    return shutil.which(name, path=_tool_env()["PATH"])


def _run(argv: list[str], log: Log, *, cwd: str | None = None) -> None:
    """Run argv, handing every output line to ``log`` as it arrives.

    Failure raises Unavailable with the last lines of output, because the usual causes
    (mirror unreachable, package unknown, tool missing) are about the environment.
    """
    tail: collections.deque[str] = collections.deque(maxlen=15)
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=_tool_env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, errors="replace")
    except OSError as e:
        raise Unavailable(f"cannot run {argv[0]}: {e}") from e
    with proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            tail.append(line)
            log(line)
    if proc.returncode != 0:
        detail = "\n".join(tail)
        raise Unavailable(f"{' '.join(argv)} failed with exit status {proc.returncode}"
                          + (f":\n{detail}" if detail else ""))


def _installed_package(package: str) -> tuple[str, str] | None:
    """(version, dpkg architecture) of an installed package, or None."""
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}\t${Version}\t${Architecture}\n", package],
            capture_output=True, text=True, env=_tool_env())
    except OSError:
        return None
    for line in out.stdout.splitlines():
        # Status "install ok installed"; a removed package may still be listed with
        # its config files ("deinstall ok config-files") and must not count.
        parts = line.split("\t")
        if len(parts) == 3 and parts[0].endswith(" installed") and parts[1]:
            return parts[1], parts[2]
    return None


def _lchown_root(path: str) -> None:
    # Only root can give files away; a rootless bootstrap keeps the caller's ids.
    if os.geteuid() == 0:
        os.lchown(path, 0, 0)


def _write_file(path: str, content: str, mode: int) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(content)
    os.chmod(path, mode)  # explicit, so the result does not depend on the umask


def _walk_all(root: str) -> Iterable[str]:
    """Every path below root, children before their directory, root itself last."""
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for n in filenames + dirnames:
            yield os.path.join(dirpath, n)
    yield root


# --------------------------------------------------------------------------- busybox

# The official busybox image takes /etc/passwd, /etc/group and /etc/shadow from
# buildroot's skeleton; these tables carry the same accounts and ids, so files and
# processes show the same owners in our image as in one pulled from Docker Hub.
# (name, uid, gid, gecos, home, shell)
_BUSYBOX_USERS: tuple[tuple[str, int, int, str, str, str], ...] = (
    ("root", 0, 0, "root", "/root", "/bin/sh"),
    ("daemon", 1, 1, "daemon", "/usr/sbin", "/bin/false"),
    ("bin", 2, 2, "bin", "/bin", "/bin/false"),
    ("sys", 3, 3, "sys", "/dev", "/bin/false"),
    ("sync", 4, 100, "sync", "/bin", "/bin/sync"),
    ("mail", 8, 8, "mail", "/var/spool/mail", "/bin/false"),
    ("www-data", 33, 33, "www-data", "/var/www", "/bin/false"),
    ("operator", 37, 37, "Operator", "/var", "/bin/false"),
    ("nobody", 65534, 65534, "nobody", "/home", "/bin/false"),
)

# (name, gid, members)
_BUSYBOX_GROUPS: tuple[tuple[str, int, str], ...] = (
    ("root", 0, ""), ("daemon", 1, ""), ("bin", 2, ""), ("sys", 3, ""),
    ("adm", 4, ""), ("tty", 5, ""), ("disk", 6, ""), ("lp", 7, ""),
    ("mail", 8, ""), ("kmem", 9, ""), ("wheel", 10, "root"), ("cdrom", 11, ""),
    ("dialout", 18, ""), ("floppy", 19, ""), ("video", 28, ""), ("audio", 29, ""),
    ("tape", 32, ""), ("www-data", 33, ""), ("operator", 37, ""), ("utmp", 43, ""),
    ("plugdev", 46, ""), ("staff", 50, ""), ("lock", 54, ""), ("netdev", 82, ""),
    ("users", 100, ""), ("nogroup", 65534, ""),
)

# Directories of the official image, including every home directory above (so that
# e.g. `su nobody` has a working directory). /root is private, /tmp sticky.
_BUSYBOX_DIRS: tuple[tuple[str, int], ...] = (
    ("bin", 0o755), ("dev", 0o755), ("etc", 0o755), ("home", 0o755),
    ("proc", 0o755), ("root", 0o700), ("sys", 0o755), ("tmp", 0o1777),
    ("usr", 0o755), ("usr/sbin", 0o755), ("var", 0o755), ("var/spool", 0o755),
    ("var/spool/mail", 0o755), ("var/www", 0o755),
)


def _passwd() -> str:
    return "".join(f"{n}:x:{u}:{g}:{gecos}:{home}:{shell}\n"
                   for n, u, g, gecos, home, shell in _BUSYBOX_USERS)


def _group() -> str:
    return "".join(f"{n}:x:{g}:{members}\n" for n, g, members in _BUSYBOX_GROUPS)


def _shadow() -> str:
    # "*" locks every account, root included; empty date fields keep the file free of
    # timestamps so it is the same in every bootstrap.
    return "".join(f"{n}:*:::::::\n" for n, *_ in _BUSYBOX_USERS)


def _busybox_binary(work: str, log: Log) -> tuple[str, str, str]:
    """(path to a busybox-static binary, package version, dpkg architecture).

    The installed package is preferred; otherwise the .deb is downloaded with apt and
    unpacked into ``work`` -- installing it would change the host for no reason.
    """
    installed = _installed_package("busybox-static")
    if installed and os.path.isfile("/bin/busybox"):
        # busybox and busybox-static conflict, so with busybox-static installed
        # /bin/busybox is its static binary.
        log(f"using /bin/busybox from installed busybox-static {installed[0]}")
        return "/bin/busybox", installed[0], installed[1]

    hint = "install it with `apt-get install busybox-static` and try again"
    log("busybox-static is not installed; downloading it with apt-get")
    download = os.path.join(work, "download")
    os.mkdir(download)
    try:
        _run(["apt-get", "download", "busybox-static"], log, cwd=download)
        debs = sorted(glob.glob(os.path.join(download, "busybox-static_*.deb")))
        if not debs:
            raise Unavailable("apt-get download busybox-static produced no .deb")
        deb = debs[0]
        extracted = os.path.join(work, "extracted")
        _run(["dpkg-deb", "-x", deb, extracted], log)
        fields = subprocess.run(["dpkg-deb", "-f", deb, "Version", "Architecture"],
                                capture_output=True, text=True, check=True,
                                env=_tool_env()).stdout
    except (Unavailable, OSError, subprocess.CalledProcessError) as e:
        raise Unavailable(f"busybox-static is not available ({e}); {hint}") from e
    info = dict(line.split(": ", 1) for line in fields.splitlines() if ": " in line)
    # The binary is in /bin today; a usr-merged package would ship /usr/bin.
    for rel in ("bin/busybox", "usr/bin/busybox"):
        binary = os.path.join(extracted, rel)
        if os.path.isfile(binary):
            return binary, info.get("Version", "unknown"), info.get("Architecture", "")
    raise Unavailable(f"the busybox-static package has no busybox binary; {hint}")


def _busybox_applets(busybox: str) -> list[str]:
    """Applet names, from the binary itself so the links match what it implements."""
    try:
        out = subprocess.run([busybox, "--list-full"], capture_output=True, text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise Unavailable(f"cannot list busybox applets: {e}") from e
    names = set()
    for line in out.split():
        # --list-full gives install paths (usr/bin/[, sbin/ip, linuxrc). The official
        # image puts every applet in /bin regardless, so one PATH entry finds them all.
        name = os.path.basename(line)
        if name and name not in (".", "..", "busybox"):
            names.add(name)
    return sorted(names)


def _bootstrap_busybox(dest: str, log: Log) -> BootstrapResult:
    with tempfile.TemporaryDirectory(prefix="hoist-bootstrap-") as work:
        source, version, dpkg_arch = _busybox_binary(work, log)
        # All mtimes are pinned to the packaged binary's mtime (dpkg keeps the .deb's
        # timestamps both when installing and when extracting), so two bootstraps from
        # the same package are identical down to the timestamps in the layer tar.
        epoch = _source_date_epoch()
        if epoch is None:
            epoch = int(os.stat(source).st_mtime)

        for rel, mode in _BUSYBOX_DIRS:
            path = os.path.join(dest, rel)
            os.makedirs(path, exist_ok=True)
            os.chmod(path, mode)  # mkdir applies the umask and never sets the sticky bit
        binary = os.path.join(dest, "bin", "busybox")
        shutil.copyfile(source, binary)
        os.chmod(binary, 0o755)

    applets = _busybox_applets(binary)
    for name in applets:
        # Hard links like the official image: one inode, and each applet name still
        # works when the image is flattened by tools that do not keep symlinks.
        os.link(binary, os.path.join(dest, "bin", name))
    log(f"linked {len(applets)} busybox applets into /bin")

    etc = os.path.join(dest, "etc")
    _write_file(os.path.join(etc, "passwd"), _passwd(), 0o644)
    _write_file(os.path.join(etc, "group"), _group(), 0o644)
    _write_file(os.path.join(etc, "shadow"), _shadow(), 0o600)
    # Lets resolvers that read nsswitch.conf consult /etc/hosts before DNS.
    # /etc/hosts, /etc/hostname and /etc/resolv.conf are left to the runtime.
    _write_file(os.path.join(etc, "nsswitch.conf"), "hosts: files dns\n", 0o644)

    for path in _walk_all(dest):
        _lchown_root(path)
        os.utime(path, (epoch, epoch), follow_symlinks=False)

    return BootstrapResult(
        reference=BUSYBOX,
        config=_make_config(dpkg_arch or _host_dpkg_arch(), epoch, ["sh"]),
        created_by=f"hoist image bootstrap busybox (busybox-static {version})",
    )


# --------------------------------------------------------------------------- debian


def parse_sources_list(text: str) -> list[tuple[str, list[str]]]:
    """(URI, suites) of every ``deb`` line in the one-line sources.list format."""
    found = []
    for raw in text.splitlines():
        tokens = raw.split("#", 1)[0].split()
        if not tokens or tokens[0] != "deb":
            continue
        rest = tokens[1:]
        if rest and rest[0].startswith("["):
            # Options such as [arch=amd64 signed-by=...] may span several tokens.
            while rest and not rest[0].endswith("]"):
                rest = rest[1:]
            rest = rest[1:]
        if len(rest) >= 2:
            found.append((rest[0], [rest[1]]))
    return found


def parse_deb822_sources(text: str) -> list[tuple[str, list[str]]]:
    """(URI, suites) of every enabled ``deb`` stanza in a deb822 .sources file."""
    found = []
    stanzas: list[dict[str, str]] = [{}]
    key = None
    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if stanzas[-1]:
                stanzas.append({})
            key = None
            continue
        if raw[0] in " \t" and key is not None:
            stanzas[-1][key] += " " + raw.strip()  # continuation line
        elif ":" in raw:
            key, value = raw.split(":", 1)
            key = key.strip().lower()
            stanzas[-1][key] = value.strip()
    for st in stanzas:
        if "deb" not in st.get("types", "").split():
            continue
        if st.get("enabled", "yes").strip().lower() == "no":
            continue
        suites = st.get("suites", "").split()
        for uri in st.get("uris", "").split():
            found.append((uri, suites))
    return found


def _read_host_sources() -> list[tuple[str, list[str]]]:
    # apt's own order: sources.list first, then sources.list.d in name order.
    found = []
    files = [_SOURCES_LIST] + sorted(glob.glob(os.path.join(_SOURCES_DIR, "*")))
    for path in files:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        if path.endswith(".sources"):
            found += parse_deb822_sources(text)
        elif path.endswith(".list"):
            found += parse_sources_list(text)
    return found


def pick_mirror(sources: list[tuple[str, list[str]]]) -> str:
    """The host's Debian mirror for bookworm, or DEFAULT_MIRROR.

    Behind a firewall the mirror the host already uses is the one most likely to be
    reachable. An entry for bookworm itself wins; otherwise any entry for a Debian
    suite (that mirror carries bookworm too). Security and updates suites are skipped
    because they are separate archives without the base packages.
    """
    def usable(uri: str) -> bool:
        # debootstrap can fetch over http(s) and from local file: mirrors only.
        return uri.split(":", 1)[0] in ("http", "https", "file")

    for wanted in ({DEBIAN_SUITE}, _DEBIAN_SUITES):
        for uri, suites in sources:
            if usable(uri) and any(s in wanted for s in suites):
                return uri.rstrip("/")
    return DEFAULT_MIRROR


def host_mirror() -> str:
    return pick_mirror(_read_host_sources())


def _unescape_mountinfo(field: str) -> str:
    # The kernel escapes space, tab, newline and backslash as \ooo octal.
    out, i = [], 0
    while i < len(field):
        digits = field[i + 1:i + 4]
        if field[i] == "\\" and len(digits) == 3 and all(c in "01234567" for c in digits):
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mounts_under(root: str, mountinfo: str) -> list[str]:
    """Mount points strictly inside root (root itself may be a mount), deepest first."""
    prefix = os.path.realpath(root).rstrip("/") + "/"
    points = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4:
            point = _unescape_mountinfo(fields[4])
            if point.startswith(prefix):
                points.append(point)
    return sorted(points, key=len, reverse=True)


def _read_mountinfo() -> str:
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        return f.read()


def _release_mounts(root: str, log: Log) -> None:
    """Detach whatever the bootstrap tool left mounted inside root, or raise.

    debootstrap bind-mounts /proc, /sys and sometimes the host's /dev into the target;
    cleanup deletes /dev's contents, which through a leftover bind mount would be the
    host's device nodes. So nothing is deleted while anything is mounted below root.
    """
    for point in mounts_under(root, _read_mountinfo()):
        log(f"unmounting leftover {point}")
        try:
            linux.umount(point, linux.MNT_DETACH)
        except OSError as e:
            log(f"cannot unmount {point}: {e}")
    left = mounts_under(root, _read_mountinfo())
    if left:
        raise HoistError(f"refusing to clean {root}: still mounted: {', '.join(left)}")


def _remove(path: str) -> None:
    # Never follows symlinks: a link to the host's /dev is removed, not its target.
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def _empty_dir(path: str, *, keep: Iterable[str] = ()) -> int:
    """Delete everything in directory path except the names in keep; return a count."""
    if not os.path.isdir(path) or os.path.islink(path):
        return 0
    n = 0
    for entry in os.scandir(path):
        if entry.name not in keep:
            _remove(entry.path)
            n += 1
    return n


def _truncate_if_exists(path: str, mode: int | None = None) -> None:
    if os.path.isfile(path) and not os.path.islink(path):
        os.truncate(path, 0)
        if mode is not None:
            os.chmod(path, mode)
    elif os.path.islink(path):
        # e.g. resolv.conf -> ../run/...: replace the link by the empty file the
        # runtime mounts over.
        os.unlink(path)
        _write_file(path, "", 0o644 if mode is None else mode)


def clean_debian_rootfs(root: str, log: Log = lambda s: None) -> None:
    """Strip a fresh debootstrap tree the way Docker's official Debian images are.

    Removes what the runtime provides (device nodes, hostname, resolver config), what
    is specific to this build (package caches, apt lists, logs, machine id, backup
    copies of databases) and what would leak information about the build host.
    """
    _release_mounts(root, log)

    # The runtime mounts its own /dev; device nodes in a layer are useless at best.
    n = _empty_dir(os.path.join(root, "dev"))
    log(f"removed {n} entries from /dev")
    for rel in ("dev", "proc", "sys"):
        os.makedirs(os.path.join(root, rel), exist_ok=True)

    # Downloaded packages and apt's binary caches: large and rebuilt on demand.
    cache = os.path.join(root, "var", "cache", "apt")
    for pattern in ("archives/*.deb", "archives/partial/*.deb", "*.bin"):
        for path in glob.glob(os.path.join(cache, pattern)):
            os.unlink(path)
    # Package lists go stale at once; users run `apt-get update` first, as with
    # Docker's images. The "partial" directory stays, with apt's own ownership.
    n = _empty_dir(os.path.join(root, "var", "lib", "apt", "lists"), keep=("partial",))
    _empty_dir(os.path.join(root, "var", "lib", "apt", "lists", "partial"))
    log(f"removed {n} apt list files")

    # debootstrap copies the host's hostname and resolv.conf in; the runtime mounts
    # its own over these paths, so keep them only as empty mount targets.
    # They are copies of the host's files, so their mode is reset too.
    for rel in ("etc/hostname", "etc/resolv.conf"):
        _truncate_if_exists(os.path.join(root, rel), 0o644)
    # Every container must not share one machine id; empty means "generate at boot".
    _truncate_if_exists(os.path.join(root, "etc", "machine-id"))

    # Install logs describe this build, not the image's future; keep the files so
    # programs that append to them still find them.
    for dirpath, _dirs, files in os.walk(os.path.join(root, "var", "log")):
        for name in files:
            path = os.path.join(dirpath, name)
            if os.path.isfile(path) and not os.path.islink(path):
                os.truncate(path, 0)

    # Backup copies dpkg and debconf keep of their databases, the same as the current
    # files after a fresh install.
    for pattern in ("var/cache/debconf/*-old", "var/lib/dpkg/*-old"):
        for path in glob.glob(os.path.join(root, pattern)):
            _remove(path)
    log("cleaned the root filesystem")


def _debian_tool() -> tuple[str, str]:
    """(name, path) of the bootstrap tool: mmdebstrap if present, else debootstrap."""
    for name in ("mmdebstrap", "debootstrap"):
        path = _find_tool(name)
        if path:
            return name, path
    raise Unavailable("bootstrapping debian needs debootstrap (or mmdebstrap); "
                      "install it with `apt-get install debootstrap` and try again")


def _bootstrap_debian(dest: str, log: Log) -> BootstrapResult:
    tool, path = _debian_tool()
    # mmdebstrap can work unprivileged (user namespaces); debootstrap cannot.
    if tool == "debootstrap" and os.geteuid() != 0:
        raise Unavailable("debootstrap must run as root; run hoist as root or install "
                          "mmdebstrap")
    mirror = host_mirror()
    started = time.time()
    log(f"bootstrapping debian {DEBIAN_SUITE} with {tool} from {mirror}")
    try:
        _run([path, "--variant=minbase", DEBIAN_SUITE, dest, mirror], log)
    finally:
        # Even on failure: leave no mounts behind inside dest.
        _release_mounts(dest, log)
    clean_debian_rootfs(dest, log)
    log(f"debian {DEBIAN_SUITE} bootstrapped in {time.time() - started:.0f}s")

    try:
        with open(os.path.join(dest, "etc", "debian_version"), encoding="utf-8") as f:
            debian_version = f.read().strip()
    except OSError:
        debian_version = "unknown"
    installed = _installed_package(tool)
    tool_version = f"{tool} {installed[0]}" if installed else tool
    epoch = _source_date_epoch()
    return BootstrapResult(
        reference=DEBIAN_BOOKWORM,
        config=_make_config(_host_dpkg_arch(), int(time.time()) if epoch is None else epoch,
                            ["bash"]),
        created_by=(f"hoist image bootstrap debian:bookworm "
                    f"({tool_version}, Debian {debian_version}, {mirror})"),
    )
